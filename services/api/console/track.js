/* SPKT Dispatch — the public tracker: the status and milestones of one report, nothing personal. */
(function () {
  "use strict";
  const S = window.SPKT;
  const h = S.h;

  const codeFromPath = () => decodeURIComponent(location.pathname.replace(/^\/lacak\/?/, "").split("/")[0] || "");

  async function show(code) {
    const box = document.getElementById("result");
    if (!code) {
      box.replaceChildren(h("p.muted", "Masukkan kode pelacakan dari tanda terima atau SMS Anda."));
      return;
    }
    document.getElementById("track-code").value = code;
    box.replaceChildren(h("p.loading", "Memuat status laporan…"));
    const r = await S.api(`/track/${encodeURIComponent(code)}`, { public: true });
    if (r.status === 404) {
      box.replaceChildren(h("div.tcard.tnotfound", h("h2", "Kode tidak ditemukan"),
        h("p", `Tidak ada laporan dengan kode ${code}. Periksa kembali kode pada tanda terima Anda; laporan yang baru dikirim bisa perlu beberapa detik.`)));
      return;
    }
    if (!r.ok) {
      box.replaceChildren(h("div.tcard.tnotfound", h("h2", "Status belum dapat dimuat"), h("p", r.error)));
      return;
    }
    const t = r.data;
    const milestones = (t.milestones || []).slice().sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    box.replaceChildren(h("div.tcard",
      h("div.tcode", t.tracking_code || code),
      h("div.tstatus", { dataset: { status: t.status || "" } }, h("span.tdot"), h("strong#track-status", t.status_text || t.status || "-")),
      h("div.tupdated", `Diperbarui ${S.dateTime(t.updated_at)}`),
      t.lp_number ? h("div.tlp", "Nomor Laporan Polisi: ", h("strong", t.lp_number)) : null,
      h("h3", "Perkembangan"),
      milestones.length
        ? h("ol.tmilestones#milestones", milestones.map((m, i) => h("li" + (i === milestones.length - 1 ? ".latest" : ""),
          h("span.tm-dot"), h("div", h("strong", m.text || m.code), h("time", { datetime: m.at }, S.dateTime(m.at))))))
        : h("p.muted", "Belum ada perkembangan yang dapat ditampilkan.")));
    document.title = `${t.status_text || "Status"} — Lacak Laporan SPKT`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("track-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const code = document.getElementById("track-code").value.trim().toUpperCase();
      if (!code) return;
      history.pushState(null, "", `/lacak/${encodeURIComponent(code)}`);
      show(code);
    });
    window.addEventListener("popstate", () => show(codeFromPath()));
    show(codeFromPath());
  });
})();
