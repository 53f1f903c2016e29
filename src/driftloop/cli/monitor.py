"""``driftloop drift`` and ``driftloop monitor``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli.output import JsonFlag, emit_json, out, plain, settings, table
from driftloop.errors import CheckFailed, UsageError


class FailOn(str, Enum):
    feature = "feature"
    dataset = "dataset"


def drift_cmd(
    reference: Annotated[str, typer.Option(
        "--reference", help="CSV/Parquet file, or MODEL:VERSION (its stored training profile).")],
    current: Annotated[Path, typer.Option("--current", help="CSV or Parquet file to compare.")],
    target: Annotated[
        str | None, typer.Option(help="Column left out of the comparison (the label).")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as an HTML page.")
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when drift is found (see --fail-on).")
    ] = False,
    fail_on: Annotated[FailOn, typer.Option(
        "--fail-on", help="With --fail-on-drift: 'feature' fails when any feature (or the "
        "model's output) drifts; 'dataset' only when the dataset-level verdict does (the "
        "share rule).")] = FailOn.feature,
    json_out: JsonFlag = False,
) -> None:
    """Compare CURRENT data with a REFERENCE feature by feature (and the model's outputs).

    A feature drifts when its corrected p-value is below alpha AND its effect passes a floor.
    """
    from driftloop.monitor.drift import drift

    report = drift(reference, current, target=target, settings=settings())
    if html is not None:
        try:
            html.write_text(report.to_html(), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {html}: {exc.strerror}. Check the folder.") from None
    if json_out:
        emit_json(report.to_dict())
    else:
        _print_drift(report, html)
    if fail_on_drift and report.fails(fail_on.value):
        drifted = ", ".join(report.drifted) or "the model's output"
        raise CheckFailed(f"drift detected in {drifted} ({report.headline()})"
                          if fail_on is FailOn.feature else
                          f"dataset drift detected ({report.headline()})")


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def _print_drift(report: Any, html: Path | None) -> None:
    from rich.text import Text

    features = table("feature", "kind", "test", "statistic", "p", "p adjusted", "effect",
                     "missing rate", "status", right=("statistic", "p", "p adjusted"), fold=True)
    styles = {"drift": "bold red", "ok": "green", "not_testable": "dim"}
    outputs = [{**o, "kind": "output"} for o in report.prediction.get("outputs", [])]
    notes = []
    for f in [*(f.to_dict() for f in report.features), *outputs]:
        missing = f["missing"]
        rates = f"{_num(missing['reference_rate'])} → {_num(missing['current_rate'])}" + (
            " drift" if missing["drifted"] else "")
        status = {"drift": "DRIFT", "ok": "ok", "not_testable": "not testable"}[f["status"]]
        if f["reason"]:
            notes.append(f"[{len(notes) + 1}] {f['name']}: {f['reason']}")
            status += f" [{len(notes)}]"
        features.add_row(
            Text(f["name"]), f["kind"], f["test"], _num(f["statistic"]), _num(f["p_value"]),
            _num(f["p_value_adjusted"]), f"{_num(f['effect_size'])} {f['effect_metric']}",
            rates, Text(status, style=styles[f["status"]]),
        )
    out.print(features)
    for note in notes:
        plain(note)
    plain(report.headline())
    if report.prediction.get("reason"):
        plain(f"prediction: {report.prediction['reason']}")
    if html is not None:
        plain(f"HTML report written to {html}")


def monitor_cmd(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    window: Annotated[
        str | None, typer.Option(help="Rows per window (1000) or a duration (1h, 15m).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Process the prediction log since the last run into windows: drift, estimated and
    realised performance, concept drift; store them and raise alerts."""
    from driftloop.monitor.windows import monitor

    result = monitor(model, window=window, settings=settings())
    if json_out:
        emit_json(result.to_json())
        return
    _print_monitor(result)


def _print_monitor(result: Any) -> None:
    if not result.windows:
        out.print(f"no new window for {result.model} ({result.pending_rows} row(s) wait for a "
                  "full window)")
    else:
        windows = table("window", "version", "rows", "status", "drift", "share drifted",
                        "est. accuracy", "realised accuracy",
                        title=f"{result.model}: {len(result.windows)} new window(s)")
        for w in result.windows:
            est = (w.estimated or {}).get("accuracy") or {}
            real = (w.realised or {}).get("accuracy") or {}
            windows.add_row(
                str(w.id), str(w.version), str(w.rows), w.status,
                "DRIFT" if w.drift_detected else "no",
                "-" if w.share_drifted is None else f"{w.share_drifted:.2f}",
                "-" if not est else f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]",
                "-" if not real else f"{real['value']:.3f} (n={w.realised['labelled']})",
            )
        out.print(windows)
        if result.pending_rows:
            out.print(f"{result.pending_rows} row(s) wait for a full window")
    for report in result.skew:
        _print_skew(report)
    for alert in result.alerts:
        failed = [d["url"] for d in alert.deliveries if not d.get("ok")]
        plain(f"ALERT {alert.kind}: {alert.message}")
        if failed:
            plain(f"  webhook delivery failed: {', '.join(failed)} (stored; monitoring "
                  "goes on)")


def _print_skew(report: Any) -> None:
    from rich.text import Text

    skew = table("feature", "view", "rows", "differing", "share (interval)", "status",
                 right=("rows", "differing"),
                 title=f"{report.model} v{report.version}: training-serving skew "
                       f"(flagged when the lower bound > {report.max_share})")
    for f in report.features:
        share = ("-" if f.share.low is None else
                 f"{f.share.value:.3f} [{f.share.low:.3f}, {f.share.high:.3f}]")
        skew.add_row(f.feature, f.view, str(f.compared), str(f.differing), share,
                     Text("SKEW", style="bold red") if f.flagged else Text("ok", style="green"))
    if report.features:
        out.print(skew)
    for note in report.notes:
        plain(f"skew: {note}")
