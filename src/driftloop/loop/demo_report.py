"""The demo's ``report.html``: one self-contained page (charts are inline PNGs, no CDN).

Sections: the story, the training curve, the reliability diagram, the slice table, the drift
timeline, estimated vs realised accuracy per window, and the retrain and promotion events.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.registry.evidence import evaluations

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.9em} td,th{border:1px solid #ccc;
padding:.3em .5em;text-align:left} th{background:#f3f3f3} img{max-width:100%}
.flag{font-weight:bold} ol li{margin:.3em 0}
"""


def write_report(result: Any, settings: Settings, path: Path, *, model: str) -> Path:
    """Write the demo's report for ``result`` (a :class:`~driftloop.loop.demo.DemoResult`) of
    the demo's model ``model``."""
    with Registry.open(settings) as registry:
        page = _page(result, registry, model)
    path.write_text(page, encoding="utf-8")
    return path


def _page(result: Any, registry: Registry, model: str) -> str:
    v1 = registry.get(model, result.training.version)
    versions = [v1] + ([registry.get(model, result.retrained_version)]
                       if result.retrained_version else [])
    sections = [
        ("What happened", "<ol>" + "".join(f"<li>{html.escape(s)}</li>"
                                           for s in result.story) + "</ol>"),
        ("Training curve", _img(_training_curve(registry, v1.run_id))),
        ("Reliability diagram (each version on its own test split, calibrated)",
         "".join(f"<h3>v{v.version}</h3>{_reliability(registry, v)}" for v in versions)),
        ("Slices (each version on its own test split)",
         "".join(f"<h3>v{v.version}</h3>{_slices(registry, v)}" for v in versions)),
        ("Drift timeline", _img(_drift_timeline(result.windows))),
        ("Estimated vs realised accuracy", _img(_accuracy_timeline(result.windows))),
        ("Retrain and promotion events", _events(registry, model)),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>driftloop demo"
            f"</title><style>{_STYLE}</style></head><body><h1>driftloop demo: the closed loop"
            f"</h1>{body}</body></html>")


def _img(png: bytes | None, alt: str = "chart") -> str:
    if png is None:
        return "<p>(no data)</p>"
    return f"<img alt='{alt}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _training_curve(registry: Registry, run_id: str | None) -> bytes | None:
    epochs = registry.store.run_metrics(run_id) if run_id else []
    if not epochs:
        return None
    fig = Figure(figsize=(8, 3))
    ax = fig.subplots()
    x = [e["epoch"] for e in epochs]
    for name, style in (("train_loss", "-o"), ("val_loss", "--s")):
        if name in epochs[0]:
            ax.plot(x, [e[name] for e in epochs], style, label=name.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return _png(fig)


def _training_evaluation(registry: Registry, version: Any) -> dict[str, Any] | None:
    """The evaluation its training run stored (on the version's own test split)."""
    found = evaluations(registry.store, registry.artifacts, version)
    mine = [e for e in found if e.report.run_id == version.run_id] or found[-1:]
    return mine[0].body if mine else None


def _reliability(registry: Registry, version: Any) -> str:
    body = _training_evaluation(registry, version)
    sha = body.get("diagram_sha256") if body else None
    if not sha:
        return "<p>(no reliability diagram stored)</p>"
    return _img(registry.artifacts.get_bytes(sha), "reliability diagram")


def _slices(registry: Registry, version: Any) -> str:
    body = _training_evaluation(registry, version)
    report = body.get("slices") if body else None
    if not report:
        return "<p>(no slices)</p>"
    rows = []
    for s in report["slices"]:
        metric = s.get("metric") or {}
        value = "-" if metric.get("value") is None else f"{metric['value']:.3f}"
        flag = "FLAGGED" if s["flagged"] else ("too small" if s["too_small"] else "ok")
        rows.append(f"<tr><td>{html.escape(str(s['column']))}</td>"
                    f"<td>{html.escape(str(s['value']))}</td><td>{s['count']}</td>"
                    f"<td>{value}</td><td class='{'flag' if s['flagged'] else ''}'>{flag}"
                    "</td></tr>")
    return (f"<p>{html.escape(report['metric'])} overall {report['overall']:.3f}</p><table>"
            "<tr><th>column</th><th>slice</th><th>rows</th><th>metric</th><th>status</th></tr>"
            + "".join(rows) + "</table>")


def _drift_timeline(windows: list[dict[str, Any]]) -> bytes | None:
    if not windows:
        return None
    fig = Figure(figsize=(8, 3))
    ax = fig.subplots()
    ids = [w["id"] for w in windows]
    shares = [w["share_drifted"] or 0.0 for w in windows]
    colors = ["#c0392b" if w["drift_detected"] else "#7f8c8d" for w in windows]
    hatches = ["//" if w["drift_detected"] else "" for w in windows]
    for x, y, c, h in zip(ids, shares, colors, hatches, strict=True):
        ax.bar(x, y, color=c, hatch=h, edgecolor="black")
    for w in windows[1:]:
        if w["version"] != windows[windows.index(w) - 1]["version"]:
            ax.axvline(w["id"] - 0.5, color="black", linestyle=":")
            ax.text(w["id"] - 0.4, 0.95, f"v{w['version']}", va="top")
    ax.set_ylim(0, 1)
    ax.set_xlabel("window (hatched = dataset drift)")
    ax.set_ylabel("share of drifted features")
    return _png(fig)


def _accuracy_timeline(windows: list[dict[str, Any]]) -> bytes | None:
    tested = [w for w in windows if (w["estimated"] or {}).get("accuracy")]
    if not tested:
        return None
    fig = Figure(figsize=(8, 3))
    ax = fig.subplots()
    ids = [w["id"] for w in tested]
    est = [w["estimated"]["accuracy"] for w in tested]
    ax.fill_between(ids, [e["low"] for e in est], [e["high"] for e in est], alpha=0.25,
                    label="estimated band (CBPE)")
    ax.plot(ids, [e["value"] for e in est], "-o", label="estimated (no labels)")
    real = [(w["id"], w["realised"]["accuracy"]["value"]) for w in tested
            if (w["realised"] or {}).get("accuracy")]
    if real:
        ax.plot(*zip(*real, strict=True), "--s", label="realised (feedback labels)")
    ax.set_xlabel("window")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower left")
    return _png(fig)


def _events(registry: Registry, model: str) -> str:
    rows: list[tuple[Any, str]] = []
    for run in registry.store.list_loop_runs(model):
        trigger = (run.trigger or {}).get("message", "-")
        gates = run.details.get("gates") or []
        failed = [g["name"] for g in gates if not g["passed"]]
        gate_text = ("-" if not gates else "all passed" if not failed
                     else "failed: " + ", ".join(failed))
        rows.append((run.started_at,
                     f"<tr><td>{run.started_at:%H:%M:%S}</td><td>loop: {run.outcome}</td>"
                     f"<td>{html.escape(trigger)}</td><td>{run.champion_version or '-'}</td>"
                     f"<td>{run.challenger_version or '-'}</td><td>{gate_text}</td></tr>"))
    for move in registry.moves(model):
        rows.append((move.at,
                     f"<tr><td>{move.at:%H:%M:%S}</td><td>{move.action} → {move.alias}</td>"
                     f"<td>{html.escape(move.reason or '')}</td><td>-</td>"
                     f"<td>v{move.to_version}</td>"
                     f"<td>{'forced' if move.forced else 'gated'}</td></tr>"))
    rows.sort(key=lambda pair: pair[0])
    return ("<table><tr><th>time (UTC)</th><th>event</th><th>why</th><th>champion</th>"
            "<th>challenger / to</th><th>gates</th></tr>" + "".join(r for _, r in rows)
            + "</table>")


__all__ = ["write_report"]
