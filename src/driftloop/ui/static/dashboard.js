/* driftloop dashboard: helpers shared by every page.
   Everything from the store is inserted as text (textContent), never as HTML. */
"use strict";

const DL = (() => {
  const ICON = { ok: "✓", drifting: "⚠", degraded: "▼", "no traffic": "○" };
  const SEVERITY = { error: "✗ error", warning: "⚠ warning", info: "ℹ info" };
  // line styles that differ without colour: solid, dashed, dotted, dash-dot
  const DASH = { solid: [], dashed: [8, 4], dotted: [2, 3], dashdot: [10, 3, 2, 3] };
  const COLOUR = { blue: "#0b5cad", orange: "#b35900", green: "#1e7b34", grey: "#57606a",
                   red: "#b3261e", purple: "#6f42c1" };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path, options) {
    const response = await fetch(path, options);
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const message = body && body.error ? body.error.message
        : `${response.status} ${response.statusText}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function num(value, digits = 3) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    return Number(value).toFixed(digits);
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : `${(100 * value).toFixed(0)}%`;
  }

  function time(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace("T", " ")}`;
  }

  function shortTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(5, 16).replace("T", " ");
  }

  function badge(health) {
    const cls = "badge badge-" + health.status.replace(" ", "-");
    return el("span", { class: cls, title: health.reason, "data-status": health.status },
      health.label || `${ICON[health.status]} ${health.status}`);
  }

  function severity(level) {
    return el("span", { class: `sev sev-${level}` }, SEVERITY[level] || level);
  }

  function yesNo(value, yes = "✓ yes", no = "✗ no") {
    return value ? yes : no;
  }

  /* columns: [{label, num?}] ; rows: arrays of cells (text or nodes), or {cells, attrs} */
  function table(columns, rows, attrs) {
    const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null,
      scope: "col" }, c.label)));
    const body = rows.map((row) => {
      const cells = Array.isArray(row) ? row : row.cells;
      return el("tr", Array.isArray(row) ? {} : row.attrs, cells.map((cell, i) =>
        el("td", { class: columns[i] && columns[i].num ? "num" : null }, cell)));
    });
    return el("table", attrs || {}, el("thead", {}, head), el("tbody", {}, body));
  }

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.map(([k, v]) => [el("dt", {}, k),
      el("dd", {}, v === null || v === undefined ? el("span", { class: "missing" }, "missing") : v)]));
  }

  function panel(title, ...children) {
    return el("section", { class: "panel", "aria-label": title }, el("h2", {}, title), children);
  }

  const charts = new Map();
  function chart(id, config) {
    if (charts.has(id)) charts.get(id).destroy();
    const canvas = document.getElementById(id);
    const options = config.options || {};
    const made = new Chart(canvas, {
      ...config,
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
        interaction: { mode: "nearest", intersect: false },
        ...options,
        plugins: { legend: { labels: { usePointStyle: true } }, ...(options.plugins || {}) },
      },
    });
    charts.set(id, made);
    return made;
  }

  function chartBox(id, label, small) {
    return el("div", { class: small ? "chart small" : "chart" },
      el("canvas", { id, role: "img", "aria-label": label }));
  }

  function params() {
    return decodeURIComponent(window.location.pathname).split("/").filter(Boolean);
  }

  /* Keys exist, so reading needs a key with role read or admin: a login form. The key goes
     to POST /ui/api/login, which keeps it in an HttpOnly cookie (never in the URL, never
     readable by scripts). */
  function showLogin(error) {
    const main = document.getElementById("main");
    const input = el("input", { id: "login-key", name: "key", type: "password",
                                autocomplete: "off", spellcheck: "false", required: true,
                                placeholder: "dl_…" });
    const result = el("p", { id: "login-result", role: "alert" });
    const form = el("form", { id: "login-form", class: "panel" },
      el("label", {}, "API key (role read or admin)", input),
      el("p", { class: "hint" }, "Create one with ",
         el("code", {}, "driftloop keys create NAME --role read"),
         ". It is kept in an HttpOnly session cookie for 8 hours, never in the address."),
      result,
      el("div", { class: "buttons" }, el("button", { id: "login-submit", type: "submit" },
                                         "Log in")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.className = "";
      result.textContent = "Checking…";
      try {
        await api("/ui/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify({ key: input.value.trim() }) });
        document.body.dataset.ready = "0";
        await refresh();
      } catch (failure) {
        result.className = "error";
        result.textContent = `✗ refused (${failure.status}): ${failure.message}`;
      }
    });
    main.replaceChildren(el("h1", {}, "Log in to the dashboard"),
      el("p", {}, error.message || String(error)), form);
    input.focus();
  }

  function showError(error) {
    const main = document.getElementById("main");
    main.replaceChildren(el("h1", {}, "Could not load this page"),
      el("p", { class: "error", role: "alert" }, error.message || String(error)));
  }

  let current = null;
  async function start(render) {
    current = render;
    const nav = document.querySelector(`[data-nav="${document.body.dataset.page}"]`);
    if (nav) nav.setAttribute("aria-current", "page");
    await refresh();
  }

  async function refresh() {
    const main = document.getElementById("main");
    try {
      // a page's render returns {nodes, draw}: draw runs once the nodes (canvases) are shown
      const { nodes, draw } = await current();
      main.replaceChildren(...[nodes].flat(Infinity));
      if (draw) await draw();
      document.body.dataset.ready = "1";
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        showLogin(error);
        document.body.dataset.ready = "login";
        return;
      }
      showError(error);
      document.body.dataset.ready = "error";
    }
  }

  /* Admin actions: promote | rollback | deactivate | abort_rollout, with key and reason. */
  let adminKey = "";
  function admin({ action, model, version, alias, rollout }) {
    const dialog = document.getElementById("admin");
    const what = { promote: `Promote ${model} v${version}`, rollback: `Roll back ${model}@${alias}`,
                   deactivate: `Deactivate ${model}@${alias}`,
                   abort_rollout: `Abort rollout #${rollout} of ${model} v${version}` }[action];
    document.getElementById("admin-title").textContent = what;
    document.getElementById("admin-what").textContent = {
      promote: "Points the alias at this version if every promotion gate passes.",
      rollback: "Points the alias back at the version that held it before.",
      deactivate: "Stops the alias pointing at any version; serving it stops.",
      abort_rollout: "Stops the rollout now: the holder keeps the alias and answers every " +
        "request again; the candidate is dropped.",
    }[action];
    document.getElementById("admin-key").value = adminKey;
    const aliasInput = document.getElementById("admin-alias");
    aliasInput.value = alias || "production";
    aliasInput.readOnly = action !== "promote";
    document.getElementById("admin-reason").value = "";
    document.getElementById("admin-force").checked = false;
    document.getElementById("admin-force-row").hidden = action !== "promote";
    const result = document.getElementById("admin-result");
    result.textContent = "";
    result.className = "";
    const form = document.getElementById("admin-form");
    form.onsubmit = async (event) => {
      event.preventDefault();
      result.className = "";
      result.textContent = "Working…";
      adminKey = document.getElementById("admin-key").value.trim();
      const body = { alias: aliasInput.value.trim(),
                     reason: document.getElementById("admin-reason").value };
      if (action === "promote") {
        body.version = version;
        body.force = document.getElementById("admin-force").checked;
      }
      if (action === "abort_rollout") body.rollout = rollout;
      const headers = { "Content-Type": "application/json" };
      if (adminKey) headers.Authorization = `Bearer ${adminKey}`;
      try {
        const done = await api(`/ui/api/models/${encodeURIComponent(model)}/${action}`,
          { method: "POST", headers, body: JSON.stringify(body) });
        result.className = "good";
        result.textContent = `✓ ${done.message}` +
          (done.audit_seq ? ` Audit entry #${done.audit_seq}.` : "");
        document.body.dataset.ready = "0";
        await refresh();
      } catch (error) {
        result.className = "error";
        result.textContent = `✗ refused (${error.status}): ${error.message}`;
      }
    };
    document.getElementById("admin-cancel").onclick = () => dialog.close();
    dialog.showModal();
  }

  return { ICON, DASH, COLOUR, el, api, num, pct, time, shortTime, badge, severity, yesNo,
           table, facts, panel, chart, chartBox, params, start, refresh, admin };
})();
