/* Audit log: the newest entries and a button that verifies the whole hash chain. */
"use strict";

(() => {
  const { el, api, time, table } = DL;

  async function verify() {
    const out = document.getElementById("verify-result");
    out.className = "";
    out.textContent = "Verifying…";
    try {
      const r = await api("/ui/api/audit/verify", { method: "POST" });
      out.className = r.ok ? "good" : "error";
      out.dataset.ok = r.ok ? "1" : "0";
      out.dataset.anchored = r.anchor ? "1" : "0";
      out.textContent = (r.ok ? `✓ chain intact: ${r.reason} Head ${r.head.slice(0, 16)}…`
        : `✗ chain broken at entry ${r.first_bad_seq}: ${r.reason}`) + ` ${r.anchor_note}`;
    } catch (error) {
      out.className = "error";
      out.textContent = `✗ could not verify: ${error.message}`;
    }
  }

  async function render() {
    const query = new URLSearchParams(window.location.search);
    const limit = query.get("limit") || "200";
    const params = new URLSearchParams({ limit });
    for (const key of ["action", "subject"]) if (query.get(key)) params.set(key, query.get(key));
    const data = await api(`/ui/api/audit?${params}`);
    const rows = data.entries.map((e) => ({
      attrs: { "data-seq": e.seq, "data-action": e.action },
      cells: [e.seq, time(e.at), e.actor, e.action, e.subject,
        el("pre", {}, JSON.stringify(e.details)), el("code", {}, e.hash)],
    }));
    const filter = el("form", { class: "row", method: "get", action: "/ui/audit" },
      el("label", {}, "Action ", el("input", { name: "action", value: query.get("action") || "",
        size: 14, placeholder: "e.g. promote" })),
      el("label", {}, "Subject ", el("input", { name: "subject", size: 18,
        value: query.get("subject") || "", placeholder: "e.g. churn:v3" })),
      el("label", {}, "Newest ", el("select", { name: "limit" }, ["50", "200", "1000", "2000"]
        .map((n) => el("option", { value: n, selected: n === limit }, n)))),
      el("button", { type: "submit" }, "Filter"));
    const nodes = [
      el("h1", {}, "Audit log"),
      el("p", { class: "sub" }, `${data.total} entries in all; showing the newest ` +
        `${data.entries.length}. Each entry's hash covers its content and the hash before it, ` +
        "so an edited, deleted or reordered entry breaks the chain."),
      el("div", { class: "row" },
        el("button", { type: "button", class: "primary", id: "verify", onclick: verify },
          "Verify the chain"),
        el("span", { id: "verify-result", role: "status" })),
      filter,
      el("div", { class: "scroll tall" }, table([{ label: "#", num: true },
        { label: "at (UTC)" }, { label: "actor" }, { label: "action" }, { label: "subject" },
        { label: "details" }, { label: "hash" }], rows, { id: "entries" })),
    ];
    return { nodes };
  }

  DL.start(render);
})();
