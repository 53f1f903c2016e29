/* Rollouts: each candidate on its way to an alias (shadow -> canary -> promoted, or back), its
   stage and share, the live comparison against the holder with intervals, and the decision. */
"use strict";

(() => {
  const { el, api, num, pct, time, table, facts, admin } = DL;
  // every stage carries a symbol and a word (readable without colour)
  const STAGE = { shadow: "◐ shadow", canary: "◑ canary", promoted: "✓ promoted",
                  rolled_back: "↩ rolled back", expired: "⌛ expired", aborted: "■ aborted" };
  const VERDICT = { promote: "✓ promote", rollback: "✗ roll back", continue: "… undecided" };

  function signed(v) {
    if (v === null || v === undefined) return "–";
    const text = num(v, 3);
    return Number(v) >= 0 ? `+${text}` : text;
  }

  /* "+0.050 [+0.010, +0.090]" for a difference, "0.950 [0.930, 0.970]" for a share */
  function interval(check) {
    const f = check.signed ? signed : (v) => num(v, 3);
    return `${f(check.estimate)} [${f(check.low)}, ${f(check.high)}]`;
  }

  function stageBadge(r) {
    const share = r.stage === "canary" ? ` ${pct(r.share)}` : "";
    return el("span", { class: `stage stage-${r.stage}`, "data-stage": r.stage },
      `${STAGE[r.stage] || r.stage}${share}`);
  }

  function length(rows, seconds) {
    const parts = [rows ? `${rows} rows` : null, seconds ? `${seconds} s` : null]
      .filter(Boolean);
    return parts.length ? parts.join(" or ") : null;
  }

  function schedule(r) {
    const p = r.policy;
    const shadow = length(p.shadow_rows, p.shadow_s);
    const step = length(p.step_rows, p.step_s);
    const steps = [shadow ? `shadow (${shadow})` : null,
      ...r.planned_shares.map((s) => `canary ${pct(s)}${step ? ` (${step})` : ""}`),
      `decision → ${r.alias}`].filter(Boolean);
    return steps.join(" → ");
  }

  function stageText(r) {
    if (r.stage === "canary") {
      return `canary: ${pct(r.share)} of requests answered by v${r.candidate_version} ` +
        `(step ${r.step + 1} of ${r.planned_shares.length})`;
    }
    if (r.stage === "shadow") {
      return `shadow: v${r.holder_version} answers every request, v${r.candidate_version} ` +
        "answers the same rows off the request path";
    }
    const at = r.share > 0 && r.stage !== "promoted" ? ` in canary at ${pct(r.share)}` : "";
    return `${STAGE[r.stage] || r.stage}${at}, ended ${time(r.ended_at)}`;
  }

  function policyText(p) {
    const name = (p.name || "non_inferior").replaceAll("_", "-");
    const decides = p.use_estimate
      ? `labels once ${p.min_labels} rows are labelled, the label-free estimate before`
      : `labels once ${p.min_labels} rows are labelled (no label-free decision)`;
    return `${name}, margin ${p.margin}, confidence ${pct(p.confidence)}; decides on ` +
      `${decides}; rolls back above an error rate of ${pct(p.max_error_rate)} or a p99 of ` +
      `${p.max_p99_ms} ms`;
  }

  function comparison(r) {
    const c = r.comparison;
    if (!c) {
      return el("p", { class: "muted" }, "No live comparison yet: the serving replicas write " +
        "it once they have judged the first rows.");
    }
    const rows = c.checks.map((check) => ({
      attrs: { "data-check": check.name, class: check.deciding ? "deciding" : null },
      cells: [check.label, interval(check), check.rows === null ? "–" : check.rows,
        check.deciding ? "◆ the verdict rests on this" : ""],
    }));
    const lat = c.latency_ms || {};
    const latency = ["holder", "candidate"].filter((k) => lat[k] && lat[k].p50 !== null)
      .map((k) => `${k} p50 ${num(lat[k].p50, 1)} ms, p99 ${num(lat[k].p99, 1)} ms`);
    return el("div", {},
      el("p", { class: "verdict", "data-verdict": c.verdict },
        el("strong", {}, VERDICT[c.verdict] || c.verdict), ` (on ${c.basis}): ${c.reason}`),
      el("p", { class: "sub counts" }, `${c.labelled} of ${c.rows} served rows labelled` +
        (r.active && c.stage_rows !== null ? `; ${c.stage_rows} rows in this stage` : "") +
        (latency.length ? ` · latency: ${latency.join("; ")}` : "")),
      el("div", { class: "scroll" }, table([{ label: "check" },
        { label: "estimate [interval]", num: true }, { label: "rows", num: true },
        { label: "" }], rows, { class: "checks" })),
      el("p", { class: "hint muted" }, `Intervals are confidence sequences at ` +
        `${pct(r.policy.confidence)} for the decision as a whole, valid however often they ` +
        "are read; differences are candidate minus holder on the same rows."));
  }

  function history(list) {
    if (!list.length) return null;
    return el("details", {}, el("summary", {}, `${list.length} audited stage change(s)`),
      el("ol", { class: "history" }, list.map((h) => el("li", {},
        `${time(h.at)} · ${h.from} → ${h.to}` +
        (h.to === "canary" ? ` ${pct(h.share)}` : "") +
        ` by ${h.actor}` + (h.decision ? ` — ${h.decision}` : "")))));
  }

  function rolloutSection(r) {
    return el("section", { class: "panel rollout", "data-rollout": r.id, "data-stage": r.stage,
                           "aria-label": `rollout ${r.id}` },
      el("div", { class: "model-head" },
        el("h2", {}, `${r.model} v${r.candidate_version} → ${r.alias}`), stageBadge(r),
        el("span", { class: "muted" }, `rollout #${r.id} · against v${r.holder_version} · ` +
          `started ${time(r.started_at)} by ${r.actor}`),
        r.active ? el("button", { type: "button", class: "abort", onclick: () => admin({
          action: "abort_rollout", model: r.model, version: r.candidate_version,
          alias: r.alias, rollout: r.id }) }, "Abort…") : null),
      facts([
        ["stage", stageText(r)],
        ["planned", schedule(r)],
        ["policy", policyText(r.policy)],
        ["decision", r.decision || (r.active ? "– (under way)" : "–")],
      ]),
      el("h3", {}, r.active ? "Live comparison: candidate against holder"
        : "Last live comparison: candidate against holder"),
      comparison(r),
      history(r.history));
  }

  async function render() {
    const model = new URLSearchParams(window.location.search).get("model");
    const query = model ? `?model=${encodeURIComponent(model)}` : "";
    const data = await api(`/ui/api/rollouts${query}`);
    const live = data.rollouts.filter((r) => r.active).length;
    const nodes = [
      el("h1", {}, model ? `Rollouts — ${model}` : "Rollouts"),
      el("p", { class: "sub" }, data.rollouts.length
        ? `${data.rollouts.length} rollout(s), ${live} under way (shown first), then newest ` +
          "first. Each is judged live on the served rows both versions answered; decisions " +
          "rest on the intervals, never on two point estimates."
        : "No rollout yet: start one with `driftloop models rollout NAME VERSION`."),
      model ? el("p", {}, el("a", { href: "/ui/rollouts" }, "Show every model")) : null,
      data.rollouts.map(rolloutSection),
    ];
    return { nodes };
  }

  DL.start(render);
})();
