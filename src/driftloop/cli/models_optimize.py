"""``driftloop models optimize NAME VERSION``: measure the runtimes here, recommend, ``--apply``.

The measuring and the decision are :mod:`driftloop.loop.optimize`'s; the ``models`` group and
the order of its commands are in :mod:`driftloop.cli.models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli.output import JsonFlag, emit_json, err, open_registry, out, table, version_number


def models_optimize_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version (3 or v3).")],
    apply: Annotated[bool, typer.Option(
        "--apply", help="Record the recommended runtime for the version (audited); `driftloop "
        "serve` uses it while serve.runtime is auto.")] = False,
    max_drop: Annotated[float | None, typer.Option(
        help="Largest metric drop against fp32 allowed (upper bound of the paired interval; "
        "default serve.optimize_max_drop).")] = None,
    metric: Annotated[str | None, typer.Option(
        help="Metric compared: accuracy (classifiers), rmse or mae (regression).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Rows to measure on (CSV/Parquet with the target); default the version's test "
        "split from its run folder.")] = None,
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds.")] = 30,
    batch: Annotated[int, typer.Option(help="Rows of the large batch.")] = 1024,
    reason: Annotated[str | None, typer.Option(help="Why, with --apply (audited).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Measure each runtime (fp32, int8, ONNX, ONNX int8) here; recommend the fastest within
    the accuracy bound."""
    from driftloop.loop.optimize import apply_recommendation, optimize_version

    number = version_number(version)
    with open_registry() as registry:
        record = registry.get(name, number)
        if not json_out:
            err.print(f"measuring runtimes of {name} v{number} ({rounds} rounds)…")
        report = optimize_version(registry, record, max_drop=max_drop, metric=metric,
                                  data=data, rounds=rounds, batch=batch)
        if apply:
            report["applied"] = apply_recommendation(registry, record, report, reason=reason)
    if json_out:
        emit_json(report)
        return
    out.print(_table(report))
    out.print(f"recommended: [bold]{report['recommended']}[/] ({report['criterion']})")
    for r in report["runtimes"]:
        for why in r["refused"]:
            out.print(f"  {r['name']} refused: {why}", markup=False)
    if apply:
        out.print(f"applied {report['applied']['runtime']} to {name} v{number} (audit entry "
                  f"{report['applied']['audit_seq']})")


def _table(report: dict[str, Any]) -> Any:
    metric = report["metric"]
    rows = table("runtime", "p50 µs", "p99 µs", "latency × fp32", f"rows/s @{report['batch']}",
                 "bulk × fp32", "size bytes", metric, "drop ≤", "eligible",
                 title=f"{report['model']} v{report['version']} on {report['rows']} rows of the "
                 f"{report['data']} (max drop {report['max_drop']:g})",
                 right=("p50 µs", "p99 µs", f"rows/s @{report['batch']}", "size bytes"))
    for r in report["runtimes"]:
        m = r["metric"]
        rows.add_row(
            r["name"], f"{r['latency_b1_us']['p50']:.1f}", f"{r['latency_b1_us']['p99']:.1f}",
            _ratio(r["latency_ratio"]), f"{r['throughput_rows_per_s']:,.0f}",
            _ratio(r["large_batch_ratio"]), f"{r['size_bytes']:,}",
            f"{m['value']:.4f} [{_num(m['low'])}, {_num(m['high'])}]",
            f"{r['drop_upper_bound']:.4f}",
            "baseline" if r["name"] == report["baseline"] else "yes" if r["eligible"] else "no",
        )
    return rows


def _ratio(interval: dict[str, Any]) -> str:
    return f"{interval['value']:.2f} [{_num(interval['low'], 2)}, {_num(interval['high'], 2)}]"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


__all__ = ["models_optimize_cmd"]
