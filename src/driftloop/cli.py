"""``driftloop …``: a thin shell over the public functions of each stage; no logic lives here.

Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from driftloop import __version__
from driftloop.config import Settings
from driftloop.errors import CheckFailed, DriftloopError, UsageError

app = typer.Typer(
    name="driftloop",
    help="Train PyTorch models data-parallel and keep them healthy after deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Check data before training on it.", no_args_is_help=True)
models_app = typer.Typer(help="List and inspect registered model versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


def _emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=str, allow_nan=False) + "\n")


def _settings(**overrides: Any) -> Settings:
    return Settings.load(overrides={k: v for k, v in overrides.items() if v is not None})


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"driftloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Train PyTorch models data-parallel and keep them healthy after deployment."""


@app.command("train")
def train_cmd(
    data: Annotated[Path | None, typer.Argument(help="CSV, Parquet or NPZ file.")] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict (tables).")] = None,
    model: Annotated[str, typer.Option(help="auto, mlp, cnn, gru or module:function.")] = "auto",
    workers: Annotated[int | None, typer.Option(help="Data-parallel processes.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size per worker.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate at the reference batch.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of split, init and order.")] = None,
    name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression.")] = None,
    time_column: Annotated[str | None, typer.Option(help="Split by this time column.")] = None,
    group_column: Annotated[str | None, typer.Option(help="Keep groups in one split.")] = None,
    input_kind: Annotated[str | None, typer.Option(help="table, image or sequence.")] = None,
    accumulate: Annotated[
        int | None, typer.Option(help="Micro-batches per optimiser step.")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32, bf16 or fp16 (GPU).")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Checkpoint every K optimiser steps (and each epoch).")
    ] = None,
    consistency_every: Annotated[
        int | None, typer.Option(help="Compare ranks' parameters every N steps (0: epoch).")
    ] = None,
    collective_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for a rank before failing.")
    ] = None,
    max_restarts: Annotated[
        int | None, typer.Option(help="Restart the worker group this often on failure.")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue a stopped run from its newest checkpoint.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Train a model data-parallel and register it as a new version.

    DATA is required unless --resume RUN_ID continues a stopped run.
    """
    from driftloop.train.launcher import train

    result = train(
        data, target, model=model, workers=workers, epochs=epochs, batch_size=batch_size,
        lr=lr, seed=seed, name=name, task=task, time_column=time_column,
        group_column=group_column, input_kind=input_kind, accumulate=accumulate,
        precision=precision, checkpoint_every=checkpoint_every,
        consistency_every=consistency_every, collective_timeout=collective_timeout,
        max_restarts=max_restarts, resume=resume, settings=_settings(), progress=not json_out,
    )
    if json_out:
        _emit_json(result.to_json())
        return
    for line in result.warnings:
        err.print(f"[yellow]warning:[/] {line}")
    _print_training(result)


def _print_training(result: Any) -> None:
    table = Table(title=f"{result.model} v{result.version} — test split", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)
    out.print(
        f"run [bold]{result.run_id}[/] · {result.world_size} workers · "
        f"{result.samples_per_s:,.0f} samples/s · {result.duration_s:.1f} s · best epoch "
        f"{result.best_epoch + 1} of {result.epochs_run}"
    )
    out.print(f"weights sha256 {result.weights_sha256}")
    out.print(f"run folder {result.run_dir}")


@data_app.command("check")
def data_check_cmd(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file.")],
    target: Annotated[str, typer.Option(help="Column to predict.")],
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression.")] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit 1 when a finding is at least this severe.")
    ] = FailOn.error,
    json_out: JsonFlag = False,
) -> None:
    """Check a table for problems that would hurt a model trained on it."""
    from driftloop.data.check import check_data

    report = check_data(data, target, task=task)  # type: ignore[arg-type]
    if json_out:
        _emit_json(report.to_json())
    else:
        _print_check(report)
    failing = {"error"} if fail_on is FailOn.error else {"error", "warning"}
    if any(f.severity in failing for f in report.findings):
        raise CheckFailed(f"data check found {fail_on.value}-level findings in {data}")


def _print_check(report: Any) -> None:
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
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for f in report.findings:
        out.print(f"  [{styles[f.severity]}]{f.severity}[/] {f.message}")
        if f.action:
            out.print(f"      → {f.action}")
    if not report.findings:
        out.print("  no findings")


def _parse_ref(ref: str) -> tuple[str, int | None]:
    name, _, version = ref.partition(":")
    if not version:
        return name, None
    try:
        return name, int(version.lstrip("v"))
    except ValueError:
        raise UsageError(
            f"'{ref}' is not NAME or NAME:VERSION (VERSION a whole number, e.g. credit:3)."
        ) from None


@models_app.command("list")
def models_list_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List registered model versions."""
    from driftloop.registry import Registry

    versions = Registry.open(_settings()).versions(name)
    if json_out:
        _emit_json([v.__dict__ for v in versions])
        return
    table = Table(show_header=True)
    for col in ("model", "version", "task", "created", "key metric", "size", "run"):
        table.add_column(col)
    for v in versions:
        key = "rmse" if v.task == "regression" else "accuracy"
        metric = v.metrics.get(key)
        table.add_row(
            v.model_name, str(v.version), v.task, v.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{key} {metric:.4f}" if metric is not None else "-", f"{v.size_bytes / 1024:.0f} KiB",
            (v.run_id or "-")[:12],
        )
    out.print(table if versions else "no model versions yet — run `driftloop train`.")


@models_app.command("show")
def models_show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (latest when omitted).")],
    json_out: JsonFlag = False,
) -> None:
    """Show one model version: metrics, run, data fingerprints and artifacts."""
    from driftloop.registry import Registry

    registry = Registry.open(_settings())
    name, version = _parse_ref(ref)
    record = registry.get(name, version)
    run = registry.store.get_run(record.run_id) if record.run_id else None
    datasets = registry.store.run_datasets(record.run_id) if record.run_id else {}
    info = {
        "version": record.__dict__,
        "run": run.__dict__ if run else None,
        "datasets": {role: d.__dict__ for role, d in datasets.items()},
    }
    if json_out:
        _emit_json(info)
        return
    out.print(f"[bold]{record.model_name} v{record.version}[/] · {record.task} · "
              f"{record.input_kind} · created {record.created_at:%Y-%m-%d %H:%M}")
    for key, value in record.metrics.items():
        out.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    out.print(f"  weights {record.weights_sha256}\n  bundle  {record.bundle_sha256}")
    if run:
        out.print(f"  run {run.id} · {run.world_size} workers · {run.status} · "
                  f"{(run.samples_per_s or 0):,.0f} samples/s · {run.run_dir}")
    for role, d in datasets.items():
        out.print(f"  data {role:6s} {d.rows:>7} rows · {d.fingerprint[:16]} · {d.source_uri}")


@app.command("demo")
def demo_cmd(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its data.")] = Path(
        "driftloop-demo"
    ),
    rows: Annotated[int, typer.Option(min=500, help="Rows of generated credit data.")] = 20_000,
    workers: Annotated[int, typer.Option(min=1, help="Data-parallel processes.")] = 2,
    json_out: JsonFlag = False,
) -> None:
    """The main job: check data, train data-parallel, evaluate, register, say where it went."""
    from driftloop.loop.demo import run_demo

    def say(step: str, payload: Any) -> None:
        if json_out:
            return
        if step == "check-done":
            _print_check(payload)
        else:
            out.print(f"[bold cyan]▸ {step}[/] {payload}")

    settings = _settings()
    result = run_demo(folder, rows=rows, workers=workers, settings=settings,
                      progress=not json_out, on_step=say)
    if json_out:
        _emit_json(result.to_json())
        return
    _print_training(result.training)
    out.print("[bold cyan]▸ where everything went[/]")
    out.print(f"  data       {result.data_path}")
    out.print(f"  store      {result.store_url}")
    out.print(f"  artifacts  {result.artifacts_url}")
    out.print(f"  run folder {result.training.run_dir}")
    out.print(f"  next: driftloop models list · driftloop models show "
              f"{result.training.model}:{result.training.version}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI and turn driftloop's errors into messages and exit codes.

    Usage errors of the command line itself (unknown flag, missing argument) are reported by
    typer, which exits 2.
    """
    try:
        app(args=argv)
    except DriftloopError as exc:
        err.print(f"[red]error:[/] {exc}" if exc.exit_code != 1 else f"[yellow]{exc}[/]")
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
