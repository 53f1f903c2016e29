/* New model: upload a table, preview it, pick the target, read the data check in plain words,
   exclude columns, then train with a live progress bar that survives a reload (the job lives in
   the store; the address keeps the model, upload and target). */
"use strict";

(() => {
  const { el, api } = DL;
  const state = { limit: 0, preview: null, target: null, task: null, excluded: new Map(),
                  model: "", timer: null };
  const SEVERITY_WORDS = { error: "Must fix", warning: "Worth a look", info: "Good to know" };

  function mb(bytes) {
    return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  }

  function remember() {
    const q = new URLSearchParams();
    if (state.model) q.set("model", state.model);
    if (state.preview) q.set("upload", state.preview.upload);
    if (state.target) q.set("target", state.target);
    history.replaceState(null, "", `/ui/new?${q}`);
  }

  function uploadPanel() {
    const input = el("input", { id: "file", type: "file", accept: ".csv,.parquet,.pq",
                                "aria-describedby": "limit" });
    const result = el("p", { id: "upload-result", role: "alert" });
    const button = el("button", { id: "upload", type: "button", onclick: async () => {
      const file = input.files[0];
      if (!file) { result.textContent = "Choose a file first."; return; }
      result.className = "";
      result.textContent = `Uploading ${file.name}…`;
      try {
        state.preview = await api(`/ui/api/uploads?filename=${encodeURIComponent(file.name)}`,
          { method: "POST", body: file });
        result.className = "good";
        result.textContent = `✓ ${file.name}: ${state.preview.rows} rows, ` +
          `${state.preview.columns.length} columns.`;
        state.model = state.model || file.name.replace(/\.[^.]*$/, "").toLowerCase()
          .replace(/[^a-z0-9_-]+/g, "-").replace(/^[^a-z]+/, "") || "model";
        remember();
        showPreview();
      } catch (error) {
        result.className = "error";
        result.textContent = `✗ ${error.message}`;
      }
    } }, "Upload");
    return DL.panel("1. Your table",
      el("label", {}, "CSV or Parquet file with a header row", input),
      el("p", { id: "limit", class: "hint" }, `Up to ${mb(state.limit)}. The file is kept on ` +
        "this server under its fingerprint; nothing is sent anywhere else."),
      el("div", { class: "buttons" }, button), result);
  }

  function previewTable(p) {
    return el("div", { class: "scroll" }, DL.table(p.columns.map((c) => ({ label: c.name })),
      p.head.map((row) => row.map((v) => (v === null ? "–" : String(v)))), { id: "preview" }));
  }

  function showPreview() {
    const p = state.preview;
    const select = el("select", { id: "target" }, el("option", { value: "" }, "— choose —"),
      p.columns.map((c) => el("option", { value: c.name },
        c.name + (p.suggested.includes(c.name) ? " (suggested)" : ""))));
    const words = el("p", { id: "task", "aria-live": "polite" });
    select.addEventListener("change", async () => {
      state.target = select.value || null;
      words.className = "";
      words.textContent = "";
      document.getElementById("check-area").replaceChildren();
      if (!state.target) return;
      try {
        const t = await api(`/ui/api/uploads/${p.upload}/target?column=` +
          encodeURIComponent(state.target));
        state.task = t.task;
        words.textContent = `The model will predict ${t.target}: ${t.task_words}` +
          (t.answers.length ? ` (${t.answers.join(", ")}).` : ".");
        remember();
        showCheckButton();
      } catch (error) {
        state.target = null;
        words.className = "error";
        words.textContent = `✗ ${error.message}`;
      }
    });
    const area = document.getElementById("preview-area");
    area.replaceChildren(DL.panel("2. What to predict",
      el("p", {}, `The first ${p.head.length} of ${p.rows} rows:`), previewTable(p),
      el("label", {}, "Column to predict", select),
      p.suggested.length ? el("p", { class: "hint" }, "Suggested (few distinct values, like " +
        `answers): ${p.suggested.join(", ")}.`) : null, words,
      el("div", { id: "check-area" })));
    if (state.target) { select.value = state.target; select.dispatchEvent(new Event("change")); }
  }

  function showCheckButton() {
    const status = el("p", { id: "check-status", role: "status", "aria-live": "polite" });
    document.getElementById("check-area").replaceChildren(
      el("h3", {}, "3. Check the data"),
      el("p", {}, "Looks for mistakes before training: duplicates, labels that look wrong, " +
        "columns that give the answer away, personal data."),
      el("label", {}, "Model name", el("input", { id: "model-name", type: "text",
        value: state.model, pattern: "[a-z][a-z0-9_\\-]{0,63}",
        oninput: (e) => { state.model = e.target.value.trim(); remember(); } })),
      el("div", { class: "buttons" }, el("button", { id: "check", type: "button",
        onclick: () => startJob("check", status) }, "Check the data")), status,
      el("div", { id: "findings-area" }));
  }

  async function startJob(kind, status) {
    status.className = "";
    status.textContent = kind === "check" ? "Checking…" : "Starting the training…";
    try {
      const job = await api("/ui/api/jobs", { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind, model: state.model, upload: state.preview.upload,
          target: state.target, exclude: [...state.excluded.keys()] }) });
      remember();
      follow(job);
    } catch (error) {
      status.className = "error";
      status.textContent = `✗ ${error.message}`;
    }
  }

  function follow(job) {
    clearTimeout(state.timer);
    const tick = async () => {
      const now = await api(`/ui/api/jobs/${job.id}`);
      if (now.kind === "check") showCheck(now); else showTraining(now);
      if (now.active) state.timer = setTimeout(tick, 500);
    };
    tick();
  }

  function showCheck(job) {
    const status = document.getElementById("check-status");
    if (!status) return;
    if (job.active) { status.textContent = "Checking the data… (this runs in the background)"; return; }
    if (job.status !== "succeeded") {
      status.className = "error";
      status.textContent = `✗ ${job.error}`;
      return;
    }
    const report = job.result;
    for (const [column, why] of Object.entries(report.excluded || {})) {
      if (!state.excluded.has(column)) state.excluded.set(column, why);
    }
    status.className = "good";
    status.textContent = `✓ Checked ${report.dataset.rows} rows: ${report.findings.length} ` +
      "finding(s).";
    const items = report.findings.map((f) => el("li", { "data-check": f.check,
                                                        "data-severity": f.severity },
      el("strong", {}, `${SEVERITY_WORDS[f.severity] || f.severity}: `), f.message,
      f.advice ? el("div", { class: "hint" }, `What to do: ${f.advice}`) : null,
      f.rows.length ? el("div", {}, el("a", { class: "rows", download: `${f.check}-rows.csv`,
        href: `/ui/api/uploads/${state.preview.upload}/rows?rows=${f.rows.join(",")}` },
      `Download the ${f.rows.length} row(s) concerned (CSV)`)) : null));
    document.getElementById("findings-area").replaceChildren(
      items.length ? el("ul", { id: "findings" }, items) : el("p", {}, "Nothing to fix."),
      columnsPanel());  // both always nodes
  }

  function columnsPanel() {
    const rows = state.preview.columns.filter((c) => c.name !== state.target).map((c) => {
      const box = el("input", { type: "checkbox", "data-column": c.name,
                                checked: state.excluded.has(c.name) });
      box.addEventListener("change", () => {
        if (box.checked) state.excluded.set(c.name, "excluded by you");
        else state.excluded.delete(c.name);
      });
      const why = state.excluded.get(c.name);
      return el("li", {}, el("label", { class: "check" }, box, ` leave out ${c.name}`),
        why && why !== "excluded by you" ? el("span", { class: "hint" }, ` — ${why}`) : null);
    });
    const status = el("p", { id: "train-status", role: "status", "aria-live": "polite" });
    return el("section", { "aria-label": "Columns and training" },
      el("h3", {}, "4. Columns to learn from"),
      el("p", {}, "Tick a column to leave it out (names, ids, anything the model must not use)."),
      el("ul", { id: "columns", class: "plain" }, rows),
      el("h3", {}, "5. Train"),
      el("div", { class: "buttons" }, el("button", { id: "train", type: "button",
        onclick: () => startJob("train", status) }, "Train the model")), status,
      el("div", { id: "progress-area" }));
  }

  function seconds(s) {
    if (s === null || s === undefined) return "estimating…";
    return s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  function showTraining(job) {
    let area = document.getElementById("progress-area");
    if (!area) {  // a reload: the page shows the job alone
      area = el("div", { id: "progress-area" });
      document.getElementById("journey").replaceChildren(DL.panel("Training " + job.model_name,
        area));
    }
    const p = job.progress || {};
    const share = p.share || 0;
    const cancel = el("button", { id: "cancel", type: "button", onclick: async () => {
      await api(`/ui/api/jobs/${job.id}/cancel`, { method: "POST" });
    } }, "Cancel");
    const bar = el("progress", { id: "bar", max: "1", value: String(share),
                                 "aria-label": "training progress" });
    const line = job.active
      ? `${p.stage || "waiting for a worker"}` + (p.epoch !== undefined
        ? ` · epoch ${p.epoch} of ${p.epochs} · loss ${p.loss === null ? "–" : p.loss.toFixed(4)}` +
          ` · ${Math.round(100 * share)} % · time left ${seconds(p.left_s)}` : "")
      : job.status === "succeeded"
        ? `✓ Trained ${job.model_name} v${job.result.version} in ${job.result.epochs_run} epochs.`
        : `✗ ${job.status}: ${job.error}`;
    area.replaceChildren(...[bar, el("p", { id: "progress-text", "data-job": job.id,
                                            "data-status": job.status }, line),
      job.active ? el("div", { class: "buttons" }, cancel) : null,
      job.status === "succeeded" ? el("div", { id: "use-area" }) : null].filter(Boolean));
    if (job.status === "succeeded") showEvaluation(job.model_name, job.result.version);
    else document.body.dataset.job = job.status;
  }

  /* 2. Is it any good? 3. Use it. 4. Is it still healthy? */
  async function showEvaluation(model, version) {
    const e = await api(`/ui/api/workbench/models/${encodeURIComponent(model)}/versions/${version}`);
    const promoteResult = el("p", { id: "promote-result", role: "alert" });
    const reason = el("textarea", { id: "promote-reason", rows: "2", maxlength: "500" });
    const promoteButton = el("button", { id: "promote", type: "button", onclick: async () => {
      promoteResult.className = "";
      promoteResult.textContent = "Promoting…";
      try {
        const done = await api(`/ui/api/workbench/models/${encodeURIComponent(model)}/promote`,
          { method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ version, alias: "production", reason: reason.value }) });
        promoteResult.className = "good";
        promoteResult.textContent = `✓ ${done.message}`;
        document.body.dataset.promoted = "1";
      } catch (error) {
        promoteResult.className = "error";
        promoteResult.textContent = `✗ ${error.message}`;
      }
    } }, "Promote to production");
    const scoreFile = el("input", { id: "score-file", type: "file", accept: ".csv,.parquet" });
    const scoreResult = el("p", { id: "score-result", role: "alert" });
    const scoreButton = el("button", { id: "score", type: "button", onclick: async () => {
      const file = scoreFile.files[0];
      if (!file) { scoreResult.textContent = "Choose a file first."; return; }
      scoreResult.className = "";
      scoreResult.textContent = "Scoring…";
      const response = await fetch(`/ui/api/workbench/models/${encodeURIComponent(model)}` +
        `/versions/${version}/score?filename=${encodeURIComponent(file.name)}`,
        { method: "POST", body: file });
      if (!response.ok) {
        const body = await response.json();
        scoreResult.className = "error";
        scoreResult.textContent = `✗ ${body.error.message}`;
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      scoreResult.className = "good";
      scoreResult.replaceChildren("✓ Scored. ", el("a", { id: "scored", href: url,
        download: `${model}-v${version}-scored.csv` }, "Download the scored CSV"));
    } }, "Score the file");
    const snippet = `curl -X POST ${window.location.origin}/v1/models/${model}/predict \\\n` +
      "  -H 'Content-Type: application/json' -H 'Authorization: Bearer YOUR_PREDICT_KEY' \\\n" +
      `  -d '{"instances": [${JSON.stringify(Object.fromEntries(state.preview ?
        state.preview.columns.filter((c) => c.name !== state.target &&
          !state.excluded.has(c.name)).map((c) => [c.name, "…"]) : []))}]}'`;
    const area = document.getElementById("use-area");
    area.replaceChildren(
      el("section", { id: "explained", "aria-label": "Is it any good?" },
        el("h3", {}, "Is it any good?"),
        el("ul", {}, e.sentences.map((t) => el("li", {}, t))),
        e.slices.length ? el("ul", { id: "weak-slices" }, e.slices.map((t) => el("li", {}, t)))
          : null,
        e.baselines.length ? el("p", { id: "baselines" }, "Compared on the same test rows, " +
          "the model is " + e.baselines.map((b) => `${b.words} (which is right in ` +
          `${Math.round(100 * b.accuracy)} of 100)`).join("; and ") + ".") : null,
        el("p", {}, el("a", { href: `/ui/models/${encodeURIComponent(model)}/versions/` +
          `${version}` }, "The full evaluation, model card and lineage →"))),
      el("section", { id: "use", "aria-label": "Use it" },
        el("h3", {}, "Use it"),
        el("label", {}, "Why promote it? (audited; no personal data)", reason),
        el("p", { class: "hint" }, "Promotion runs the gates; a failed gate says what to do."),
        el("div", { class: "buttons" }, promoteButton), promoteResult,
        el("label", {}, "Score a file (the same columns as the training table)", scoreFile),
        el("div", { class: "buttons" }, scoreButton), scoreResult,
        el("details", {}, el("summary", {}, "Call it from a program (HTTP API)"),
          el("pre", {}, el("code", { id: "snippet" }, snippet)))),
      el("section", { id: "health", "aria-label": "Is it still healthy?" },
        el("h3", {}, "Is it still healthy?"),
        el("p", { id: "health-summary" }, await healthSentence(model)),
        el("div", { class: "buttons" }, el("button", { id: "loop-run", type: "button",
          onclick: () => runLoop(model) }, "Run one loop iteration now")),
        el("div", { id: "loop-story", role: "status", "aria-live": "polite" }),
        el("p", {}, el("a", { href: `/ui/models/${encodeURIComponent(model)}/monitoring` },
          "Monitoring →"))));
    document.body.dataset.job = "succeeded";
  }

  async function runLoop(model) {
    const area = document.getElementById("loop-story");
    area.textContent = "Running one loop iteration in the background…";
    try {
      let job = await api("/ui/api/jobs", { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ kind: "loop", model }) });
      while (job.active) {
        await new Promise((done) => setTimeout(done, 500));
        job = await api(`/ui/api/jobs/${job.id}`);
      }
      area.replaceChildren(job.status === "succeeded"
        ? el("div", { "data-outcome": job.result.outcome },
          el("p", {}, `Outcome: ${job.result.outcome.replaceAll("_", " ")}.`),
          el("ol", {}, job.result.story.map((line) => el("li", {}, line))))
        : el("p", { class: "error" }, `✗ ${job.error}`));
    } catch (error) {
      area.replaceChildren(el("p", { class: "error" }, `✗ ${error.message}`));
    }
  }

  async function healthSentence(model) {
    const data = await api("/ui/api/models");
    const found = data.models.find((m) => m.name === model);
    return found ? `${found.health.label || found.health.status}: ${found.health.reason}`
      : "Not monitored yet.";
  }

  async function render() {
    const info = await api("/ui/api/workbench");
    state.limit = info.upload_limit_bytes;
    const q = new URLSearchParams(window.location.search);
    state.model = q.get("model") || "";
    const nodes = [el("h1", {}, "New model"),
      el("p", { class: "sub" }, "From a table to a trained model in five steps. Long work runs " +
        "in the background: you can reload this page or close it and come back."),
      el("div", { id: "journey" }, uploadPanel(), el("div", { id: "preview-area" }))];
    const draw = async () => {
      if (state.model) {
        const { job } = await api(`/ui/api/jobs?model=${encodeURIComponent(state.model)}`);
        if (job && job.kind === "train") { follow(job); return; }
      }
      if (q.get("upload")) {
        state.preview = await api(`/ui/api/uploads/${encodeURIComponent(q.get("upload"))}`);
        state.target = q.get("target");
        showPreview();
      }
    };
    return { nodes, draw };
  }

  DL.start(render);
})();
