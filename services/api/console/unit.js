/* SPKT Dispatch — the field unit console (a phone): the assignment, accept or decline, status,
   TPTKP and olah TKP steps, evidence, position, backup and the panic button. */
(function () {
  "use strict";
  const S = window.SPKT;
  const h = S.h;
  const ACTIVE = new Set(["assigned", "acknowledged", "en_route", "on_scene"]);
  const ANSWERED = new Set(["acknowledged", "en_route", "on_scene"]);
  const FALLBACK_STATUSES = ["available", "patrol", "post", "break", "off_duty"];
  const DECLINE_REASONS = ["Sedang menangani kejadian lain", "Kendaraan rusak / tidak dapat jalan", "Terlalu jauh dari lokasi", "Anggota tidak lengkap"];

  const state = {
    config: null, claims: null, unitId: null, callsign: null, categories: {},
    status: null, known: new Set(), assignment: null, detail: null,
    pane: "tptkp", streamState: "connecting", lastFix: null, watch: null, lastSent: 0,
  };
  let stream = null;
  let timers = [];
  let map = null;
  let mapLayers = null;
  let mapNode = null; // kept across redraws of the card, so the map does not flicker or lose its zoom
  let mapFor = null;

  window.SPKT.unit = { state };

  const el = (id) => document.getElementById(id);
  const vocab = () => (state.config && state.config.vocabulary) || {};
  const statusWord = (s) => (vocab().unit_status || {})[s] || (s ? s.replace(/_/g, " ") : "status belum diketahui");
  const knownKey = () => `spkt.unit.${state.unitId}.incidents`;
  const statusKey = () => `spkt.unit.${state.unitId}.status`;

  // --- start --------------------------------------------------------------------------------------
  async function start() {
    const fragment = S.takeFragment();
    state.config = await S.config();
    S.onUnauthorized = (message) => askToken(message);
    el("signout").addEventListener("click", () => { S.clearToken(); askToken("Anda telah keluar."); });
    wire();
    const token = S.token();
    const claims = token && S.claims(token);
    if (!claims || S.expired(claims) || claims.role !== "field_unit" || !claims.unit_id) {
      askToken(claims && claims.role !== "field_unit" ? "Halaman ini untuk token unit lapangan (peran field_unit)." : claims ? "Token sudah kedaluwarsa." : "");
      return;
    }
    begin(claims, fragment.incident);
  }

  function askToken(message) {
    stop();
    S.signIn({
      title: "Masuk sebagai unit lapangan",
      hint: "./spkt.sh token --role field_unit --unit <UNIT_ID>",
      message,
      onToken: (token, claims) => {
        if (claims.role !== "field_unit" || !claims.unit_id) {
          S.clearToken();
          askToken("Token itu bukan token unit lapangan (peran field_unit dengan unit_id).");
          return;
        }
        begin(claims);
      },
    });
  }

  function stop() {
    if (stream) stream.stop();
    stream = null;
    timers.forEach(clearInterval);
    timers = [];
  }

  function begin(claims, incidentFromLink) {
    stop();
    state.claims = claims;
    state.unitId = claims.unit_id;
    try {
      JSON.parse(localStorage.getItem(knownKey()) || "[]").forEach((id) => state.known.add(id));
    } catch (e) { /* nothing kept */ }
    if (incidentFromLink) remember(incidentFromLink);
    state.status = sessionStorage.getItem(statusKey()) || null;
    renderHeader();
    renderStatus();
    S.api("/api/v1/categories").then((r) => {
      if (r.ok) state.categories = Object.fromEntries(r.data.map((c) => [c.code, c.name]));
      renderAssignment();
    });
    discover();
    stream = S.openStream("", {
      onState(s) {
        state.streamState = s;
        el("stream-dot").dataset.state = s;
        el("stream-dot").title = s === "live" ? "Tersambung langsung" : "Memuat ulang berkala (tiap 4 detik)";
        if (s === "live") discover();
      },
      onReset: discover,
      onEvent,
    });
    timers.push(setInterval(() => { if (state.streamState !== "live") discover(); }, 4000));
    timers.push(setInterval(discover, 30000));
    timers.push(setInterval(renderClock, 1000));
  }

  function remember(incidentId) {
    state.known.add(incidentId);
    const list = Array.from(state.known).slice(-20);
    localStorage.setItem(knownKey(), JSON.stringify(list));
  }

  function setStatus(status) {
    if (!status) return;
    state.status = status;
    sessionStorage.setItem(statusKey(), status);
    renderHeader();
    renderStatus();
  }

  // --- finding the assignment -------------------------------------------------------------------------
  let discovering = false;
  async function discover() {
    if (discovering) return;
    discovering = true;
    try {
      const list = await S.api("/api/v1/incidents?status=open&limit=100");
      if (list.ok) {
        for (const item of list.data.items || []) {
          if ((item.units || []).includes(state.unitId)) remember(item.incident_id);
        }
      }
      let best = null;
      for (const id of Array.from(state.known)) {
        const r = await S.api(`/api/v1/incidents/${encodeURIComponent(id)}`);
        if (r.status === 403 || r.status === 404) {
          state.known.delete(id);
          continue;
        }
        if (!r.ok) continue;
        const d = r.data;
        const mine = (d.assignments || []).filter((a) => a.unit_id === state.unitId);
        if (mine.length && mine[0].callsign) state.callsign = mine[mine.length - 1].callsign;
        const active = mine.filter((a) => ACTIVE.has(a.status) && !["closed", "duplicate"].includes(d.status));
        for (const a of active) {
          if (!best || Date.parse(a.assigned_at) > Date.parse(best.a.assigned_at)) best = { a, d };
        }
      }
      localStorage.setItem(knownKey(), JSON.stringify(Array.from(state.known)));
      const before = state.assignment && state.assignment.assignment_id;
      state.assignment = best ? best.a : null;
      state.detail = best ? best.d : null;
      if (best) {
        const implied = { assigned: "dispatched", acknowledged: "en_route", en_route: "en_route", on_scene: "on_scene" }[best.a.status];
        if (implied && !(best.a.status === "on_scene" && state.status === "transporting")) setStatus(implied);
      } else if (before && ["dispatched", "en_route", "on_scene", "transporting"].includes(state.status)) {
        setStatus("available"); // the assignment ended
      }
      renderHeader();
      renderAssignment();
      renderStatus();
      renderTkp();
    } finally {
      discovering = false;
    }
  }

  function onEvent(type, env) {
    const d = env.data || {};
    if (d.unit_id !== state.unitId && !(state.detail && (d.incident_id || env.subject) === state.detail.incident_id)) return;
    if (type === "unit.assigned" && d.unit_id === state.unitId) {
      remember(d.incident_id);
      if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
      S.toast("Penugasan baru masuk", "alert");
    }
    if (type === "unit.status-changed" && d.unit_id === state.unitId) setStatus(d.status);
    if (type === "unit.position-reported") return;
    discoverSoon();
  }
  let soon = null;
  function discoverSoon() {
    clearTimeout(soon);
    soon = setTimeout(discover, 250);
  }

  // --- header, assignment -------------------------------------------------------------------------------
  function renderHeader() {
    el("unit-name").textContent = state.callsign ? `${state.callsign}` : state.unitId || "Unit lapangan";
    el("unit-name").title = state.unitId || "";
    const badge = el("unit-status");
    badge.textContent = statusWord(state.status);
    badge.dataset.availability = (vocab().availability || {})[state.status] || "";
  }

  function renderClock() {
    const since = el("assignment-since");
    if (since && state.assignment) since.textContent = S.duration((Date.now() - Date.parse(state.assignment.assigned_at)) / 1000);
  }

  function renderAssignment() {
    const a = state.assignment;
    const d = state.detail;
    el("no-assignment").hidden = !!a;
    const box = el("assignment");
    box.hidden = !a;
    el("backup").hidden = !(a && ANSWERED.has(a.status));
    if (!a) {
      box.replaceChildren();
      return;
    }
    const loc = d.location || {};
    const place = [loc.address, loc.landmark].filter(Boolean).join(" · ") || (loc.lat != null ? `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : "lokasi belum diketahui");
    const cat = state.categories[d.category] || (d.category ? d.category.replace(/_/g, " ") : "");
    const away = state.lastFix && loc.lat != null ? metres(state.lastFix, loc) : null;
    const waiting = a.status === "assigned";
    const parts = [
      h("div.ahead" + (waiting ? ".new" : ""),
        h("span.prio-chip.p" + (d.priority || "P4").slice(1), d.priority),
        h("span.alabel", waiting ? "PENUGASAN BARU" : S.word("assignment_status", a.status).toUpperCase()),
        h("span.asince#assignment-since", "")),
      h("h2.anumber", d.number),
      h("div.acat", cat),
      h("p.asummary", d.summary),
      h("div.aplace", h("span.pin-glyph"), place,
        loc.lat != null ? h("a.maplink", { href: `geo:${loc.lat},${loc.lon}?q=${loc.lat},${loc.lon}`, rel: "noopener" }, "Navigasi") : null),
      away != null ? h("div.adistance", `± ${S.distance(away)} dari posisi terakhir Anda`) : null,
      mapFor === d.incident_id && mapNode ? mapNode : (mapNode = h("div#umap.umap")),
    ];
    if (waiting) {
      const reasons = h("div.decline-box", { hidden: true },
        h("p", h("strong", "Alasan menolak")),
        h("div.reason-chips", DECLINE_REASONS.map((text) => h("button.chip", { type: "button", on: { click: (ev) => { reasonInput.value = text; ev.currentTarget.parentNode.querySelectorAll(".chip").forEach((c) => c.classList.toggle("on", c === ev.currentTarget)); } } }, text))),
        h("label.field", { for: "decline-reason" }, "Atau tulis alasannya"));
      const reasonInput = h("input#decline-reason", { type: "text", maxlength: 500, placeholder: "Alasan (minimal 3 huruf)" });
      reasons.appendChild(reasonInput);
      reasons.appendChild(h("button.btn.danger.huge#decline-send", { type: "button", on: { click: () => decline(reasonInput.value.trim()) } }, "Kirim penolakan"));
      parts.push(h("div.answer-row",
        h("button.btn.accept.huge#accept", { type: "button", on: { click: accept } }, "TERIMA"),
        h("button.btn.decline.huge#decline", { type: "button", on: { click: () => { reasons.hidden = !reasons.hidden; if (!reasons.hidden) reasonInput.focus(); } } }, "TOLAK")));
      parts.push(reasons);
    } else {
      parts.push(h("p.accepted-note", `Diterima ${S.hhmm(a.acknowledged_at || a.en_route_at || a.assigned_at)} WIB`,
        a.arrived_at ? ` · tiba ${S.hhmm(a.arrived_at)} WIB` : ""));
    }
    box.replaceChildren(...parts.filter(Boolean));
    renderClock();
    if (mapFor !== d.incident_id || !map) drawMap();
    else map.invalidateSize();
  }

  function drawMap() {
    const d = state.detail;
    const node = mapNode;
    if (!node || !d || !d.location || d.location.lat == null) return;
    mapFor = d.incident_id;
    if (!window.L) {
      node.replaceChildren(S.mapMissingNotice());
      return;
    }
    if (map) {
      map.remove();
      map = null;
    }
    node.replaceChildren();
    map = S.makeMap(node, state.config, { zoomControl: false, dragging: true, scrollWheelZoom: false });
    if (!map) return;
    mapLayers = window.L.layerGroup().addTo(map);
    const at = [d.location.lat, d.location.lon];
    window.L.marker(at, {
      icon: window.L.divIcon({ className: "inc-marker", html: `<div class="inc-pin p${(d.priority || "P4").slice(1)}"><span>${(d.priority || "").replace(/[^P0-9]/g, "")}</span></div>`, iconSize: [30, 30], iconAnchor: [15, 15] }),
    }).addTo(mapLayers);
    const points = [at];
    if (state.lastFix) {
      window.L.circleMarker([state.lastFix.lat, state.lastFix.lon], { className: "me-dot", radius: 7 })
        .bindTooltip("Posisi Anda", { permanent: true, direction: "right", className: "station-label" }).addTo(mapLayers);
      points.push([state.lastFix.lat, state.lastFix.lon]);
    }
    // Without a base map the nearest station gives the direction its bearings.
    const stations = ((state.config.city || {}).stations || []).filter((x) => x.lat != null);
    const nearest = stations.map((x) => [metres(x, d.location), x]).sort((a, b) => a[0] - b[0])[0];
    if (nearest && nearest[0] < 6000) points.push([nearest[1].lat, nearest[1].lon]); // named when zoomed in
    if (points.length > 1) map.fitBounds(points, { padding: [36, 36], maxZoom: 15 });
    else map.setView(at, 14);
  }

  function metres(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const x = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * 6371000 * Math.asin(Math.sqrt(x));
  }

  async function accept() {
    const a = state.assignment;
    const button = el("accept");
    button.disabled = true;
    button.textContent = "Mengirim…";
    const r = await S.api(`/api/v1/assignments/${encodeURIComponent(a.assignment_id)}/accept`, { method: "POST" });
    if (r.ok) {
      S.toast(r.status === 202 ? "Jawaban tercatat; menunggu konfirmasi" : "Penugasan diterima — menuju lokasi", "ok");
      a.status = "acknowledged";
      a.acknowledged_at = new Date().toISOString();
      setStatus("en_route");
      renderAssignment();
      renderTkp();
    } else {
      S.toast(`Gagal menerima: ${r.error}`, "error");
      button.disabled = false;
      button.textContent = "TERIMA";
    }
    discoverSoon();
  }

  async function decline(reason) {
    if (reason.length < 3) {
      S.toast("Tulis alasan menolak (minimal 3 huruf).", "error");
      return;
    }
    const a = state.assignment;
    const r = await S.api(`/api/v1/assignments/${encodeURIComponent(a.assignment_id)}/decline`, { method: "POST", body: { reason } });
    if (r.ok) {
      S.toast("Penugasan ditolak; dispatcher diberi tahu.", "info");
      state.assignment = null;
      state.detail = null;
      setStatus("available");
      renderAssignment();
      renderTkp();
    } else S.toast(`Gagal menolak: ${r.error}`, "error");
    discoverSoon();
  }

  // --- status ------------------------------------------------------------------------------------------
  function renderStatus() {
    const box = el("status-buttons");
    const transitions = vocab().transitions || {};
    let options = state.status ? (transitions[state.status] || []) : FALLBACK_STATUSES;
    options = options.filter((s) => s !== "dispatched");
    el("status-note").textContent = state.status
      ? `Sekarang: ${statusWord(state.status)}.`
      : "Status terakhir belum diketahui di perangkat ini; pilih status Anda sekarang.";
    box.replaceChildren(...options.map((s) => h("button.btn.status-btn." + ((vocab().availability || {})[s] || ""), {
      type: "button", dataset: { status: s }, on: { click: (ev) => changeStatus(s, ev.currentTarget) },
    }, statusLabel(s))));
  }

  function statusLabel(s) {
    if (s === "available" && ["en_route", "on_scene", "transporting", "dispatched"].includes(state.status)) return "Selesai · tersedia";
    if (s === "on_scene") return "Tiba di TKP";
    if (s === "en_route") return "Berangkat";
    const w = statusWord(s);
    return w.charAt(0).toUpperCase() + w.slice(1);
  }

  async function changeStatus(status, button) {
    button.disabled = true;
    const body = { status };
    if (state.assignment && ["en_route", "on_scene", "transporting"].includes(status)) body.incident_id = state.assignment.incident_id || state.detail.incident_id;
    const r = await S.api(`/api/v1/units/${encodeURIComponent(state.unitId)}/status`, { method: "POST", body });
    if (r.status === 200) {
      setStatus(r.data.status);
      S.toast(`Status: ${statusWord(r.data.status)}`, "ok");
    } else if (r.status === 202) {
      S.toast("Perubahan status tercatat; menunggu konfirmasi.", "info");
    } else {
      S.toast(r.error, "error");
      button.disabled = false;
    }
    discoverSoon();
  }

  // --- TPTKP, olah TKP, evidence -------------------------------------------------------------------
  function renderTkp() {
    const a = state.assignment;
    const card = el("tkp-card");
    card.hidden = !(a && ANSWERED.has(a.status));
    if (card.hidden) return;
    const stepsPane = state.pane === "tptkp" || state.pane === "olah_tkp";
    el("pane-steps").hidden = !stepsPane;
    el("evidence-form").hidden = stepsPane;
    document.querySelectorAll(".utabs button").forEach((b) => b.classList.toggle("on", b.dataset.pane === state.pane));
    const tkp = (state.detail && state.detail.tkp) || {};
    if (stepsPane) {
      const phase = state.pane;
      const words = vocab().steps || {};
      const done = {};
      for (const s of tkp[phase] || []) if (!done[s.step]) done[s.step] = s;
      el("steps").replaceChildren(...(vocab()[phase] || []).map((name, i) => {
        const s = done[name];
        return h("li" + (s ? ".done" : ""), { dataset: { step: name } },
          h("span.unum", s ? "✓" : String(i + 1)),
          h("div.utext", h("span", words[name] || name), s ? h("small", `${S.hhmm(s.at)} WIB${s.note ? " · " + s.note : ""}`) : null,
            s && s.warning ? h("small.warn-text", s.warning) : null),
          s ? h("span.udone", "tercatat")
            : h("button.btn.primary.record", { type: "button", dataset: { step: name }, on: { click: (ev) => recordStep(phase, name, ev.currentTarget) } }, "Catat"));
      }));
    } else {
      el("evidence-list").replaceChildren(...(tkp.evidence || []).map((e) =>
        h("li", h("strong", e.description), h("small", `${e.kind} · segel ${e.seal_number}`))));
    }
  }

  async function recordStep(phase, step, button) {
    const d = state.detail;
    button.disabled = true;
    button.textContent = "…";
    const body = { step, note: el("step-note").value.trim() };
    if (state.lastFix) body.position = { lat: state.lastFix.lat, lon: state.lastFix.lon };
    const path = phase === "tptkp" ? "tptkp" : "olah-tkp";
    const r = await S.api(`/api/v1/incidents/${encodeURIComponent(d.incident_id)}/${path}`, { method: "POST", body });
    if (r.status === 201) {
      el("step-note").value = "";
      const out = r.data;
      const list = (d.tkp = d.tkp || {})[phase] = (d.tkp[phase] || []);
      list.push({ step, at: out.recorded_at, note: body.note, warning: out.warning, out_of_order: out.out_of_order });
      S.toast(out.warning || `Tercatat: ${(vocab().steps || {})[step] || step}`, out.warning ? "alert" : "ok");
      renderTkp();
    } else if (r.status === 202) {
      S.toast("Langkah tercatat; menunggu konfirmasi.", "info");
    } else {
      S.toast(r.error, "error");
      button.disabled = false;
      button.textContent = "Catat";
    }
    discoverSoon();
  }

  async function saveEvidence(ev) {
    ev.preventDefault();
    const d = state.detail;
    if (!d) return;
    const body = {
      description: el("ev-description").value.trim(), kind: el("ev-kind").value,
      seal_number: el("ev-seal").value.trim(), found_where: el("ev-where").value.trim() || null,
    };
    if (el("ev-here").checked && state.lastFix) body.found_at = { lat: state.lastFix.lat, lon: state.lastFix.lon };
    const button = el("ev-submit");
    button.disabled = true;
    const r = await S.api(`/api/v1/incidents/${encodeURIComponent(d.incident_id)}/evidence`, { method: "POST", body });
    button.disabled = false;
    if (r.status === 201) {
      S.toast(`Barang bukti ${r.data.evidence_id} tersimpan (segel ${r.data.seal_number})`, "ok");
      el("evidence-form").reset();
      el("ev-here").checked = true;
      discoverSoon();
    } else if (r.status === 202) S.toast("Barang bukti tercatat; menunggu konfirmasi.", "info");
    else S.toast(r.error, "error");
  }

  // --- position, backup, panic -----------------------------------------------------------------------
  function fix() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) {
        reject(new Error("Perangkat ini tidak mendukung GPS di peramban"));
        return;
      }
      navigator.geolocation.getCurrentPosition(resolve, (e) => reject(new Error(geoError(e))), { enableHighAccuracy: true, timeout: 15000, maximumAge: 5000 });
    });
  }
  const geoError = (e) => ({ 1: "Izin lokasi ditolak", 2: "Posisi tidak tersedia", 3: "GPS terlalu lama menjawab" }[e.code] || "GPS gagal");

  async function sendPosition(p) {
    const c = p.coords;
    state.lastFix = { lat: c.latitude, lon: c.longitude };
    const body = { lat: c.latitude, lon: c.longitude, at: new Date(p.timestamp || Date.now()).toISOString() };
    if (c.speed != null && c.speed >= 0) body.speed_kmh = Math.min(400, c.speed * 3.6);
    if (c.heading != null && c.heading >= 0 && c.heading < 360) body.heading = c.heading;
    const r = await S.api(`/api/v1/units/${encodeURIComponent(state.unitId)}/position`, { method: "POST", body });
    state.lastSent = Date.now();
    if (r.ok && state.assignment) {
      mapFor = null; // redraw with the new position and distance
      renderAssignment();
    }
    el("position-note").textContent = r.ok
      ? `Terkirim ${S.time(Date.now())} WIB · ±${Math.round(c.accuracy || 0)} m`
      : `Gagal mengirim posisi: ${r.error}`;
    return r.ok;
  }

  function wire() {
    document.querySelector(".utabs").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-pane]");
      if (!b) return;
      state.pane = b.dataset.pane;
      renderTkp();
    });
    el("evidence-form").addEventListener("submit", saveEvidence);
    el("send-position").addEventListener("click", async () => {
      try {
        if (await sendPosition(await fix())) S.toast("Posisi terkirim", "ok");
      } catch (e) {
        S.toast(e.message, "error");
      }
    });
    el("auto-position").addEventListener("change", (ev) => {
      if (ev.target.checked) {
        if (!navigator.geolocation) {
          S.toast("GPS tidak tersedia", "error");
          ev.target.checked = false;
          return;
        }
        state.watch = navigator.geolocation.watchPosition(
          (p) => { if (Date.now() - state.lastSent > 10000) sendPosition(p); },
          (e) => { S.toast(geoError(e), "error"); ev.target.checked = false; },
          { enableHighAccuracy: true, maximumAge: 5000 });
      } else if (state.watch != null) {
        navigator.geolocation.clearWatch(state.watch);
        state.watch = null;
      }
    });
    el("backup").addEventListener("click", async () => {
      const d = state.detail;
      if (!d) return;
      const reason = window.prompt("Alasan meminta bantuan (opsional):", "") ;
      if (reason === null) return;
      const r = await S.api(`/api/v1/incidents/${encodeURIComponent(d.incident_id)}/backup`, { method: "POST", body: { reason: reason.trim() || null } });
      S.toast(r.ok ? "Permintaan bantuan terkirim; unit terdekat direkomendasikan." : r.error, r.ok ? "ok" : "error");
    });
    el("panic").addEventListener("click", async () => {
      if (!window.confirm("Kirim TOMBOL PANIK? Kejadian P1 dibuka di posisi Anda.")) return;
      const body = {};
      try {
        const p = await fix();
        body.lat = p.coords.latitude;
        body.lon = p.coords.longitude;
      } catch (e) { /* the last known position is used */ }
      const r = await S.api(`/api/v1/units/${encodeURIComponent(state.unitId)}/panic`, { method: "POST", body });
      S.toast(r.ok ? "PANIK terkirim. Bantuan sedang diarahkan." : r.error, r.ok ? "alert" : "error");
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
