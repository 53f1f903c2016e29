/* Loop: each retrain decision with its trigger numbers, the gates and what was promoted. */
"use strict";

(() => {
  const { el, api, num, time, table } = DL;
  const OUTCOME = { promoted: "✓ promoted", kept: "= kept champion", failed: "✗ failed",
                    no_trigger: "– no trigger", cooldown: "⏸ cooldown",
                    daily_limit: "⏸ daily limit", running: "… running" };

  /* A trigger number or a gate's measured value or bound: numbers to 4 decimals, lists item by
     item, text (a gate's bound is text such as ">= 0.5") as it is. */
  function show(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") return num(v, 4).replace(/\.0+$|(\.\d*?)0+$/, "$1");
    if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function numbers(trigger) {
    if (!trigger) return "–";
    const extra = Object.entries(trigger).filter(([k]) => k !== "kind" && k !== "message")
      .map(([k, v]) => `${k} = ${show(v)}`);
    return el("div", {}, el("strong", {}, (trigger.kind || "trigger").replaceAll("_", " ")),
      trigger.message ? el("div", {}, trigger.message) : null,
      extra.length ? el("div", { class: "muted" }, extra.join(" · ")) : null);
  }

  function gates(list) {
    if (!list || !list.length) return "–";
    return el("ul", { class: "gates" }, list.map((g) => el("li", { "data-passed":
      g.passed ? "1" : "0" }, `${g.passed ? "✓" : "✗"} ${g.name}: ${show(g.value)} vs bound ` +
      `${show(g.bound)}${g.message ? " — " + g.message : ""}`)));
  }

  function steps(list) {
    if (!list || !list.length) return "–";
    return el("details", {}, el("summary", {}, `${list.length} step(s)`),
      el("ol", {}, list.map((s) => el("li", {}, `${s.step}: ${s.message}`))));
  }

  async function render() {
    const model = new URLSearchParams(window.location.search).get("model");
    const query = model ? `?model=${encodeURIComponent(model)}` : "";
    const data = await api(`/ui/api/loop${query}`);
    const rows = data.runs.map((r) => ({
      attrs: { "data-outcome": r.outcome, "data-run": r.id },
      cells: [r.id, time(r.started_at), r.model_name, OUTCOME[r.outcome] || r.outcome,
        numbers(r.trigger),
        `${r.champion_version ? "v" + r.champion_version : "–"} → ` +
          `${r.challenger_version ? "v" + r.challenger_version : "–"}`,
        r.accuracy_champion === null && r.accuracy_challenger === null ? "–"
          : `${num(r.accuracy_champion, 4)} → ${num(r.accuracy_challenger, 4)}`,
        gates(r.gates), steps(r.steps)],
    }));
    const promoted = data.runs.filter((r) => r.promoted).length;
    const nodes = [
      el("h1", {}, model ? `Loop — ${model}` : "Loop"),
      el("p", { class: "sub" }, data.runs.length
        ? `${data.runs.length} loop iteration(s), newest first; ${promoted} promoted a ` +
          "challenger. Each row: what triggered it and its numbers, champion and challenger, " +
          "and every promotion gate (✓ passed, ✗ failed) with its value and bound."
        : "The loop has not run yet (`driftloop loop run-once`)."),
      model ? el("p", {}, el("a", { href: "/ui/loop" }, "Show every model")) : null,
      data.runs.length ? el("div", { class: "scroll tall" }, table([{ label: "#", num: true },
        { label: "started (UTC)" }, { label: "model" }, { label: "outcome" },
        { label: "trigger" }, { label: "champion → challenger" },
        { label: "accuracy", num: true }, { label: "gates" }, { label: "steps" }], rows,
      { id: "runs" })) : null,
    ];
    return { nodes };
  }

  DL.start(render);
})();
