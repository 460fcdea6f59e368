/* SPKT Dispatch — the dispatcher and command center console.
   The queue, the map and the detail follow the live stream (/api/v1/stream); REST reloads the
   whole picture on start, on a `reset` and every half minute. A command center (or supervisor)
   token sees the same, read-only. */
(function () {
  "use strict";
  const S = window.SPKT;
  const h = S.h;
  const PRIO = { P1: 0, P2: 1, P3: 2, P4: 3 };
  // How far an open incident has come (the scene's statuses follow on_scene).
  const STATUS_RANK = { received: 0, verified: 0, reopened: 0, assigned: 1, on_scene: 2, tptkp: 2, scene_secured: 2,
    olah_tkp: 2, scene_released: 2 };
  const ENDED = new Set(["closed", "duplicate", "cancelled", "transferred"]);
  const ASSIGNING_ROLES = new Set(["dispatcher", "admin"]);
  const ACTIVE_ASSIGNMENT = new Set(["assigned", "acknowledged", "en_route", "on_scene"]);
  // An event the stream told of and the read model does not show yet: asked again this often, this long.
  const AWAIT_RETRY_MS = 300;
  const AWAIT_READ_MODEL_MS = 30000;

  const state = {
    config: null, claims: null, canAssign: false,
    categories: {}, incidents: new Map(), units: new Map(),
    selected: null, detail: null, reports: {}, targets: {},
    board: null, intervals: null,
    statusFilter: "open", prioFilter: new Set(), breachOnly: false,
    streamState: "connecting", listStatus: null, bornFromStream: new Map(),
    awaited: null, // {incidentId, eventId, since}: the newest stream event about the open detail
  };
  let map = null;
  let layers = {};
  const unitMarkers = new Map();
  const incidentMarkers = new Map();
  const rowRefs = new Map();
  let stream = null;
  let timers = [];

  /* For the tests and for whoever opens the developer tools. */
  window.SPKT.console = {
    state, unitMarkers, incidentMarkers,
    get map() { return map; },
    unitLatLng(unitId) {
      const m = unitMarkers.get(unitId);
      if (!m) return null;
      const p = m.getLatLng();
      return [p.lat, p.lng];
    },
  };

  const vocab = () => (state.config && state.config.vocabulary) || {};
  const unitStatusWord = (s) => (vocab().unit_status || {})[s] || (s || "-").replace(/_/g, " ");
  const availabilityOf = (u) => u.availability || (vocab().availability || {})[u.status] || "not_available";
  const categoryName = (code) => (state.categories[code] && state.categories[code].name) || (code || "-").replace(/_/g, " ");
  const el = (id) => document.getElementById(id);

  // --- start and sign-in ----------------------------------------------------------------------
  async function start() {
    S.takeFragment();
    state.config = await S.config();
    S.onUnauthorized = (message) => askToken(message);
    el("signout").addEventListener("click", () => {
      S.clearToken();
      askToken("Anda telah keluar.");
    });
    wireControls();
    const token = S.token();
    const claims = token && S.claims(token);
    if (!claims || S.expired(claims)) {
      askToken(claims ? "Token sudah kedaluwarsa; tempel token baru." : "");
      return;
    }
    begin(claims);
  }

  function askToken(message) {
    stop();
    S.signIn({
      title: "Masuk ke konsol SPKT",
      hint: "./spkt.sh token --role dispatcher\n./spkt.sh token --role command_center",
      message,
      onToken: (token, claims) => begin(claims),
    });
  }

  function stop() {
    if (stream) stream.stop();
    stream = null;
    timers.forEach(clearInterval);
    timers = [];
  }

  function begin(claims) {
    if (claims.role === "field_unit") {
      location.replace("/console/unit");
      return;
    }
    state.claims = claims;
    state.canAssign = ASSIGNING_ROLES.has(claims.role);
    document.body.classList.toggle("readonly", !state.canAssign);
    el("readonly-badge").hidden = state.canAssign;
    const title = claims.role === "command_center" ? "Command Center" : claims.role === "supervisor" ? "Konsol Supervisor" : "Konsol Dispatcher";
    el("console-title").textContent = title;
    document.title = `SPKT Dispatch — ${title}`;
    el("console-sub").textContent = claims.jurisdiction ? `Wilayah ${claims.jurisdiction}` : "Seluruh wilayah";
    el("who").textContent = S.whoText(claims);
    el("who").title = `Masuk sebagai ${claims.sub}`;
    if (!map) initMap();
    stop();
    loadAll();
    startStream();
    timers.push(setInterval(tick, 1000));
    timers.push(setInterval(() => reconcile(false), 30000));
    timers.push(setInterval(() => { if (state.streamState !== "live") reconcile(true); }, 3000));
    timers.push(setInterval(loadIntervals, 60000));
    tick();
  }

  // --- loading ---------------------------------------------------------------------------------
  async function loadAll() {
    await loadCategories();
    await Promise.all([loadIncidents(), loadUnits(), loadBoard(), loadIntervals()]);
    if (state.selected) loadDetail(state.selected);
  }

  async function reconcile(quick) {
    await Promise.all([loadIncidents(), loadUnits(), loadBoard()]);
    if (!quick && state.selected) loadDetail(state.selected);
  }

  async function loadCategories() {
    if (Object.keys(state.categories).length) return;
    const r = await S.api("/api/v1/categories");
    if (r.ok) state.categories = Object.fromEntries(r.data.map((c) => [c.code, c]));
  }

  async function loadIncidents() {
    const query = new URLSearchParams({ status: state.statusFilter, limit: "200" });
    let items = [];
    let cursor = null;
    let pages = 0;
    do {
      if (cursor) query.set("cursor", cursor);
      const r = await S.api("/api/v1/incidents?" + query.toString());
      if (!r.ok) {
        state.listStatus = r.status;
        renderQueue();
        return;
      }
      items = items.concat(r.data.items || []);
      cursor = r.data.next_cursor;
    } while (cursor && ++pages < 5);
    state.listStatus = 200;
    const fresh = new Map(items.map((i) => [i.incident_id, i]));
    // What the stream told us in the last seconds may not be in the read model yet: keep it.
    const now = Date.now();
    for (const [id, born] of state.bornFromStream) {
      if (now - born > 15000) state.bornFromStream.delete(id);
      else if (!fresh.has(id) && state.incidents.has(id) && matchesStatusFilter(state.incidents.get(id))) {
        fresh.set(id, state.incidents.get(id));
      }
    }
    state.incidents = fresh;
    renderQueue();
    renderIncidentMarkers();
    renderKpis();
  }

  async function loadUnits() {
    const r = await S.api("/api/v1/units");
    if (!r.ok) {
      if (r.status === 403) el("pane-units").replaceChildren(h("p.notice", r.error));
      return;
    }
    state.units = new Map(r.data.items.map((u) => [u.unit_id, u]));
    renderUnitMarkers();
    renderUnitsPane();
    renderKpis();
  }

  async function loadBoard() {
    const r = await S.api("/api/v1/board");
    state.board = r.ok ? r.data : null;
    renderKpis();
  }

  async function loadIntervals() {
    const r = await S.api("/api/v1/intervals");
    state.intervals = r.ok ? r.data : { error: r.error };
    renderIntervals();
  }

  let detailSeq = 0;
  async function loadDetail(incidentId) {
    const seq = ++detailSeq;
    // The stream comes straight from Kafka, the read model a moment later: the page is asked for
    // with the newest event seen about it, and asked again until it includes that event.
    const awaited = state.awaited && state.awaited.incidentId === incidentId ? state.awaited : null;
    const seen = awaited ? `?seen=${encodeURIComponent(awaited.eventId)}` : "";
    const r = await S.api(`/api/v1/incidents/${encodeURIComponent(incidentId)}${seen}`);
    if (seq !== detailSeq || state.selected !== incidentId) return;
    if (awaited && state.awaited === awaited) {
      const behind = r.ok && r.headers.get("X-Read-Model") === "behind";
      if (behind && Date.now() - awaited.since < AWAIT_READ_MODEL_MS) {
        setTimeout(() => { if (state.awaited === awaited && state.selected === incidentId) loadDetail(incidentId); },
                   AWAIT_RETRY_MS);
      } else {
        state.awaited = null;
      }
    }
    if (!r.ok) {
      el("detail").replaceChildren(h("p.notice.error", r.error));
      return;
    }
    const first = !state.detail || state.detail.incident_id !== incidentId;
    state.detail = r.data;
    const targets = (r.data.timers && r.data.timers.targets) || {};
    state.targets[incidentId] = Object.fromEntries(Object.entries(targets).map(([k, v]) => [k, Date.parse(v)]));
    mergeDetailIntoItem(r.data);
    renderDetail();
    if (first) frame(r.data);
    loadReports(r.data);
  }

  const refreshSoon = debounce(() => state.selected && loadDetail(state.selected), 250);
  const boardSoon = debounce(loadBoard, 1500);
  const intervalsSoon = debounce(loadIntervals, 3000);

  async function loadReports(detail) {
    const missing = (detail.reports || []).slice(0, 12).filter((id) => !state.reports[id]);
    if (!missing.length) return;
    const answers = await Promise.all(missing.map((id) => S.api(`/api/v1/reports/${encodeURIComponent(id)}`)));
    answers.forEach((r, i) => { if (r.ok) state.reports[missing[i]] = r.data; });
    if (state.detail && state.detail.incident_id === detail.incident_id) renderReports();
  }

  /* The list item learns from the detail what it knows better (status, units). */
  function mergeDetailIntoItem(d) {
    const item = state.incidents.get(d.incident_id);
    if (!item) return;
    item.status = d.status;
    item.priority = d.priority;
    item.scene_status = d.scene_status;
    item.units = Array.from(new Set((d.assignments || []).filter((a) => ACTIVE_ASSIGNMENT.has(a.status)).map((a) => a.unit_id)));
    renderQueue();
    renderIncidentMarkers();
  }

  // --- the live stream --------------------------------------------------------------------------
  function startStream() {
    stream = S.openStream("", {
      onState(s, status) {
        state.streamState = s;
        const pill = el("stream-pill");
        pill.dataset.state = s;
        pill.textContent = { live: "LANGSUNG", connecting: "MENYAMBUNG", down: "TERPUTUS", unavailable: "MEMUAT ULANG", forbidden: "MEMUAT ULANG" }[s] || s;
        pill.title = s === "live" ? "Aliran data langsung tersambung"
          : s === "unavailable" || s === "forbidden" ? `Aliran langsung tidak tersedia (HTTP ${status}); data dimuat ulang tiap 3 detik`
            : "Menyambung ulang; data dimuat ulang tiap 3 detik";
        if (s === "live") reconcile(true); // whatever happened while we were away
      },
      onReset() {
        loadAll();
      },
      onEvent,
    });
  }

  function onEvent(type, env) {
    const d = env.data || {};
    const incidentId = d.incident_id || (type.startsWith("incident.") ? env.subject : null);
    switch (type) {
      case "incident.opened": {
        const item = {
          incident_id: d.incident_id, number: d.number, status: "received", category: d.category,
          priority: d.priority, summary: d.summary, location: d.location, jurisdiction: d.jurisdiction,
          opened_at: d.opened_at, updated_at: env.time, scene_status: null, sensitive: d.sensitive,
          assistance_request: d.assistance_request, breached: [], units: [],
        };
        state.targets[d.incident_id] = Object.fromEntries(Object.entries(d.targets || {}).map(([k, v]) => [k, Date.parse(v)]));
        if (matchesStatusFilter(item)) {
          state.incidents.set(item.incident_id, item);
          state.bornFromStream.set(item.incident_id, Date.now());
          renderQueue(item.incident_id);
          renderIncidentMarkers();
        }
        boardSoon();
        break;
      }
      case "incident.relocated": {
        const item = state.incidents.get(d.incident_id);
        if (item) {
          item.location = d.location;
          renderIncidentMarkers();
        }
        break;
      }
      case "incident.target-breached": {
        const item = state.incidents.get(d.incident_id);
        if (item) {
          item.breached = Array.from(new Set([...(item.breached || []), d.target]));
          renderQueue();
          renderIncidentMarkers();
        }
        boardSoon();
        break;
      }
      case "unit.assigned": {
        intervalsSoon();
        const item = state.incidents.get(d.incident_id);
        if (item) {
          item.units = Array.from(new Set([...(item.units || []), d.unit_id]));
          if (STATUS_RANK[item.status] === 0) item.status = "assigned";
          renderQueue();
          renderIncidentMarkers();
        }
        break;
      }
      case "assignment.acknowledged":
        intervalsSoon();
        break;
      case "unit.arrived": {
        intervalsSoon();
        const item = state.incidents.get(d.incident_id);
        if (item && STATUS_RANK[item.status] !== undefined && STATUS_RANK[item.status] < 2) {
          item.status = "on_scene";
          renderQueue();
          renderIncidentMarkers();
        }
        break;
      }
      case "incident.closed":
      case "incident.merged":
      case "incident.reopened":
      case "incident.split":
        setTimeout(loadIncidents, 400);
        boardSoon();
        break;
      case "unit.position-reported": {
        const u = state.units.get(d.unit_id);
        if (u) {
          u.position = { lat: d.lat, lon: d.lon, at: d.at };
          u.stale = false;
        }
        moveUnit(d.unit_id, d.lat, d.lon);
        return; // positions come often: nothing else to redraw
      }
      case "unit.status-changed": {
        const u = state.units.get(d.unit_id);
        if (u) {
          u.status = d.status;
          u.availability = (vocab().availability || {})[d.status] || u.availability;
          u.incident_id = d.incident_id || null;
          u.status_since = d.changed_at;
          updateUnitMarker(u);
          renderUnitsPaneSoon();
          renderKpis();
        }
        boardSoon();
        break;
      }
      case "scene.status-changed": {
        const item = state.incidents.get(d.incident_id);
        if (item && !ENDED.has(item.status)) {
          item.status = d.status;
          item.scene_status = d.status;
          renderQueue();
        }
        break;
      }
      case "unit.registered":
        setTimeout(loadUnits, 400);
        break;
      default:
        break;
    }
    if (state.selected && (incidentId === state.selected || env.subject === state.selected)) {
      if (env.id) state.awaited = { incidentId: state.selected, eventId: env.id, since: Date.now() };
      refreshSoon();
    }
  }

  function matchesStatusFilter(item) {
    if (state.statusFilter === "open") return !ENDED.has(item.status);
    if (state.statusFilter === "closed") return item.status === "closed";
    return item.status === state.statusFilter;
  }

  // --- timers ---------------------------------------------------------------------------------
  /* Time since opened, and the target now running: dispatch until a unit is assigned, then on
     scene until one arrives. Breached when the API says so or the due time has passed. */
  function timerOf(item, now) {
    const opened = Date.parse(item.opened_at);
    const ended = ENDED.has(item.status);
    const elapsed = ((ended ? Date.parse(item.updated_at || item.opened_at) : now) - opened) / 1000;
    const cat = state.categories[item.category];
    const exact = state.targets[item.incident_id] || {};
    const dueOf = (name) => exact[name] || (cat && cat.targets && cat.targets[name + "_s"] != null ? opened + cat.targets[name + "_s"] * 1000 : null);
    let phase = null;
    if (!ended) {
      const assigned = (item.units || []).length > 0 || STATUS_RANK[item.status] >= 1;
      if (!assigned) phase = "dispatch";
      else if (!(STATUS_RANK[item.status] >= 2) && !item.scene_status) phase = "on_scene";
    }
    const due = phase ? dueOf(phase) : null;
    const remaining = due ? (due - now) / 1000 : null;
    const span = due ? (due - opened) / 1000 : null;
    const overdue = remaining != null && remaining < 0;
    const breached = (item.breached || []).length > 0 || overdue;
    return { elapsed, phase, remaining, span, overdue, breached, ended };
  }

  function timerText(t) {
    if (t.ended) return "selesai";
    if (!t.phase) return "target terpenuhi";
    const what = t.phase === "dispatch" ? "kirim unit" : "tiba di TKP";
    if (t.remaining == null) return what;
    return t.remaining < 0 ? `${what} lewat ${S.duration(-t.remaining)}` : `${what} sisa ${S.duration(t.remaining)}`;
  }

  function tick() {
    const now = Date.now();
    el("clock").textContent = `${S.time(now)} WIB`;
    for (const [id, ref] of rowRefs) {
      const item = state.incidents.get(id);
      if (!item) continue;
      const t = timerOf(item, now);
      ref.elapsed.textContent = S.duration(t.elapsed);
      ref.target.textContent = timerText(t);
      ref.row.classList.toggle("breached", t.breached);
      ref.target.classList.toggle("overdue", t.overdue);
      const fill = t.span ? Math.max(0, Math.min(1, 1 - t.remaining / t.span)) : t.phase ? 0 : 1;
      ref.bar.style.width = `${Math.round(fill * 100)}%`;
      ref.bar.className = t.overdue ? "over" : !t.phase ? "met" : fill > 0.75 ? "warn" : "";
      const marker = incidentMarkers.get(id);
      if (marker && marker.breached !== t.breached) { // the pin starts to pulse the moment a target passes
        marker.breached = t.breached;
        marker.setIcon(incidentIcon(item));
      }
    }
    if (Math.floor(now / 1000) % 5 === 0) renderKpis();
    const detailTimer = el("detail-timer");
    if (detailTimer && state.selected) {
      const item = state.incidents.get(state.selected) || state.detail;
      if (item) {
        const t = timerOf(Object.assign({ units: [] }, item), now);
        detailTimer.querySelector(".elapsed").textContent = S.duration(t.elapsed);
        const target = detailTimer.querySelector(".target");
        target.textContent = timerText(t);
        target.classList.toggle("overdue", t.overdue);
      }
    }
  }

  // --- the queue --------------------------------------------------------------------------------
  function visibleIncidents() {
    const now = Date.now();
    return Array.from(state.incidents.values())
      .filter((i) => !state.prioFilter.size || state.prioFilter.has(i.priority))
      .filter((i) => !state.breachOnly || timerOf(i, now).breached)
      .map((i) => ({ i, t: timerOf(i, now) }))
      .sort((a, b) => (PRIO[a.i.priority] ?? 9) - (PRIO[b.i.priority] ?? 9)
        || Number(b.t.breached) - Number(a.t.breached)
        || (STATUS_RANK[a.i.status] ?? 5) - (STATUS_RANK[b.i.status] ?? 5)
        || Date.parse(a.i.opened_at) - Date.parse(b.i.opened_at))
      .map(({ i }) => i);
  }

  function renderQueue(flashId) {
    const list = el("queue");
    const items = visibleIncidents();
    el("queue-count").textContent = String(items.length);
    rowRefs.clear();
    const rows = items.map((item) => queueRow(item, item.incident_id === flashId));
    if (!rows.length) {
      let text = state.statusFilter === "open" ? "Tidak ada kejadian terbuka." : "Tidak ada kejadian.";
      if (state.listStatus && state.listStatus !== 200) {
        text = state.listStatus === 404
          ? "Daftar kejadian belum tersedia dari API (GET /api/v1/incidents). Kejadian baru tetap muncul dari aliran langsung."
          : `Daftar kejadian tidak dapat dimuat (HTTP ${state.listStatus}).`;
      }
      rows.push(h("div.queue-empty", text));
    }
    list.replaceChildren(...rows);
    renderKpis();
    tick();
  }

  function queueRow(item, flash) {
    const elapsed = h("span.elapsed", "--:--");
    const target = h("span.target", "");
    const bar = h("i");
    const units = (item.units || []).length;
    const row = h("div.inc-row.p" + (item.priority || "P4").slice(1), {
      role: "listitem", tabindex: 0, dataset: { incidentId: item.incident_id },
      "aria-selected": String(item.incident_id === state.selected),
      on: {
        click: () => selectIncident(item.incident_id),
        keydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); selectIncident(item.incident_id); } },
      },
    },
      h("div.prio", item.priority || "?"),
      h("div.inc-main",
        h("div.inc-line1", h("span.inc-number", { title: item.number || "" }, item.number || item.incident_id.slice(0, 8))),
        h("div.inc-cat", categoryName(item.category),
          item.sensitive ? h("span.tag.sensitive", "sensitif") : null,
          item.assistance_request ? h("span.tag.assist", "pendampingan") : null),
        h("div.inc-summary", item.summary || ""),
        h("div.inc-meta", (item.jurisdiction || "tanpa wilayah").replace(/^polsek-|^polres-/, ""),
          " · ", units ? `${units} unit` : "belum ada unit",
          (item.breached || []).length ? h("span.tag.breach", "LEWAT TARGET") : null)),
      h("div.inc-timer", h("span.inc-status.s-" + (item.status || ""), S.word("incident_status", item.status)),
        elapsed, target, h("div.bar", bar)));
    if (item.incident_id === state.selected) row.classList.add("selected");
    if (flash) row.classList.add("flash");
    rowRefs.set(item.incident_id, { row, elapsed, target, bar });
    return row;
  }

  function wireControls() {
    el("status-filter").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-status]");
      if (!b) return;
      state.statusFilter = b.dataset.status;
      el("status-filter").querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
      state.incidents = new Map();
      renderQueue();
      loadIncidents();
    });
    el("prio-filter").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-prio]");
      if (!b) return;
      const p = b.dataset.prio;
      if (state.prioFilter.has(p)) state.prioFilter.delete(p);
      else state.prioFilter.add(p);
      b.classList.toggle("on", state.prioFilter.has(p));
      renderQueue();
      renderIncidentMarkers();
    });
    el("kpi-breach").addEventListener("click", () => {
      state.breachOnly = !state.breachOnly;
      el("kpi-breach").classList.toggle("on", state.breachOnly);
      renderQueue();
    });
    document.querySelector(".tabs").addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-tab]");
      if (b) showTab(b.dataset.tab);
    });
  }

  function showTab(name) {
    document.querySelectorAll(".tabs button").forEach((b) => {
      b.classList.toggle("on", b.dataset.tab === name);
      b.setAttribute("aria-selected", String(b.dataset.tab === name));
    });
    for (const pane of ["incident", "units", "intervals"]) el("pane-" + pane).hidden = pane !== name;
    if (name === "intervals" && state.claims) loadIntervals();
  }

  // --- header figures -----------------------------------------------------------------------------
  function renderKpis() {
    const board = state.board;
    const now = Date.now();
    let open;
    let byPrio;
    let breached;
    const listIsOpen = state.statusFilter === "open" && state.listStatus === 200;
    if (listIsOpen || !(board && board.incidents)) {
      // The open list follows the stream, so it is the livelier count.
      const items = Array.from(state.incidents.values()).filter((i) => !ENDED.has(i.status));
      open = items.length;
      byPrio = {};
      items.forEach((i) => { byPrio[i.priority] = (byPrio[i.priority] || 0) + 1; });
      const late = new Set(items.filter((i) => timerOf(i, now).breached).map((i) => i.incident_id));
      ((board && board.breached) || []).forEach((b) => late.add(b.incident_id));
      breached = late.size;
    } else {
      const byStatus = board.incidents.by_status || {};
      open = Object.entries(byStatus).filter(([s]) => !ENDED.has(s)).reduce((n, [, v]) => n + v, 0);
      byPrio = board.incidents.by_priority || {};
      breached = new Set((board.breached || []).map((b) => b.incident_id)).size;
    }
    el("kpi-open").querySelector(".kpi-value").textContent = String(open);
    el("kpi-prio").replaceChildren(...["P1", "P2", "P3", "P4"].map((p) =>
      h("span.prio-count.p" + p.slice(1), { title: S.word("priority", p) }, h("b", p), String(byPrio[p] || 0))));
    const breach = el("kpi-breach");
    breach.querySelector(".kpi-value").textContent = String(breached);
    breach.classList.toggle("alarm", breached > 0);
    let byClass = state.units.size ? null : board && board.units && board.units.by_class;
    if (!byClass) {
      byClass = { available: 0, conditional: 0, not_available: 0 };
      for (const u of state.units.values()) {
        const a = availabilityOf(u);
        byClass[a === "conditionally_available" ? "conditional" : a] = (byClass[a === "conditionally_available" ? "conditional" : a] || 0) + 1;
      }
    }
    el("kpi-units").replaceChildren(
      h("span.ucount.available", { title: "Unit tersedia" }, h("i"), String(byClass.available || 0)),
      h("span.ucount.conditionally_available", { title: "Unit tersedia bersyarat (turjawali)" }, h("i"), String(byClass.conditional || 0)),
      h("span.ucount.not_available", { title: "Unit tidak tersedia" }, h("i"), String(byClass.not_available || 0)));
  }

  // --- the map ------------------------------------------------------------------------------------
  function initMap() {
    map = S.makeMap(el("map"), state.config);
    if (!map) {
      el("legend").hidden = true;
      return;
    }
    const L = window.L;
    layers = { links: L.layerGroup().addTo(map), units: L.layerGroup().addTo(map), incidents: L.layerGroup().addTo(map) };
    if (state.config.boundaries) el("legend-outline").lastChild.textContent = "Batas wilayah";
  }

  const KIND_GLYPH = { car: "MB", motorcycle: "MT", foot: "JK", inafis: "IN", reskrim: "RK", lantas: "LL" };

  function unitIcon(u) {
    const selected = state.detail && (state.detail.assignments || []).some((a) => a.unit_id === u.unit_id && ACTIVE_ASSIGNMENT.has(a.status));
    const classes = ["unit-pin", availabilityOf(u), u.stale ? "stale" : "", selected ? "engaged" : ""].join(" ");
    return window.L.divIcon({
      className: "unit-marker",
      html: `<div class="${classes}" data-unit-id="${encodeURIComponent(u.unit_id)}">${KIND_GLYPH[u.kind] || "U"}</div>`,
      iconSize: [22, 22], iconAnchor: [11, 11],
    });
  }

  function unitTip(u) {
    return h("div.tip",
      h("strong", u.callsign || u.unit_id), h("br"),
      `${S.word("kind", u.kind)} · ${unitStatusWord(u.status)}`,
      u.stale ? h("div.tip-warn", "posisi usang") : null);
  }

  function renderUnitMarkers() {
    if (!map) return;
    const seen = new Set();
    for (const u of state.units.values()) {
      if (!u.position) continue;
      seen.add(u.unit_id);
      const latlng = [u.position.lat, u.position.lon];
      let m = unitMarkers.get(u.unit_id);
      if (!m) {
        m = window.L.marker(latlng, { icon: unitIcon(u), keyboard: false, title: u.callsign, zIndexOffset: 0 });
        m.bindTooltip(() => unitTip(state.units.get(u.unit_id) || u), { direction: "top", offset: [0, -10], className: "map-tip" });
        m.on("click", () => focusUnit(u.unit_id));
        m.addTo(layers.units);
        unitMarkers.set(u.unit_id, m);
      } else {
        m.setLatLng(latlng);
        m.setIcon(unitIcon(u));
      }
    }
    for (const [id, m] of unitMarkers) {
      if (!seen.has(id)) {
        layers.units.removeLayer(m);
        unitMarkers.delete(id);
      }
    }
  }

  function moveUnit(unitId, lat, lon) {
    if (!map) return;
    const m = unitMarkers.get(unitId);
    if (m) {
      m.setLatLng([lat, lon]);
      const u = state.units.get(unitId);
      if (u && u.stale === false) {
        const node = m.getElement() && m.getElement().querySelector(".unit-pin");
        if (node) node.classList.remove("stale");
      }
    } else if (state.units.has(unitId)) {
      renderUnitMarkers();
    } else {
      setTimeout(loadUnits, 300); // a unit we do not know yet
    }
    if (state.detail) drawLinks();
  }

  function updateUnitMarker(u) {
    const m = unitMarkers.get(u.unit_id);
    if (m) m.setIcon(unitIcon(u));
  }

  function incidentIcon(item) {
    const t = timerOf(item, Date.now());
    const classes = ["inc-pin", "p" + (item.priority || "P4").slice(1), t.breached ? "breached" : "",
      item.incident_id === state.selected ? "selected" : "", STATUS_RANK[item.status] >= 1 ? "covered" : ""].join(" ");
    return window.L.divIcon({
      className: "inc-marker",
      html: `<div class="${classes}"><span>${(item.priority || "P?").replace(/[^P0-9]/g, "")}</span></div>`,
      iconSize: [30, 30], iconAnchor: [15, 15],
    });
  }

  function renderIncidentMarkers() {
    if (!map) return;
    const seen = new Set();
    for (const item of state.incidents.values()) {
      const loc = item.location || {};
      if (loc.lat == null || loc.lon == null) continue;
      if (state.prioFilter.size && !state.prioFilter.has(item.priority)) continue;
      seen.add(item.incident_id);
      let m = incidentMarkers.get(item.incident_id);
      const z = 2000 - (PRIO[item.priority] ?? 4) * 100 + (item.incident_id === state.selected ? 500 : 0);
      if (!m) {
        m = window.L.marker([loc.lat, loc.lon], { icon: incidentIcon(item), zIndexOffset: z, title: item.number || "" });
        m.bindTooltip(() => {
          const cur = state.incidents.get(item.incident_id) || item;
          return h("div.tip", h("strong", `${cur.priority} · ${cur.number || ""}`), h("br"), categoryName(cur.category),
            h("div.tip-sub", S.word("incident_status", cur.status)));
        }, { direction: "top", offset: [0, -14], className: "map-tip" });
        m.on("click", () => selectIncident(item.incident_id));
        m.addTo(layers.incidents);
        incidentMarkers.set(item.incident_id, m);
      } else {
        m.setLatLng([loc.lat, loc.lon]);
        m.setIcon(incidentIcon(item));
        m.setZIndexOffset(z);
      }
    }
    for (const [id, m] of incidentMarkers) {
      if (!seen.has(id)) {
        layers.incidents.removeLayer(m);
        incidentMarkers.delete(id);
      }
    }
  }

  /* Lines from the incident to its units (solid) and to the recommended candidates (dashed). */
  function drawLinks() {
    if (!map || !layers.links) return;
    layers.links.clearLayers();
    const d = state.detail;
    if (!d || !d.location || d.location.lat == null) return;
    const at = [d.location.lat, d.location.lon];
    const active = new Set((d.assignments || []).filter((a) => ACTIVE_ASSIGNMENT.has(a.status)).map((a) => a.unit_id));
    for (const id of active) {
      const u = state.units.get(id);
      if (u && u.position) window.L.polyline([[u.position.lat, u.position.lon], at], { className: "link-assigned", interactive: false }).addTo(layers.links);
    }
    const rec = d.recommendation;
    if (rec && !ENDED.has(d.status)) {
      (rec.candidates || []).forEach((c, i) => {
        if (active.has(c.unit_id)) return;
        const u = state.units.get(c.unit_id);
        if (u && u.position) {
          window.L.polyline([[u.position.lat, u.position.lon], at], { className: "link-candidate" + (i === 0 ? " top" : ""), interactive: false }).addTo(layers.links);
        }
      });
    }
  }

  /* Show the incident with its units and the recommended ones around it. */
  function frame(d) {
    if (!map || !d.location || d.location.lat == null) return;
    const points = [[d.location.lat, d.location.lon]];
    const ids = new Set((d.assignments || []).filter((a) => ACTIVE_ASSIGNMENT.has(a.status)).map((a) => a.unit_id));
    ((d.recommendation && d.recommendation.candidates) || []).slice(0, 3).forEach((c) => ids.add(c.unit_id));
    for (const id of ids) {
      const u = state.units.get(id);
      if (u && u.position) points.push([u.position.lat, u.position.lon]);
    }
    map.flyToBounds(window.L.latLngBounds(points).pad(0.35), { maxZoom: 15, duration: 0.6 });
  }

  function focusUnit(unitId) {
    const u = state.units.get(unitId);
    if (!u) return;
    showTab("units");
    const card = document.querySelector(`.unit-card[data-unit-id="${CSS.escape(unitId)}"]`);
    if (card) {
      card.scrollIntoView({ block: "center" });
      card.classList.add("flash");
      setTimeout(() => card.classList.remove("flash"), 1600);
    }
    if (map && u.position) map.panTo([u.position.lat, u.position.lon]);
  }

  // --- the incident detail -----------------------------------------------------------------------
  function selectIncident(incidentId) {
    state.selected = incidentId;
    state.detail = null;
    showTab("incident");
    el("detail-empty").hidden = true;
    const detail = el("detail");
    detail.hidden = false;
    detail.replaceChildren(h("p.loading", "Memuat rincian kejadian…"));
    document.querySelectorAll(".inc-row").forEach((r) => {
      const on = r.dataset.incidentId === incidentId;
      r.classList.toggle("selected", on);
      r.setAttribute("aria-selected", String(on));
    });
    renderIncidentMarkers();
    const item = state.incidents.get(incidentId);
    if (map && item && item.location && item.location.lat != null) {
      const ll = window.L.latLng(item.location.lat, item.location.lon);
      if (!map.getBounds().pad(-0.15).contains(ll)) map.panTo(ll);
    }
    loadDetail(incidentId);
  }

  function section(title, extra, ...body) {
    return h("section.dsec", h("h3", title, extra ? h("span.dsec-extra", extra) : null), ...body);
  }

  function renderDetail() {
    const d = state.detail;
    const box = el("detail");
    if (!d) return;
    const scroll = box.scrollTop;
    const loc = d.location || {};
    const place = [loc.address, loc.landmark].filter(Boolean).join(" · ") || (loc.lat != null ? `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : "lokasi tidak diketahui");
    const ended = ENDED.has(d.status);
    const head = h("div.dhead.p" + (d.priority || "P4").slice(1),
      h("div.dhead-row",
        h("span.prio-chip.p" + (d.priority || "P4").slice(1), S.word("priority", d.priority)),
        h("span.inc-status.s-" + d.status, S.word("incident_status", d.status)),
        d.scene_status ? h("span.tag.scene", S.word("scene_status", d.scene_status)) : null),
      h("h2.dnumber", d.number),
      h("div.dcat", categoryName(d.category),
        d.category_low_confidence ? h("span.tag.warn", { title: "Kategori ditebak dari uraian dengan keyakinan rendah" }, "kategori belum pasti") : null,
        d.sensitive ? h("span.tag.sensitive", "sensitif") : null,
        d.apco_code ? h("span.tag", d.apco_code) : null),
      h("p.dsummary", d.summary),
      h("div.dloc", h("span.pin-glyph"), place,
        d.location_verified === false ? h("span.tag.warn", d.location_note || "lokasi belum terverifikasi") : null),
      h("div.dloc.small", `Wilayah: ${d.jurisdiction || "-"}${d.polres && d.polres !== d.jurisdiction ? " · " + d.polres : ""}`,
        ` · dibuka ${S.dateTime(d.opened_at)}`),
      d.lp_number ? h("div.dlp", "Nomor LP: ", h("strong", d.lp_number)) : null,
      d.disposition ? h("div.dloc.small", "Disposisi: ", ((vocab().dispositions || {})[d.disposition]) || d.disposition) : null);

    const timer = h("div.dtimer#detail-timer",
      h("div", h("span.label", "Sejak laporan"), h("span.elapsed", "--:--")),
      h("div", h("span.label", "Target berjalan"), h("span.target", "")),
      targetsList(d));

    const blocks = [head, timer];
    if (d.assistance_request) blocks.push(decisionBlock(d));
    blocks.push(recommendationBlock(d, ended));
    blocks.push(assignmentsBlock(d));
    blocks.push(sceneBlock(d));
    blocks.push(evidenceBlock(d));
    blocks.push(h("div#reports-slot", reportsBlock(d)));
    if (d.intervals) blocks.push(incidentIntervals(d.intervals));
    if ((d.legal_deadlines || []).length) blocks.push(deadlinesBlock(d));
    blocks.push(timelineBlock(d));
    box.replaceChildren(...blocks);
    box.scrollTop = scroll;
    drawLinks();
    renderUnitMarkers();
    tick();
  }

  function targetsList(d) {
    const targets = (d.timers && d.timers.targets) || {};
    const names = Object.keys(targets);
    if (!names.length) return null;
    const item = state.incidents.get(d.incident_id) || {};
    const breached = new Set(item.breached || []);
    const iv = d.intervals || {};
    const metAt = { dispatch: iv.dispatched_at, on_scene: iv.on_scene_at, assistance_decision: d.decision && d.decision.decided_at };
    return h("ul.targets", names.map((name) => {
      const due = Date.parse(targets[name]);
      const met = metAt[name] ? Date.parse(metAt[name]) : null;
      const late = (met ? met > due : Date.now() > due) || breached.has(name);
      const text = met ? `terpenuhi ${S.hhmm(met)}` : late ? "terlewati" : `batas ${S.hhmm(due)}`;
      return h("li" + (late ? ".late" : met ? ".met" : ""), h("span", S.word("target", name)), h("b", text));
    }));
  }

  function decisionBlock(d) {
    const dec = d.decision;
    return section("Permintaan pendampingan", null,
      dec ? h("p", `Diputuskan: ${dec.decision} oleh ${dec.decided_by}`, dec.reason ? ` — ${dec.reason}` : "")
        : h("p.warn-text", "Belum ada keputusan. Keputusan wajib dicatat sebelum batas waktu."));
  }

  function recommendationBlock(d, ended) {
    const rec = d.recommendation;
    const refresh = state.canAssign && !ended
      ? h("button.btn.ghost.small", { type: "button", on: { click: requestRecommendation } }, "Minta rekomendasi baru") : null;
    if (!rec) return section("Rekomendasi unit", refresh, h("p.muted", ended ? "Kejadian sudah selesai." : "Menunggu rekomendasi dari dispatch…"));
    const active = new Set((d.assignments || []).filter((a) => ACTIVE_ASSIGNMENT.has(a.status)).map((a) => a.unit_id));
    const list = (rec.candidates || []).map((c, i) => candidateCard(d, c, i, active.has(c.unit_id), ended));
    const excluded = Object.entries(rec.excluded_counts || {});
    return section("Rekomendasi unit", refresh,
      rec.recommended_at ? h("p.muted.small", `Dihitung ${S.time(rec.recommended_at)} WIB`) : null,
      list.length ? h("ol.candidates", list) : h("p.warn-text", "Tidak ada unit yang dapat direkomendasikan."),
      (rec.shortfalls || []).length ? h("div.shortfalls", h("strong", "Kekurangan rencana respons: "), rec.shortfalls.join("; ")) : null,
      (rec.excluded || []).length || excluded.length
        ? h("details.excluded", h("summary", `Tidak direkomendasikan (${(rec.excluded || []).length})`),
          h("ul", (rec.excluded || []).slice(0, 30).map((x) => h("li", h("b", unitName(x.unit_id)), " — ", x.reason))))
        : null);
  }

  const unitName = (id) => (state.units.get(id) && state.units.get(id).callsign) || id;

  function candidateCard(d, c, index, assigned, ended) {
    const actions = [];
    if (state.canAssign && !ended) {
      if (assigned) actions.push(h("span.tag.ok", "sudah ditugaskan"));
      else if (index === 0) {
        actions.push(h("button.btn.primary.assign", { type: "button", dataset: { unitId: c.unit_id }, on: { click: (ev) => assign(d, c, null, ev.currentTarget) } }, "Tugaskan"));
      } else {
        const reason = h("input.override", { type: "text", placeholder: "Alasan bukan unit teratas (opsional)", maxlength: 500 });
        const confirm = h("button.btn.primary.assign", { type: "button", dataset: { unitId: c.unit_id }, on: { click: (ev) => assign(d, c, reason.value.trim() || null, ev.currentTarget) } }, "Tugaskan");
        actions.push(h("div.override-row", reason, confirm));
      }
    } else if (assigned) actions.push(h("span.tag.ok", "ditugaskan"));
    return h("li.candidate" + (index === 0 ? ".top" : "") + (c.conditional ? ".conditional" : ""), { dataset: { unitId: c.unit_id } },
      h("div.cand-head",
        h("span.cand-rank", String(index + 1)),
        h("div.cand-name", h("strong", c.callsign || c.unit_id), h("span.muted", ` ${S.word("kind", c.kind)}`),
          c.meets ? h("span.tag.meets", `memenuhi: ${c.meets}`) : null),
        h("div.cand-figs", h("span", { title: "Perkiraan waktu tiba" }, "ETA ", h("b", S.minutes(c.eta_s))), h("span", { title: "Jarak" }, S.distance(c.distance_m)))),
      h("ul.reasons", (c.reasons || []).map((r) => h("li", r)), (c.warnings || []).map((w) => h("li.warn", w))),
      actions.length ? h("div.cand-actions", actions) : null);
  }

  async function assign(d, c, overrideReason, button) {
    if (!state.canAssign) return;
    button.disabled = true;
    button.textContent = "Menugaskan…";
    const body = { unit_id: c.unit_id };
    if (overrideReason) body.override_reason = overrideReason;
    const r = await S.api(`/api/v1/incidents/${encodeURIComponent(d.incident_id)}/assignments`, { method: "POST", body });
    if (r.status === 201) {
      S.toast(`${c.callsign || c.unit_id} ditugaskan ke ${d.number}`, "ok");
      const item = state.incidents.get(d.incident_id);
      if (item) {
        item.units = Array.from(new Set([...(item.units || []), c.unit_id]));
        if (STATUS_RANK[item.status] === 0) item.status = "assigned";
        renderQueue();
      }
    } else if (r.status === 202) {
      S.toast("Perintah penugasan tercatat; menunggu hasil dari dispatch.", "info");
    } else {
      S.toast(`Penugasan gagal: ${r.error}`, "error");
      button.disabled = false;
      button.textContent = "Tugaskan";
    }
    loadDetail(d.incident_id);
  }

  async function requestRecommendation() {
    const d = state.detail;
    if (!d) return;
    const r = await S.api(`/api/v1/incidents/${encodeURIComponent(d.incident_id)}/recommendations`, { method: "POST", body: {} });
    S.toast(r.ok ? "Rekomendasi baru diminta." : `Gagal: ${r.error}`, r.ok ? "info" : "error");
  }

  function assignmentsBlock(d) {
    const rows = (d.assignments || []).map((a) => h("li.assignment.a-" + a.status, { dataset: { unitId: a.unit_id } },
      h("div.as-head", h("strong", a.callsign || unitName(a.unit_id)), h("span.as-status", S.word("assignment_status", a.status)),
        a.automatic ? h("span.tag", "otomatis") : null),
      h("div.as-times",
        `ditugaskan ${S.hhmm(a.assigned_at)}`,
        a.acknowledged_at ? ` · diterima ${S.hhmm(a.acknowledged_at)}` : "",
        a.en_route_at ? ` · berangkat ${S.hhmm(a.en_route_at)}` : "",
        a.arrived_at ? ` · tiba ${S.hhmm(a.arrived_at)}` : "",
        a.ended_at ? ` · selesai ${S.hhmm(a.ended_at)}` : ""),
      a.warning ? h("div.warn-text", a.warning) : null,
      a.end_reason ? h("div.muted.small", a.end_reason) : null));
    return section("Penugasan", rows.length ? String(rows.length) : null,
      rows.length ? h("ul.assignments#assignments", rows) : h("p.muted#assignments", "Belum ada unit yang ditugaskan."));
  }

  function stepList(phase, done) {
    const steps = vocab()[phase] || [];
    const words = vocab().steps || {};
    const byStep = {};
    for (const s of done) if (!byStep[s.step]) byStep[s.step] = s;
    const count = steps.filter((s) => byStep[s]).length;
    const extra = done.filter((s) => !steps.includes(s.step));
    return {
      count, total: steps.length,
      list: h("ol.steps", { dataset: { phase } }, steps.map((name) => {
        const s = byStep[name];
        return h("li" + (s ? ".done" : "") + (s && (s.out_of_order || []).length ? ".ooo" : ""), { dataset: { step: name } },
          h("span.check", s ? "✓" : ""), h("span.step-name", words[name] || name),
          s ? h("span.step-when", `${S.hhmm(s.at)} · ${s.by || ""}`) : null,
          s && s.note ? h("div.step-note", s.note) : null,
          s && s.warning ? h("div.warn-text.small", s.warning) : null);
      }), extra.map((s) => h("li.done", h("span.check", "✓"), h("span.step-name", words[s.step] || s.step)))),
    };
  }

  function progress(count, total) {
    return h("div.progress", { title: `${count} dari ${total}` }, h("i", { style: { width: `${total ? Math.round((100 * count) / total) : 0}%` } }));
  }

  function sceneBlock(d) {
    const tkp = d.tkp || {};
    const a = stepList("tptkp", tkp.tptkp || []);
    const b = stepList("olah_tkp", tkp.olah_tkp || []);
    return h("div.scene-grid",
      section("TPTKP", `${a.count}/${a.total}`, progress(a.count, a.total), a.list),
      section("Olah TKP", `${b.count}/${b.total}`, progress(b.count, b.total), b.list));
  }

  function evidenceBlock(d) {
    const items = (d.tkp && d.tkp.evidence) || [];
    return section("Barang bukti", items.length ? String(items.length) : null,
      items.length
        ? h("ul.evidence", items.map((e) => h("li", h("div", h("strong", e.description)),
          h("div.muted.small", `${e.kind} · segel ${e.seal_number} · dipegang ${e.holder || "-"} · ${e.evidence_id}`))))
        : h("p.muted", "Belum ada barang bukti tercatat."));
  }

  function reportsBlock(d) {
    const ids = d.reports || [];
    return section("Laporan", String(ids.length), h("ul.reports", ids.map((id) => {
      const r = state.reports[id];
      if (!r) return h("li.muted", id);
      return h("li",
        h("div.rep-head", h("strong", S.word("channel", r.channel)), h("span.muted", ` ${S.dateTime(r.received_at)}`),
          r.merged ? h("span.tag", "digabung") : null, r.assistance_request ? h("span.tag.assist", "pendampingan") : null),
        h("div.rep-text", r.description),
        h("div.muted.small", `Kode lacak ${r.tracking_code}`, r.lp_number ? ` · ${r.lp_number}` : ""),
        r.caller_warning ? h("div.warn-text.small", r.caller_warning) : null);
    })));
  }

  function renderReports() {
    const slot = el("reports-slot");
    if (slot && state.detail) slot.replaceChildren(reportsBlock(state.detail));
  }

  function incidentIntervals(iv) {
    const cell = (label, s) => h("div.iv", h("span", label), h("b", s == null ? "–" : S.duration(s)));
    return section("Interval kejadian ini", null, h("div.iv-grid",
      cell("Proses panggilan", iv.call_processing_s), cell("Persiapan", iv.turnout_s),
      cell("Perjalanan", iv.travel_s), cell("Respons", iv.response_s)));
  }

  function deadlinesBlock(d) {
    return section("Tenggat hukum", null, h("ul.deadlines", d.legal_deadlines.map((x) => {
      const late = !x.met_at && x.due_at && Date.parse(x.due_at) < Date.now();
      return h("li" + (late ? ".late" : x.met_at ? ".met" : ""), h("span", x.words || x.code || x.key),
        h("b", x.met_at ? `terpenuhi ${S.dateTime(x.met_at)}` : `batas ${S.dateTime(x.due_at)}`));
    })));
  }

  function timelineBlock(d) {
    const items = (d.timeline || []).slice().reverse();
    const shown = items.slice(0, 40);
    return section("Linimasa", String(items.length), h("ol.timeline", shown.map((t) =>
      h("li", h("time", { datetime: t.at }, S.time(t.at)), h("span.tl-text", t.summary), h("span.tl-actor", t.actor)))),
    items.length > shown.length ? h("p.muted.small", `… dan ${items.length - shown.length} catatan lebih awal`) : null);
  }

  // --- the unit board ------------------------------------------------------------------------------
  const STATUS_ORDER = ["available", "patrol", "post", "escort", "traffic_control", "guarding_scene", "dispatched",
    "en_route", "on_scene", "transporting", "break", "off_duty", "out_of_service"];
  let unitsPaneTimer = null;
  function renderUnitsPaneSoon() {
    clearTimeout(unitsPaneTimer);
    unitsPaneTimer = setTimeout(renderUnitsPane, 400);
  }

  function renderUnitsPane() {
    const pane = el("pane-units");
    const groups = {};
    for (const u of state.units.values()) (groups[u.status] = groups[u.status] || []).push(u);
    const order = STATUS_ORDER.concat(Object.keys(groups).filter((s) => !STATUS_ORDER.includes(s)));
    const byClass = { available: 0, conditionally_available: 0, not_available: 0 };
    for (const u of state.units.values()) byClass[availabilityOf(u)] = (byClass[availabilityOf(u)] || 0) + 1;
    const incidentNumber = (id) => (state.incidents.get(id) && state.incidents.get(id).number) || (id ? id.slice(0, 8) : "");
    pane.replaceChildren(
      h("div.class-bar", Object.entries(byClass).map(([k, n]) => h("div.class-cell." + k, h("b", String(n)), h("span", S.word("availability", k))))),
      ...order.filter((s) => groups[s]).map((s) => h("section.ugroup",
        h("h3", h("i.dot." + ((vocab().availability || {})[s] || "not_available")), unitStatusWord(s), h("span.dsec-extra", String(groups[s].length))),
        h("div.ucards", groups[s].sort((a, b) => (a.callsign || "").localeCompare(b.callsign || "")).map((u) =>
          h("button.unit-card." + availabilityOf(u) + (u.stale ? ".stale" : ""), {
            type: "button", dataset: { unitId: u.unit_id, status: u.status || "" }, title: `${u.callsign} — ${unitStatusWord(u.status)}`,
            on: { click: () => { if (map && u.position) map.flyTo([u.position.lat, u.position.lon], Math.max(map.getZoom(), 14)); if (u.incident_id) selectIncident(u.incident_id); } },
          },
          h("span.uc-name", u.callsign || u.unit_id),
          h("span.uc-sub", `${S.word("kind", u.kind)} · ${(u.station || "").replace(/^polsek-|^polres-/, "")}`),
          u.incident_id ? h("span.uc-inc", incidentNumber(u.incident_id)) : null,
          u.stale ? h("span.uc-stale", u.position ? "posisi usang" : "tanpa posisi") : null,
          u.status_since ? h("span.uc-since", `sejak ${S.hhmm(u.status_since)}`) : null))))));
  }

  // --- the day's intervals ---------------------------------------------------------------------------
  function renderIntervals() {
    const pane = el("pane-intervals");
    const data = state.intervals;
    if (!data) return;
    if (data.error) {
      pane.replaceChildren(h("p.notice", data.error));
      return;
    }
    const groups = data.groups || [];
    const cell = (label, x) => h("div.iv", h("span", label),
      x && x.count ? [h("b", S.duration(x.median_s)), h("small", `p90 ${S.duration(x.p90_s)} · n=${x.count}`)] : h("b.muted", "–"));
    pane.replaceChildren(
      h("h3.iv-title", `Interval ${data.date} (WIB)`),
      h("p.muted.small", "Median, persentil ke-90 dan jumlah kejadian per wilayah dan regu jaga. Proses panggilan = dikirim − diterima; persiapan = berangkat − dikirim; perjalanan = tiba − berangkat; respons = tiba − dikirim."),
      groups.length
        ? h("div.iv-groups", groups.map((g) => h("section.iv-group",
          h("h4", h("strong", (g.jurisdiction || "tanpa wilayah").replace(/^polsek-|^polres-/, "")),
            h("span.muted", ` · regu ${g.shift} · ${g.incidents} kejadian`)),
          h("div.iv-grid", cell("Proses panggilan", g.call_processing), cell("Persiapan", g.turnout),
            cell("Perjalanan", g.travel), cell("Respons", g.response)))))
        : h("p.muted", "Belum ada kejadian hari ini."));
  }

  // --- helpers ----------------------------------------------------------------------------------------
  function debounce(fn, ms) {
    let t = null;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  document.addEventListener("DOMContentLoaded", start);
})();
