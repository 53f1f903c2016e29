"""``driftloop data check``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from driftloop.cli.output import JsonFlag, Typer, emit_json, open_registry, out, plain, settings
from driftloop.errors import CheckFailed

app = Typer(help="Check data before training on it.", no_args_is_help=True)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


@app.command("check")
def data_check_cmd(
    data: Annotated[str, typer.Argument(help="CSV or Parquet file, or its URL (s3://…).")],
    target: Annotated[str, typer.Option(help="Column to predict.")],
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression.")] = None,
    against: Annotated[
        str | None, typer.Option(help="Another table (e.g. the test set) to find leaks in.")
    ] = None,
    group_column: Annotated[
        str | None, typer.Option(help="Values of this column must not be in both tables.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit 1 when a finding is at least this severe.")
    ] = FailOn.error,
    deep: Annotated[
        bool, typer.Option("--deep", help="Also train a quick first-pass model and screen its "
                           "last hidden layer for a planted backdoor (classification).")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Check a table for problems that would hurt a model trained on it.

    Records the dataset (fingerprint, source, rows, schema) and the report in the store.
    With --deep, a backdoor finding (rows planted with a trigger and a label) is an error.
    """
    from driftloop.data.check import check_data
    from driftloop.loop.deep_check import check_data_deep
    current = settings()
    with open_registry(current) as registry:
        report = (check_data_deep if deep else check_data)(
            data, target, against, task=task, group_column=group_column,  # type: ignore[arg-type]
            settings=current, store=registry.store, artifacts=registry.artifacts,
        )
    if json_out:
        emit_json(report.to_json())
    else:
        print_check(report)
    if report.failing(fail_on.value):
        raise CheckFailed(f"data check found {fail_on.value}-level findings in {data}")


def print_check(report: Any) -> None:
    """A data check report for people (also the demo's)."""
    out.print(
        f"[bold]{report.rows}[/] rows · task [bold]{report.task}[/] · target "
        f"'{report.target}' · {len(report.columns)} features · fingerprint "
        f"{report.fingerprint[:12]}"
    )
    kinds: dict[str, list[str]] = {}
    for col, kind in report.columns.items():
        kinds.setdefault(kind, []).append(col)
    for kind, cols in kinds.items():
        out.print(f"  {kind}: {', '.join(cols)}")
    plain(f"  source {report.source_uri}")
    if getattr(report, "against", None):
        plain(f"  against {report.against['source']} ({report.against['rows']} rows)")
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for f in report.findings:
        out.print(f"  [{styles[f.severity]}]{f.severity:<7}[/] {f.check}: ", end="")
        plain(f.message)
        if f.advice:
            plain(f"      → {f.advice}")
    if not report.findings:
        out.print("  no findings")
