/* Model version: metrics, training curve, calibration, slices, data check, lineage, card. */
"use strict";

(() => {
  const { el, api, num, time, table, facts, panel, chart, chartBox, params, admin, DASH,
          COLOUR, severity, yesNo } = DL;

  function interval(m) {
    if (!m) return "–";
    return m.low === null || m.low === undefined ? num(m.value, 4)
      : `${num(m.value, 4)}  [${num(m.low, 4)}, ${num(m.high, 4)}]`;
  }

  function metricsPanel(data) {
    const ev = data.evaluation;
    const rows = ev
      ? Object.entries(ev.metrics).map(([k, m]) => [k, num(m.value, 4),
        m.low === null ? "not defined" : `[${num(m.low, 4)}, ${num(m.high, 4)}]`,
        m.confidence ? `${Math.round(100 * m.confidence)}%` : "–"])
      : Object.entries(data.version.metrics).map(([k, v]) => [k,
        Number.isInteger(v) ? String(v) : num(v, 4), "–", "–"]);
    const where = ev ? `Evaluated on ${ev.dataset.source || ev.dataset.role || "data"} ` +
      `(${ev.dataset.rows} rows, fingerprint ${String(ev.dataset.fingerprint).slice(0, 12)}).`
      : "No evaluation report is stored: numbers come from training.";
    return panel("Test metrics",
      el("p", { class: "sub" }, where),
      table([{ label: "metric" }, { label: "value", num: true }, { label: "interval", num: true },
        { label: "confidence", num: true }], rows, { id: "metrics" }),
      ev && ev.warnings.length ? el("ul", {}, ev.warnings.map((w) => el("li", {}, `⚠ ${w}`)))
        : null);
  }

  function curvePanel(data) {
    if (!data.epochs.length) return panel("Training curve", el("p", { class: "muted" },
      "No per-epoch metrics were recorded for this version."));
    return panel("Training curve",
      chartBox("curve", "training and validation loss and validation accuracy per epoch"),
      el("p", { class: "sub" }, `${data.epochs.length} epoch(s). Solid: training loss; ` +
        "dashed: validation loss; dotted (right axis): validation accuracy."));
  }

  function drawCurve(data) {
    if (!data.epochs.length) return;
    const labels = data.epochs.map((e) => e.epoch + 1);
    const series = (key) => data.epochs.map((e) => (e[key] === undefined ? null : e[key]));
    const datasets = [
      { label: "training loss", data: series("train_loss"), borderColor: COLOUR.blue,
        borderDash: DASH.solid, pointStyle: "circle" },
      { label: "validation loss", data: series("val_loss"), borderColor: COLOUR.orange,
        borderDash: DASH.dashed, pointStyle: "triangle", pointRadius: 4 },
    ];
    const hasAcc = data.epochs.some((e) => e.val_accuracy !== undefined);
    if (hasAcc) {
      datasets.push({ label: "validation accuracy", data: series("val_accuracy"),
        borderColor: COLOUR.green, borderDash: DASH.dotted, pointStyle: "rect", yAxisID: "y1" });
    }
    chart("curve", { type: "line", data: { labels, datasets }, options: { scales: {
      x: { title: { display: true, text: "epoch" } },
      y: { title: { display: true, text: "loss" } },
      ...(hasAcc ? { y1: { position: "right", min: 0, max: 1, grid: { drawOnChartArea: false },
        title: { display: true, text: "accuracy" } } } : {}),
    } } });
  }

  function calibrationPanel(data) {
    const ev = data.evaluation;
    const cal = ev && ev.calibration;
    if (!cal) return panel("Calibration", el("p", { class: "muted" },
      "No calibration: regression, or no evaluation stored."));
    const [name, version] = [data.version.model_name, data.version.version];
    return panel("Calibration (reliability diagram)",
      ev.diagram ? el("img", { id: "reliability", width: 360, height: 360,
        src: `/ui/api/models/${encodeURIComponent(name)}/versions/${version}/reliability.png`,
        alt: `Reliability diagram: accuracy against confidence per bin; ECE ` +
          `${num(cal.before.ece)} before and ${num(cal.after.ece)} after temperature scaling.` })
        : null,
      table([{ label: "" }, { label: "ECE", num: true }, { label: "equal-mass ECE", num: true },
        { label: "MCE", num: true }], [
        ["before scaling", num(cal.before.ece, 4), num(cal.before.ece_equal_mass, 4),
          num(cal.before.mce, 4)],
        ["after scaling", num(cal.after.ece, 4), num(cal.after.ece_equal_mass, 4),
          num(cal.after.mce, 4)],
      ], { id: "calibration" }),
      el("p", { class: "sub" }, `Temperature ${num(cal.temperature, 3)}, ${cal.bins} bins. ` +
        "In the diagram the dashed diagonal is perfect calibration; each curve has markers."));
  }

  function slicesPanel(data) {
    const s = data.evaluation && data.evaluation.slices;
    if (!s || !s.slices.length) return panel("Slices", el("p", { class: "muted" },
      "No slice was evaluated."));
    const sign = s.greater_is_better ? 1 : -1;
    const ordered = [...s.slices].sort((a, b) => (b.flagged - a.flagged) ||
      ((a.gap === null) - (b.gap === null)) || sign * ((a.gap || 0) - (b.gap || 0)));
    const rows = ordered.map((x) => ({
      attrs: { class: x.flagged ? "flagged" : null, "data-flagged": x.flagged ? "1" : "0" },
      cells: [x.column, x.value, x.count, interval(x.metric),
        x.gap === null ? "–" : (x.gap >= 0 ? "+" : "") + num(x.gap, 4),
        x.flagged ? "⚑ flagged" : x.too_small ? "too small" : "ok"],
    }));
    const flagged = s.slices.filter((x) => x.flagged).length;
    return panel("Slices",
      el("p", { class: "sub", id: "slice-summary" }, `${s.metric} overall ${num(s.overall, 4)}; ` +
        `${flagged} of ${s.slices.length} slices flagged (worse by more than ${s.tolerance} ` +
        `${s.tolerance_kind}, interval excluding overall). Flagged rows come first.`),
      el("div", { class: "scroll" }, table([{ label: "column" }, { label: "slice" },
        { label: "rows", num: true }, { label: s.metric, num: true }, { label: "gap", num: true },
        { label: "status" }], rows, { id: "slices" })));
  }

  function checksPanel(data) {
    if (!data.data_checks.length) return panel("Data check", el("p", { class: "muted" },
      "No data check of this version's training data is stored."));
    return panel("Data check of the training data", data.data_checks.map((c) => [
      el("p", { class: "sub" }, `${yesNo(c.passed, "✓ passed", "✗ failed")} · ` +
        `${c.counts.error || 0} error(s), ${c.counts.warning || 0} warning(s), ` +
        `${c.counts.info || 0} note(s) · ${c.label}`),
      c.findings.length ? table([{ label: "severity" }, { label: "check" },
        { label: "finding" }, { label: "advice" }], c.findings.map((f) => [
        severity(f.severity), f.check, f.message, f.advice || "–"]), { class: "findings" })
        : el("p", {}, "No findings."),
    ]));
  }

  function runtimePanel(data) {
    const rt = data.runtime;
    const applied = rt.applied ? `Applied: ${rt.applied} (served while serve.runtime is auto).`
      : "Applied: none (served with torch unless serve.runtime names another).";
    if (!rt.recommended) return panel("Runtime", el("p", { class: "muted" },
      `${applied} Not measured: run driftloop models optimize ` +
      `${data.version.model_name} ${data.version.version}.`));
    const ratio = (i) => `${num(i.value, 2)} [${num(i.low, 2)}, ${num(i.high, 2)}]`;
    const rows = rt.runtimes.map((r) => [r.name, num(r.p50_us, 1), num(r.p99_us, 1),
      ratio(r.latency_ratio), num(r.throughput_rows_per_s, 0), r.size_bytes,
      interval(r.metric), num(r.drop_upper_bound, 4),
      r.eligible ? "✓ eligible" : r.refused.length ? "✗ refused" : "baseline"]);
    const refused = rt.runtimes.flatMap((r) => r.refused.map((why) => el("li", {},
      `${r.name}: ${why}`)));
    return panel("Runtime",
      el("p", { class: "sub" }, `Recommended ${rt.recommended} · measured ${time(rt.measured_at)}` +
        ` UTC on ${rt.rows} rows of the ${rt.data} · max ${rt.metric} drop ${rt.max_drop}. ` +
        applied),
      el("div", { class: "scroll" }, table([{ label: "runtime" }, { label: "p50 µs", num: true },
        { label: "p99 µs", num: true }, { label: "latency × fp32", num: true },
        { label: `rows/s @${rt.batch}`, num: true }, { label: "bytes", num: true },
        { label: rt.metric, num: true }, { label: "drop ≤", num: true }, { label: "decision" }],
      rows, { id: "runtimes" })),
      refused.length ? el("ul", { class: "sub" }, refused) : null);
  }

  function lineagePanel(data) {
    const name = data.version.model_name;
    const link = (v) => el("a", { href: `/ui/models/${encodeURIComponent(name)}/versions/${v}` },
      `v${v}`);
    const run = data.run;
    const datasets = Object.entries(data.datasets).map(([role, d]) => [role, d.rows,
      d.fingerprint.slice(0, 16), d.source]);
    const moves = data.moves.map((m) => [time(m.at), m.action, m.alias,
      m.from_version ? `v${m.from_version}` : "nothing",
      m.action === "deactivate" ? "nothing (deactivated)" : `v${m.to_version}`, m.actor,
      m.forced ? "⚠ gates overridden" : m.action === "promote" ? "✓ gates passed" : "–",
      m.reason || "–"]);
    const audit = data.audit.map((e) => [e.seq, time(e.at), e.action, e.subject, e.actor]);
    return panel("Lineage",
      facts([
        ["Training run", run ? `${run.id} · ${run.status} · ${run.world_size} worker(s)` : null],
        ["Code commit", run ? run.git_commit || "unknown" : null],
        ["Retrained from", data.ancestors.length ? data.ancestors.map(link)
          .flatMap((a, i) => (i ? [" ← ", a] : [a])) : "no parent version"],
        ["Retrained into", data.children.length ? data.children.map(link)
          .flatMap((a, i) => (i ? [", ", a] : [a])) : "none"],
        ["Weights sha256", data.version.weights_sha256],
      ]),
      el("h3", {}, "Datasets"),
      datasets.length ? table([{ label: "role" }, { label: "rows", num: true },
        { label: "fingerprint" }, { label: "source" }], datasets) : el("p", {}, "none recorded"),
      el("h3", {}, "Alias moves"),
      moves.length ? el("div", { class: "scroll" }, table([{ label: "at (UTC)" },
        { label: "action" }, { label: "alias" }, { label: "from" }, { label: "to" },
        { label: "by" }, { label: "gates" }, { label: "reason" }], moves, { id: "moves" }))
        : el("p", { class: "muted" }, "Never promoted."),
      el("h3", {}, "Audit entries"),
      el("div", { class: "scroll" }, table([{ label: "#", num: true }, { label: "at (UTC)" },
        { label: "action" }, { label: "subject" }, { label: "by" }], audit)));
  }

  function cardPanel(data) {
    const sections = Object.values(data.card.sections).map((s) => el("section", {},
      el("h3", {}, s.title),
      facts(s.items.map((i) => [i.label, i.text])),
      s.tables.map((t) => el("div", { class: "scroll" }, table(t.columns.map((c) =>
        ({ label: c })), t.rows)))));
    return panel("Model card", el("p", { class: "sub" }, data.card.missing.length
      ? `${data.card.missing.length} item(s) missing: fill them in driftloop.yaml (card:).`
      : "Complete."), el("div", { class: "scroll tall" }, sections));
  }

  async function render() {
    const [, , name, , version] = params();
    const data = await api(`/ui/api/models/${encodeURIComponent(name)}/versions/${version}`);
    const v = data.version;
    const select = el("select", { id: "goto", "aria-label": "Go to version",
      onchange: (e) => { window.location.href =
        `/ui/models/${encodeURIComponent(name)}/versions/${e.target.value}`; } },
    [...data.versions].reverse().map((n) => el("option", { value: n,
      selected: n === v.version }, `v${n}`)));
    const nodes = [
      el("h1", {}, `${v.model_name} v${v.version}`),
      el("div", { class: "row" },
        el("span", {}, `${v.task} · ${v.input_kind} · registered ${time(v.created_at)} UTC`),
        data.aliases.length ? data.aliases.map((a) => el("span", { class: "tag" }, `@${a}`))
          : el("span", { class: "muted" }, "no alias"),
        el("label", {}, "Version ", select),
        el("button", { type: "button", class: "primary", onclick: () => admin({
          action: "promote", model: v.model_name, version: v.version }) }, "Promote…"),
        el("a", { href: `/ui/models/${encodeURIComponent(name)}/monitoring` }, "Monitoring →"),
        el("a", { href: "/" }, "← all models")),
      el("div", { class: "grid" }, metricsPanel(data), curvePanel(data), calibrationPanel(data),
        slicesPanel(data), checksPanel(data), runtimePanel(data), lineagePanel(data)),
      cardPanel(data),
    ];
    return { nodes, draw: () => drawCurve(data) };
  }

  DL.start(render);
})();
