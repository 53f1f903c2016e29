/* Models: every model with its aliases, versions, key metrics and health badge. */
"use strict";

(() => {
  const { el, api, num, pct, time, badge, table, admin } = DL;

  function versionLink(model, version) {
    return el("a", { href: `/ui/models/${encodeURIComponent(model)}/versions/${version}` },
      `v${version}`);
  }

  function aliasRow(model, a) {
    return el("li", { "data-alias": a.alias }, el("strong", {}, a.alias), " → ",
      versionLink(model.name, a.version), " ",
      el("span", { class: "muted" }, `since ${time(a.since)}`), " ",
      el("button", { type: "button", onclick: () => admin({ action: "rollback",
        model: model.name, alias: a.alias }) }, "Roll back…"), " ",
      el("button", { type: "button", onclick: () => admin({ action: "deactivate",
        model: model.name, alias: a.alias }) }, "Deactivate…"));
  }

  function modelSection(model) {
    const w = model.latest_window;
    const metricCols = model.key_metrics.map((m) => ({ label: m, num: true }));
    const rows = model.versions.map((v) => [
      versionLink(model.name, v.version), time(v.created_at),
      v.aliases.map((a) => el("span", { class: "tag" }, a)),
      ...model.key_metrics.map((m) => num(v.metrics[m], 4)),
      v.parent ? `v${v.parent}` : "–",
      el("button", { type: "button", onclick: () => admin({ action: "promote",
        model: model.name, version: v.version }) }, "Promote…"),
    ]);
    return el("section", { class: "panel model", "data-model": model.name,
                           "aria-label": `model ${model.name}` },
      el("div", { class: "model-head" },
        el("h2", {}, model.name), badge(model.health),
        el("span", { class: "muted" }, `${model.task} · ${model.versions.length} version(s) · ` +
          `latest v${model.latest_version}`),
        el("a", { href: `/ui/models/${encodeURIComponent(model.name)}/monitoring` },
          "Monitoring →"),
        el("a", { href: `/ui/rollouts?model=${encodeURIComponent(model.name)}` },
          "Rollouts →")),
      el("p", { class: "sub health-reason" }, model.health.reason),
      w ? el("p", { class: "sub" }, `Latest window #${w.id} (v${w.version}): ${w.rows} rows ` +
        `up to ${time(w.end_at)} · ${w.drifted.length} of ${w.features} features drifted ` +
        `(${pct(w.share_drifted)})` + (w.prediction_drift ? " · predictions drifted" : ""))
        : null,
      el("h3", {}, "Aliases"),
      model.aliases.length ? el("ul", { class: "aliases" }, model.aliases.map((a) =>
        aliasRow(model, a))) : el("p", { class: "muted" }, "No alias yet: promote a version."),
      el("h3", {}, "Versions (newest first)"),
      el("div", { class: "scroll" }, table([{ label: "version" }, { label: "registered (UTC)" },
        { label: "aliases" }, ...metricCols, { label: "retrained from" }, { label: "admin" }],
      rows, { class: "versions" })));
  }

  async function render() {
    const data = await api("/ui/api/models");
    const counts = {};
    for (const m of data.models) counts[m.health.status] = (counts[m.health.status] || 0) + 1;
    const summary = Object.entries(counts).map(([s, n]) => `${n} ${DL.ICON[s]} ${s}`).join(" · ");
    const nodes = [
      el("h1", {}, "Models"),
      el("p", { class: "sub" }, data.models.length
        ? `${data.models.length} model(s): ${summary}. Health is read from each model's latest ` +
          `monitoring window; degraded means ${data.monitor.metric} fell more than ` +
          `${data.monitor.drop} below the test value.`
        : "No model is registered yet: train one with `driftloop train DATA --target COLUMN`."),
      data.models.map(modelSection),
    ];
    return { nodes };
  }

  DL.start(render);
})();
