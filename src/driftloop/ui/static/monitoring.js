/* Monitoring: drift timeline, per-feature drill-down, estimated vs realised metric, alerts. */
"use strict";

(() => {
  const { el, api, num, pct, time, shortTime, badge, table, panel, chart, chartBox, params,
          DASH, COLOUR } = DL;
  let data = null;
  let selected = null;  // the window shown in the drill-down
  let feature = null;   // the feature whose histograms are shown

  function timelinePanel() {
    const n = data.windows.length;
    const drifting = data.windows.filter((w) => w.drift_detected).length;
    return panel("Drift timeline",
      el("p", { class: "sub", id: "drift-summary" }, n
        ? `${drifting} of ${n} window(s) drifting. Line: share of features that drifted per ` +
          `window; ▲ marks a drifting window; dashed: the share (${data.share_threshold}) ` +
          "that makes dataset drift. Click a point to drill down."
        : "No monitoring window yet: run `driftloop monitor`."),
      n ? chartBox("timeline", `share of drifting features in each of ${n} windows`) : null);
  }

  function performancePanel() {
    const labelled = data.windows.filter((w) => w.realised && w.realised.value !== undefined);
    return panel(`Estimated vs realised ${data.metric}`,
      el("p", { class: "sub" }, `Solid with circles: estimated without labels (shaded: its ` +
        `interval); dashed with squares: realised from feedback labels (${labelled.length} ` +
        `window(s) labelled); dotted: the version's test value; dash-dot: the degraded bound ` +
        `(a drop of ${data.drop}).`),
      data.windows.length ? chartBox("performance", `estimated and realised ${data.metric} per ` +
        "window with the test value and the degraded bound") : null);
  }

  function drawTimeline() {
    if (!data.windows.length) return;
    const labels = data.windows.map((w) => shortTime(w.end_at));
    const many = data.windows.length > 200;
    chart("timeline", {
      type: "line",
      data: { labels, datasets: [
        { label: "share of features drifted", data: data.windows.map((w) => w.share_drifted),
          borderColor: COLOUR.blue, pointRadius: many ? 0 : 2, pointStyle: "circle",
          borderWidth: 1.5, spanGaps: true },
        { label: "▲ drifting window", data: data.windows.map((w) => (w.drift_detected
          ? (w.share_drifted === null ? 1 : w.share_drifted) : null)), showLine: false,
          pointStyle: "triangle", pointRadius: 6, borderColor: COLOUR.red,
          backgroundColor: COLOUR.red },
        { label: `drift threshold (${data.share_threshold})`, data: labels.map(() =>
          data.share_threshold), borderColor: COLOUR.grey, borderDash: DASH.dashed,
          pointRadius: 0, borderWidth: 1, pointStyle: "line" },
      ] },
      options: {
        scales: { y: { min: 0, max: 1, title: { display: true, text: "share of features drifted" } },
                  x: { title: { display: true, text: "window end (UTC)" },
                       ticks: { maxTicksLimit: 12 } } },
        onClick: (event, elements) => {
          if (elements.length) selectWindow(data.windows[elements[0].index].id);
        },
        plugins: { tooltip: { callbacks: { afterLabel: (ctx) => {
          const w = data.windows[ctx.dataIndex];
          return `window #${w.id} · ${w.rows} rows · v${w.version}` +
            (w.drift_detected ? " · ⚠ drifting" : "");
        } } } },
      },
    });
  }

  function drawPerformance() {
    if (!data.windows.length) return;
    const labels = data.windows.map((w) => shortTime(w.end_at));
    const pick = (f) => data.windows.map((w) => f(w) ?? null);
    const many = data.windows.length > 200;
    chart("performance", {
      type: "line",
      data: { labels, datasets: [
        { label: "estimated interval (low)", data: pick((w) => w.estimated && w.estimated.low),
          borderWidth: 0, pointRadius: 0, fill: false },
        { label: "estimated interval", data: pick((w) => w.estimated && w.estimated.high),
          borderWidth: 0, pointRadius: 0, fill: "-1", backgroundColor: "rgba(11,92,173,0.15)" },
        { label: `estimated ${data.metric}`, data: pick((w) => w.estimated && w.estimated.value),
          borderColor: COLOUR.blue, borderDash: DASH.solid, pointStyle: "circle",
          pointRadius: many ? 0 : 2, borderWidth: 1.5 },
        { label: `realised ${data.metric}`, data: pick((w) => w.realised && w.realised.value),
          borderColor: COLOUR.orange, borderDash: DASH.dashed, pointStyle: "rect",
          pointRadius: 3, borderWidth: 1.5, spanGaps: true },
        { label: "test value", data: pick((w) => w.test), borderColor: COLOUR.green,
          borderDash: DASH.dotted, pointRadius: 0, borderWidth: 1.5, pointStyle: "line" },
        { label: "degraded bound", data: pick((w) => w.bound), borderColor: COLOUR.red,
          borderDash: DASH.dashdot, pointRadius: 0, borderWidth: 1.5, pointStyle: "line" },
      ] },
      options: {
        scales: { y: { title: { display: true, text: data.metric } },
                  x: { title: { display: true, text: "window end (UTC)" },
                       ticks: { maxTicksLimit: 12 } } },
        plugins: { legend: { labels: { usePointStyle: true,
          filter: (item) => item.text !== "estimated interval (low)" } } },
      },
    });
  }

  function drillPanel() {
    return panel("Window drill-down", el("div", { id: "drill" },
      el("p", { class: "muted" }, "No window to show.")));
  }

  function windowChooser() {
    const recent = [...data.windows].reverse().slice(0, 500);
    return el("label", {}, "Window ", el("select", { id: "window-select",
      onchange: (e) => selectWindow(Number(e.target.value)) },
    recent.map((w) => el("option", { value: w.id, selected: selected && w.id === selected.id },
      `#${w.id} · ${shortTime(w.end_at)} · ${w.drift_detected ? "⚠ drifting" : "✓ no drift"}`))));
  }

  function renderDrill() {
    const box = document.getElementById("drill");
    if (!selected) return;
    const w = selected;
    const tests = w.feature_tests || [];
    const rows = tests.map((f) => ({
      attrs: { class: ["clickable", f.drifted ? "flagged" : null,
        f.name === feature ? "selected" : null].filter(Boolean).join(" "),
        "data-feature": f.name, tabindex: 0,
        onclick: () => { feature = f.name; renderDrill(); },
        onkeydown: (e) => { if (e.key === "Enter") { feature = f.name; renderDrill(); } } },
      cells: [f.name, f.status === "drift" || f.drifted ? "⚠ drift" : f.status === "not_testable"
        ? `– not testable${f.reason ? ": " + f.reason : ""}` : "✓ ok",
      `${f.test || "–"} (${f.kind || "?"})`, num(f.statistic, 3), num(f.p_value_adjusted, 4),
      el("span", { title: f.effect_metric || "" }, num(f.effect_size, 3))],
    }));
    const pred = w.prediction;
    box.replaceChildren(
      el("div", { class: "row" }, windowChooser(),
        el("strong", { id: "window-status", "data-drift": w.drift_detected ? "1" : "0" },
          w.drift_detected ? "⚠ drifting" : "✓ no dataset drift"),
        el("span", {}, `window #${w.id} · v${w.version} · ${w.rows} rows · ` +
          `${time(w.start_at)} → ${time(w.end_at)} UTC · ${w.drifted.length} of ${w.features} ` +
          `features drifted (${pct(w.share_drifted)}) · ${w.correction || "no"} correction, ` +
          `α ${w.alpha ?? "–"}`)),
      pred ? el("p", { class: "sub" }, pred.drift_detected ? "⚠ the predictions drifted"
        : "✓ the predictions did not drift") : null,
      el("div", { class: "drill" },
        el("div", { class: "scroll" }, table([{ label: "feature" }, { label: "status" },
          { label: "test" }, { label: "statistic", num: true }, { label: "p adj.", num: true },
          { label: "effect", num: true }], rows, { id: "features" })),
        el("div", {}, el("h3", { id: "histogram-title" }, feature ? `${feature}: reference vs ` +
          "current" : "Choose a feature"), chartBox("histogram",
          `histogram of ${feature} in the reference and in this window`, true),
        el("p", { class: "sub" }, "Outlined bars: reference (training data); filled bars: " +
          "this window. Heights are fractions of rows."))));
    drawHistogram();
  }

  function drawHistogram() {
    const h = selected && feature && selected.histograms[feature];
    if (!h) return;
    chart("histogram", {
      type: "bar",
      data: { labels: h.labels, datasets: [
        { label: "reference", data: h.reference, backgroundColor: "rgba(0,0,0,0)",
          borderColor: COLOUR.grey, borderWidth: 2 },
        { label: "current window", data: h.current, backgroundColor: COLOUR.orange,
          borderColor: COLOUR.orange, borderWidth: 1 },
      ] },
      options: { plugins: { legend: { labels: { usePointStyle: false } } },
        scales: { y: { min: 0, title: { display: true, text: "fraction of rows" } },
                  x: { title: { display: true, text: feature } } } },
    });
  }

  async function selectWindow(id) {
    try {
      selected = id === data.latest?.id ? data.latest : await api(`/ui/api/windows/${id}`);
    } catch (error) {
      document.getElementById("drill").replaceChildren(el("p", { class: "error", role: "alert" },
        `Could not load window #${id}: ${error.message}`));
      return;
    }
    const tests = selected.feature_tests || [];
    const keep = tests.find((f) => f.name === feature && selected.histograms[f.name]);
    const first = tests.find((f) => f.drifted && selected.histograms[f.name]) ||
      tests.find((f) => selected.histograms[f.name]);
    feature = keep ? keep.name : first ? first.name : null;
    renderDrill();
  }

  function alertsPanel() {
    const rows = data.alerts.map((a) => [time(a.at), a.kind.replaceAll("_", " "), a.message,
      a.window_id ? `#${a.window_id}` : "–",
      a.deliveries.length ? a.deliveries.map((d) => `${d.ok ? "✓" : "✗"} ${d.to || "?"} ` +
        `(${d.attempts ?? "?"} attempt(s), ${d.status ?? "–"})`).join("; ") : "not sent"]);
    return panel("Alerts", rows.length ? el("div", { class: "scroll" }, table([
      { label: "at (UTC)" }, { label: "kind" }, { label: "message" }, { label: "window" },
      { label: "webhooks" }], rows, { id: "alerts" }))
      : el("p", { class: "muted" }, "No alert."));
  }

  async function render() {
    const [, , name] = params();
    data = await api(`/ui/api/models/${encodeURIComponent(name)}/monitoring`);
    selected = data.latest;
    feature = null;
    const nodes = [
      el("h1", {}, `${data.model} — monitoring`),
      el("div", { class: "row" }, badge(data.health),
        el("span", { class: "health-reason" }, data.health.reason),
        el("a", { href: "/" }, "← all models"),
        el("a", { href: `/ui/loop?model=${encodeURIComponent(data.model)}` }, "Loop runs →")),
      el("div", { class: "grid" }, timelinePanel(), performancePanel()),
      drillPanel(),
      alertsPanel(),
    ];
    return { nodes, draw: async () => {
      drawTimeline();
      drawPerformance();
      if (selected) await selectWindow(selected.id);
    } };
  }

  DL.start(render);
})();
