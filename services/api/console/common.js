/* SPKT Dispatch — shared by the consoles: token, API calls, the live stream, words and formats.
   Plain JavaScript, no build step. Everything the user reads is in Bahasa Indonesia. */
(function () {
  "use strict";
  const S = (window.SPKT = window.SPKT || {});
  const TOKEN_KEY = "spkt.token";

  // --- the token ------------------------------------------------------------------------------
  /* A token handed over in the URL fragment (#token=...) is kept for the session and removed
     from the address bar; the other fragment parameters (e.g. incident=) are returned. */
  S.takeFragment = function () {
    const hash = location.hash.replace(/^#/, "");
    const params = new URLSearchParams(hash);
    const extra = {};
    params.forEach((value, key) => {
      if (key === "token") sessionStorage.setItem(TOKEN_KEY, value.trim());
      else extra[key] = value;
    });
    if (hash) history.replaceState(null, "", location.pathname + location.search);
    return extra;
  };
  S.token = () => sessionStorage.getItem(TOKEN_KEY);
  S.setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token.trim().replace(/^Bearer\s+/i, ""));
  S.clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

  /* The claims of a JWT (its middle part), unverified: only to show who is signed in. */
  S.claims = function (token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  };
  S.expired = (claims) => !claims || (claims.exp && claims.exp * 1000 < Date.now());

  S.uuid = function () {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (v) => v.toString(16).padStart(2, "0")).join("");
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };

  // --- the API ----------------------------------------------------------------------------------
  S.onUnauthorized = null; // set by a page: show the sign-in form again

  S.detailText = function (data, status) {
    const detail = data && data.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return (where ? where + ": " : "") + (d.msg || JSON.stringify(d));
      }).join("; ");
    }
    if (status === 0) return "Server tidak dapat dihubungi";
    return `Permintaan gagal (HTTP ${status})`;
  };

  /* A JSON call with the token. Writes carry an Idempotency-Key (one per user action). */
  S.api = async function (path, opts) {
    opts = opts || {};
    const method = opts.method || "GET";
    const headers = { Accept: "application/json" };
    const token = S.token();
    if (token && !opts.public) headers.Authorization = "Bearer " + token;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    if (method !== "GET") headers["Idempotency-Key"] = opts.key || S.uuid();
    let resp;
    try {
      resp = await fetch(path, { method, headers, body, cache: "no-store" });
    } catch (e) {
      return { ok: false, status: 0, data: null, error: S.detailText(null, 0) };
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) { /* no body */ }
    if (resp.status === 401 && !opts.public && S.onUnauthorized) S.onUnauthorized(S.detailText(data, 401));
    return { ok: resp.ok, status: resp.status, data, headers: resp.headers,
             error: resp.ok ? null : S.detailText(data, resp.status) };
  };

  // --- the live stream (Server-Sent Events over fetch, so that the token goes in a header) ------
  /* handlers: onEvent(type, envelope), onReset(), onState(state, httpStatus) with state one of
     connecting | live | down | unavailable | forbidden. Reconnects with Last-Event-ID after a drop. */
  S.openStream = function (query, handlers) {
    let lastId = null;
    let stopped = false;
    let controller = null;
    let delay = 1000;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

    function handle(block) {
      let type = "message";
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line[0] === ":") continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? "" : line.slice(i + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") type = value;
        else if (field === "data") data.push(value);
        else if (field === "id") id = value;
      }
      if (id !== null) lastId = id;
      if (type === "reset") {
        if (handlers.onReset) handlers.onReset();
        return;
      }
      if (!data.length) return;
      let envelope;
      try {
        envelope = JSON.parse(data.join("\n"));
      } catch (e) {
        return;
      }
      try {
        handlers.onEvent(type === "message" ? envelope.type : type, envelope);
      } catch (e) {
        console.error("spkt: event handler", e);
      }
    }

    async function run() {
      while (!stopped) {
        handlers.onState("connecting");
        controller = new AbortController();
        const headers = { Accept: "text/event-stream", Authorization: "Bearer " + S.token() };
        if (lastId) headers["Last-Event-ID"] = lastId;
        let resp;
        try {
          resp = await fetch("/api/v1/stream" + (query || ""), { headers, signal: controller.signal, cache: "no-store" });
        } catch (e) {
          if (stopped) return;
          handlers.onState("down", 0);
          await sleep(delay);
          delay = Math.min(delay * 2, 15000);
          continue;
        }
        if (!resp.ok || !resp.body) {
          if (resp.status === 401) {
            handlers.onState("down", 401);
            if (S.onUnauthorized) S.onUnauthorized("Token tidak berlaku lagi");
            return;
          }
          if (resp.status === 403) { // this role does not get the live stream: the page polls instead
            handlers.onState("forbidden", 403);
            return;
          }
          const missing = resp.status === 404 || resp.status === 405;
          handlers.onState(missing ? "unavailable" : "down", resp.status);
          await sleep(missing ? 20000 : delay);
          delay = Math.min(delay * 2, 15000);
          continue;
        }
        delay = 1000;
        handlers.onState("live", resp.status);
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let text = "";
        let carry = "";
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            let raw = carry + decoder.decode(value, { stream: true });
            carry = "";
            if (raw.endsWith("\r")) {
              carry = "\r";
              raw = raw.slice(0, -1);
            }
            text += raw.replace(/\r\n?/g, "\n");
            let i;
            while ((i = text.indexOf("\n\n")) >= 0) {
              const block = text.slice(0, i);
              text = text.slice(i + 2);
              handle(block);
            }
          }
        } catch (e) { /* dropped */ }
        if (stopped) return;
        handlers.onState("down", 0);
        await sleep(delay);
      }
    }
    run();
    return {
      stop() {
        stopped = true;
        if (controller) controller.abort();
      },
    };
  };

  // --- words --------------------------------------------------------------------------------
  S.words = {
    incident_status: {
      received: "diterima", verified: "terverifikasi", assigned: "unit ditugaskan", on_scene: "unit di TKP",
      tptkp: "TPTKP berjalan", scene_secured: "TKP aman", olah_tkp: "olah TKP", scene_released: "TKP dilepas",
      closed: "ditutup", duplicate: "digabung", cancelled: "dibatalkan", transferred: "dilimpahkan",
      reopened: "dibuka kembali",
    },
    assignment_status: {
      assigned: "menunggu jawaban unit", acknowledged: "diterima unit", en_route: "dalam perjalanan",
      on_scene: "di TKP", declined: "ditolak unit", cancelled: "dibatalkan", cleared: "selesai",
    },
    availability: { available: "Tersedia", conditionally_available: "Tersedia bersyarat", not_available: "Tidak tersedia" },
    channel: {
      phone_110: "Telepon 110", walk_in: "Datang langsung", sms: "SMS", whatsapp: "WhatsApp", web: "Web",
      social_media: "Media sosial", patrol: "Patroli",
    },
    kind: { car: "mobil patroli", motorcycle: "motor", foot: "jalan kaki", inafis: "Inafis", reskrim: "Reskrim", lantas: "Lantas" },
    priority: { P1: "P1 · darurat", P2: "P2 · segera", P3: "P3 · biasa", P4: "P4 · rendah" },
    role: {
      dispatcher: "Dispatcher", command_center: "Command Center", supervisor: "Supervisor", admin: "Admin",
      call_taker: "Operator", field_unit: "Unit lapangan",
    },
    target: { dispatch: "unit dikirim", on_scene: "unit tiba di TKP", assistance_decision: "keputusan pendampingan" },
    scene_status: {
      on_scene: "unit di TKP", tptkp: "TPTKP berjalan", scene_secured: "TKP aman", olah_tkp: "olah TKP berjalan",
      scene_released: "TKP dilepas",
    },
  };
  S.word = (group, key) => (key == null ? "-" : (S.words[group] && S.words[group][key]) || String(key).replace(/_/g, " "));

  // --- formats (WIB) ------------------------------------------------------------------------------
  const timeFmt = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  const shortFmt = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit", hour12: false });
  const dateFmt = new Intl.DateTimeFormat("id-ID", { timeZone: "Asia/Jakarta", day: "numeric", month: "short", year: "numeric" });
  const toDate = (v) => (v instanceof Date ? v : new Date(v));
  S.time = (v) => (v ? timeFmt.format(toDate(v)) : "-");
  S.hhmm = (v) => (v ? shortFmt.format(toDate(v)) : "-");
  S.dateTime = (v) => (v ? `${dateFmt.format(toDate(v))} ${shortFmt.format(toDate(v))} WIB` : "-");
  S.duration = function (seconds) {
    if (seconds == null || isNaN(seconds)) return "-";
    const sign = seconds < 0 ? "-" : "";
    let s = Math.floor(Math.abs(seconds));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${sign}${h}:${pad(m)}:${pad(s)}` : `${sign}${pad(m)}:${pad(s)}`;
  };
  S.distance = (m) => (m == null ? "-" : m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1).replace(".", ",")} km`);
  S.minutes = (s) => (s == null ? "-" : s < 90 ? `${Math.round(s)} dtk` : `${Math.round(s / 60)} mnt`);

  // --- DOM ------------------------------------------------------------------------------------
  /* h("div.cls#id", {attrs, on: {click}}, children...) — text is always set as text, never HTML. */
  S.h = function (spec, props, ...children) {
    const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
    const el = document.createElement((m && m[1]) || "div");
    if (m && m[2]) {
      for (const part of m[2].match(/[.#][\w-]+/g)) {
        if (part[0] === ".") el.classList.add(part.slice(1));
        else el.id = part.slice(1);
      }
    }
    if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
      children.unshift(props);
      props = null;
    }
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
      else if (key === "class") el.className += " " + value;
      else if (key in el && typeof value !== "string") el[key] = value;
      else el.setAttribute(key, value === true ? "" : value);
    }
    const add = (c) => {
      if (c == null || c === false) return;
      if (Array.isArray(c)) c.forEach(add);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    };
    children.forEach(add);
    return el;
  };
  S.clear = (el) => {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  };
  S.$ = (sel, root) => (root || document).querySelector(sel);

  S.toast = function (message, kind) {
    let box = document.getElementById("toasts");
    if (!box) {
      box = S.h("div#toasts", { role: "status", "aria-live": "polite" });
      document.body.appendChild(box);
    }
    const t = S.h("div.toast." + (kind || "info"), message);
    box.appendChild(t);
    setTimeout(() => t.classList.add("gone"), kind === "error" ? 7000 : 4000);
    setTimeout(() => t.remove(), kind === "error" ? 7600 : 4600);
  };

  /* The sign-in panel: paste a token printed by `./spkt.sh token --role ...`. */
  S.signIn = function ({ title, hint, message, onToken }) {
    const old = document.getElementById("signin");
    if (old) old.remove();
    const input = S.h("textarea#signin-token", { rows: 4, placeholder: "eyJhbGciOi...", spellcheck: false, autocomplete: "off" });
    const error = S.h("p.signin-error", message || "");
    const submit = (ev) => {
      ev.preventDefault();
      const token = input.value.trim().replace(/^Bearer\s+/i, "");
      const claims = S.claims(token);
      if (!claims || !claims.role) {
        error.textContent = "Itu bukan token SPKT (JWT tiga bagian dipisah titik).";
        return;
      }
      if (S.expired(claims)) {
        error.textContent = "Token sudah kedaluwarsa; buat yang baru.";
        return;
      }
      S.setToken(token);
      panel.remove();
      onToken(token, claims);
    };
    const panel = S.h("div#signin", { role: "dialog", "aria-modal": "true", "aria-labelledby": "signin-title" },
      S.h("form.signin-card", { on: { submit } },
        S.h("div.brand-mark", "SPKT"),
        S.h("h1#signin-title", title || "Masuk"),
        S.h("p", "Tempel token akses Anda. Token dibuat oleh admin dengan perintah:"),
        S.h("pre", hint || "./spkt.sh token --role dispatcher"),
        S.h("label", { for: "signin-token" }, "Token akses"),
        input, error,
        S.h("button.btn.primary.big", { type: "submit" }, "Masuk")));
    document.body.appendChild(panel);
    input.focus();
  };

  /* Who is signed in, for the header. */
  S.whoText = function (claims) {
    const parts = [S.word("role", claims.role)];
    if (claims.unit_id) parts.push(claims.unit_id);
    if (claims.jurisdiction) parts.push(claims.jurisdiction);
    return parts.join(" · ");
  };

  S.config = async function () {
    const r = await S.api("/console/config.json", { public: true });
    return r.ok ? r.data : { tile_url: null, city: { stations: [] }, boundaries: null, leaflet: false, vocabulary: {} };
  };

  S.mapMissingNotice = function () {
    return S.h("div.map-missing", { role: "alert" },
      S.h("div",
        S.h("strong", "Pustaka peta belum terpasang."),
        S.h("p", "Peta tidak dapat ditampilkan. Jalankan ", S.h("code", "./spkt.sh up"),
          " — perintah itu memasang Leaflet dengan npm. Daftar kejadian dan unit tetap berjalan.")));
  };
})();

/* --- the map: outlines of the jurisdictions with or without tiles ------------------------------ */
(function () {
  "use strict";
  const S = window.SPKT;

  /* A convex hull (Andrew's monotone chain) of [lat, lon] points. */
  function hull(points) {
    const p = points.map(([lat, lon]) => [lon, lat]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (p.length < 3) return p.map(([x, y]) => [y, x]);
    const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    const lower = [];
    for (const q of p) {
      while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
      lower.push(q);
    }
    const upper = [];
    for (let i = p.length - 1; i >= 0; i--) {
      const q = p[i];
      while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
      upper.push(q);
    }
    upper.pop();
    lower.pop();
    return lower.concat(upper).map(([x, y]) => [y, x]);
  }

  /* The hull of circles of `radius` metres around each station: an honest outline of the area a
     Polres covers when no boundaries are configured (it is where its stations are, no more). */
  S.areaAround = function (stations, radius) {
    const ring = [];
    for (const s of stations) {
      const dLat = radius / 111320;
      const dLon = radius / (111320 * Math.cos((s.lat * Math.PI) / 180));
      for (let k = 0; k < 16; k++) {
        const a = (k / 16) * 2 * Math.PI;
        ring.push([s.lat + dLat * Math.sin(a), s.lon + dLon * Math.cos(a)]);
      }
    }
    return hull(ring);
  };

  const AREA_COLOURS = ["#4f8cff", "#36c2b4", "#b784f7", "#f2a93b", "#ef6f9a", "#7bd389", "#5ec8f2"];
  const shortName = (name) => (name || "").replace(/^Polres\s+(Metro\s+)?/i, "").replace(/^Polsek\s+/i, "");

  /* Draw what the deployment knows: boundaries (GeoJSON) or the hull per Polres, the city's
     bounds, a faint grid and the stations. Returns the layer group. */
  S.drawOutlines = function (map, config) {
    const L = window.L;
    const group = L.layerGroup().addTo(map);
    const city = config.city || {};
    const stations = city.stations || [];
    const byId = Object.fromEntries(stations.map((s) => [s.station_id, s]));
    const b = city.bounds;
    if (!config.tile_url) {
      // A graticule finer as one zooms in: without a base map it keeps the sense of scale and motion.
      const grid = L.layerGroup().addTo(group);
      const draw = () => {
        grid.clearLayers();
        const z = map.getZoom();
        const step = z >= 15 ? 0.002 : z >= 13 ? 0.01 : 0.05;
        const v = map.getBounds().pad(0.2);
        const lat0 = Math.floor(v.getSouth() / step) * step;
        const lon0 = Math.floor(v.getWest() / step) * step;
        for (let lat = lat0; lat <= v.getNorth(); lat += step) {
          L.polyline([[lat, v.getWest()], [lat, v.getEast()]], { className: "spkt-grid", interactive: false }).addTo(grid);
        }
        for (let lon = lon0; lon <= v.getEast(); lon += step) {
          L.polyline([[v.getSouth(), lon], [v.getNorth(), lon]], { className: "spkt-grid", interactive: false }).addTo(grid);
        }
      };
      map.on("zoomend moveend", draw);
      draw();
    }
    const near = () => map.getContainer().classList.toggle("near", map.getZoom() >= 13);
    map.on("zoomend", near);
    near();
    if (b) {
      L.rectangle([[b.south, b.west], [b.north, b.east]], { className: "spkt-outline spkt-city", fill: false, interactive: false })
        .addTo(group);
    }
    if (config.boundaries && config.boundaries.features) {
      let n = 0;
      L.geoJSON(config.boundaries, {
        style: () => {
          const colour = AREA_COLOURS[n++ % AREA_COLOURS.length];
          return { className: "spkt-outline spkt-area", color: colour, weight: 1.6, fillColor: colour, fillOpacity: 0.07 };
        },
        onEachFeature: (feature, layer) => {
          const props = feature.properties || {};
          const station = byId[props.station_id];
          const label = (station && station.name) || props.name || props.station_id;
          if (label) layer.bindTooltip(S.h("span", String(label)), { sticky: true, className: "area-tip" });
        },
      }).addTo(group);
    } else {
      const polres = stations.filter((s) => s.level === "polres");
      polres.forEach((p, i) => {
        const members = stations.filter((s) => s.station_id === p.station_id || s.parent === p.station_id)
          .filter((s) => s.lat != null && s.lon != null);
        if (!members.length) return;
        const colour = AREA_COLOURS[i % AREA_COLOURS.length];
        const shape = L.polygon(S.areaAround(members, 1900), {
          className: "spkt-outline spkt-area", color: colour, weight: 1.6, dashArray: "6 5",
          fillColor: colour, fillOpacity: 0.07, interactive: false,
        }).addTo(group);
        L.tooltip({ permanent: true, direction: "center", className: "area-label", interactive: false })
          .setLatLng(shape.getBounds().getCenter()).setContent(S.h("span", shortName(p.name))).addTo(group);
      });
    }
    for (const s of stations) {
      if (s.lat == null) continue;
      L.circleMarker([s.lat, s.lon], {
        className: "spkt-station " + (s.level || ""), radius: s.level === "polres" ? 5 : 3.5, weight: 1.5,
        fillOpacity: 1, interactive: false,
      }).addTo(group);
      // The station's name: shown when zoomed in (CSS: .near), where there is room for it.
      L.tooltip({ permanent: true, direction: "right", offset: [5, 0], className: "station-name", interactive: false })
        .setLatLng([s.lat, s.lon]).setContent(S.h("span", s.name || s.station_id)).addTo(group);
    }
    return group;
  };

  /* A Leaflet map in `element` with tiles when configured, outlines always. Null without Leaflet. */
  S.makeMap = function (element, config, options) {
    const L = window.L;
    if (!L) {
      element.appendChild(S.mapMissingNotice());
      return null;
    }
    const map = L.map(element, Object.assign({
      zoomControl: true, attributionControl: !!config.tile_url, minZoom: 9, zoomSnap: 0.25, zoomDelta: 0.5,
    }, options || {}));
    if (config.tile_url) {
      let host = "";
      try {
        host = new URL(config.tile_url.replace(/[{}]/g, ""), location.href).host;
      } catch (e) { /* a template */ }
      L.tileLayer(config.tile_url, { maxZoom: 19, attribution: host ? `Peta dasar: ${host}` : "" }).addTo(map);
    } else {
      element.classList.add("no-tiles");
    }
    map.attributionControl && map.attributionControl.setPrefix(false);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    const b = config.city && config.city.bounds;
    if (b) map.fitBounds([[b.south, b.west], [b.north, b.east]], { padding: [8, 8] });
    else map.setView([-6.2, 106.82], 11);
    S.drawOutlines(map, config);
    return map;
  };
})();
