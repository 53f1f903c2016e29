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
from rich.markup import escape
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
models_app = typer.Typer(
    help="List, inspect, gate, promote and roll back model versions.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
audit_app = typer.Typer(help="Read and verify the hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

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
    ignore_check: Annotated[
        list[str] | None,
        typer.Option(help="Train despite this data check's errors (repeatable; recorded)."),
    ] = None,
    allow_pii: Annotated[
        list[str] | None,
        typer.Option(help="Keep this column found to hold personal data (repeatable; recorded)."),
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
        ignore_checks=ignore_check or (), allow_pii=allow_pii or (),
    )
    if json_out:
        _emit_json(result.to_json())
        return
    for line in result.warnings:
        err.print(f"[yellow]warning:[/] {line}")
    _print_training(result)


def _print_training(result: Any) -> None:
    if getattr(result, "evaluation", None):
        from driftloop.evaluate.report import EvaluationReport

        out.print(f"[bold]{result.model} v{result.version} — test split[/]")
        out.print(EvaluationReport.from_json(result.evaluation).summary(), markup=False,
                  highlight=False)
    else:
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
    against: Annotated[
        Path | None, typer.Option(help="Another table (e.g. the test set) to find leaks in.")
    ] = None,
    group_column: Annotated[
        str | None, typer.Option(help="Values of this column must not be in both tables.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit 1 when a finding is at least this severe.")
    ] = FailOn.error,
    json_out: JsonFlag = False,
) -> None:
    """Check a table for problems that would hurt a model trained on it.

    Records the dataset (fingerprint, source, rows, schema) and the report in the store.
    """
    from driftloop.data.check import check_data
    from driftloop.registry import Registry

    settings = _settings()
    registry = Registry.open(settings)
    report = check_data(
        data, target, against, task=task, group_column=group_column,  # type: ignore[arg-type]
        settings=settings, store=registry.store, artifacts=registry.artifacts,
    )
    if json_out:
        _emit_json(report.to_json())
    else:
        _print_check(report)
    if report.failing(fail_on.value):
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
    out.print(f"  source {report.source_uri}", markup=False, highlight=False)
    if getattr(report, "against", None):
        out.print(f"  against {report.against['source']} ({report.against['rows']} rows)",
                  markup=False, highlight=False)
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for f in report.findings:
        out.print(f"  [{styles[f.severity]}]{f.severity:<7}[/] {f.check}: ", end="")
        out.print(f.message, markup=False, highlight=False)
        if f.advice:
            out.print(f"      → {f.advice}", markup=False, highlight=False)
    if not report.findings:
        out.print("  no findings")


@app.command("evaluate")
def evaluate_cmd(
    ref: Annotated[str, typer.Argument(metavar="MODEL[:VERSION]", help="Registered model.")],
    data: Annotated[Path, typer.Argument(help="CSV, Parquet (with the target) or NPZ file.")],
    slices: Annotated[
        str | None, typer.Option(help="Columns to evaluate per value/quantile bin: COL,COL.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column if renamed.")] = None,
    diagram: Annotated[
        Path | None, typer.Option(help="Also write the reliability diagram PNG here.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Evaluate a model version on DATA: metrics with 95% intervals, calibration, slices.

    The report is stored as an artifact linked to the version and the data's fingerprint.
    """
    from driftloop.evaluate.report import evaluate

    columns = [c.strip() for c in (slices or "").split(",") if c.strip()]
    report = evaluate(ref, data, slices=columns, target=target, settings=_settings())
    if diagram is not None:
        report.write_diagram(diagram)
    if json_out:
        _emit_json(report.to_json())
        return
    out.print(report.summary(), markup=False, highlight=False)
    out.print(f"report {report.artifact_sha256}" + (
        f" · diagram {report.diagram_sha256}" if report.diagram_sha256 else ""))
    if diagram is not None:
        out.print(f"reliability diagram written to {diagram}")


@app.command("drift")
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
        bool, typer.Option("--fail-on-drift", help="Exit 1 when drift is detected.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Compare CURRENT data with a REFERENCE feature by feature (and the model's outputs).

    A feature drifts when its corrected p-value is below alpha AND its effect passes a floor.
    """
    from driftloop.monitor.drift import drift

    report = drift(reference, current, target=target, settings=_settings())
    if html is not None:
        try:
            html.write_text(report.to_html(), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {html}: {exc.strerror}. Check the folder.") from None
    if json_out:
        _emit_json(report.to_dict())
    else:
        _print_drift(report, html)
    if fail_on_drift and report.drift_detected:
        raise CheckFailed(f"drift detected ({report.headline()})")


def _print_drift(report: Any, html: Path | None) -> None:
    from rich.text import Text

    def num(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.1e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"

    table = Table(show_header=True)
    for col in ("feature", "kind", "test", "statistic", "p", "p adjusted", "effect",
                "missing rate", "status"):
        table.add_column(col, overflow="fold", justify="right" if col in (
            "statistic", "p", "p adjusted") else "left")
    styles = {"drift": "bold red", "ok": "green", "not_testable": "dim"}
    outputs = [{**o, "kind": "output"} for o in report.prediction.get("outputs", [])]
    notes = []
    for f in [*(f.to_dict() for f in report.features), *outputs]:
        missing = f["missing"]
        rates = f"{num(missing['reference_rate'])} → {num(missing['current_rate'])}" + (
            " drift" if missing["drifted"] else "")
        status = {"drift": "DRIFT", "ok": "ok", "not_testable": "not testable"}[f["status"]]
        if f["reason"]:
            notes.append(f"[{len(notes) + 1}] {f['name']}: {f['reason']}")
            status += f" [{len(notes)}]"
        table.add_row(
            Text(f["name"]), f["kind"], f["test"], num(f["statistic"]), num(f["p_value"]),
            num(f["p_value_adjusted"]), f"{num(f['effect_size'])} {f['effect_metric']}",
            rates, Text(status, style=styles[f["status"]]),
        )
    out.print(table)
    for note in notes:
        out.print(note, markup=False, highlight=False)
    out.print(report.headline(), markup=False, highlight=False)
    if report.prediction.get("reason"):
        out.print(f"prediction: {report.prediction['reason']}", markup=False, highlight=False)
    if html is not None:
        out.print(f"HTML report written to {html}", markup=False, highlight=False)


@models_app.command("list")
def models_list_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List registered model versions."""
    from driftloop.registry import Registry

    registry = Registry.open(_settings())
    versions = [registry.describe(v) for v in registry.versions(name)]
    if json_out:
        _emit_json(versions)
        return
    table = Table(show_header=True)
    for col in ("model", "version", "aliases", "task", "created", "key metric", "ECE",
                "worst slice", "size", "train data"):
        table.add_column(col)
    for v in versions:
        key = "rmse" if v["task"] == "regression" else "accuracy"
        metric = v["metrics"].get(key)
        table.add_row(
            v["model_name"], str(v["version"]), ", ".join(v["aliases"]) or "-", v["task"],
            v["created_at"].strftime("%Y-%m-%d %H:%M"),
            f"{key} {metric:.4f}" if metric is not None else "-",
            f"{v['ece']:.4f}" if v["ece"] is not None else "-", _worst_slice(v["worst_slice"]),
            f"{v['size_bytes'] / 1024:.0f} KiB", v["fingerprints"].get("train", "-")[:12],
        )
    out.print(table if versions else "no model versions yet — run `driftloop train`.")


def _worst_slice(worst: dict[str, Any] | None) -> str:
    if not worst:
        return "-"
    gap = f" ({worst['gap']:+.3f})" if worst.get("gap") is not None else ""
    flag = " flagged" if worst.get("flagged") else ""
    return f"{worst['column']} = {worst['value']}{gap}{flag}"


@models_app.command("show")
def models_show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (latest when omitted).")],
    json_out: JsonFlag = False,
) -> None:
    """Show one model version: metrics, run, data fingerprints and artifacts."""
    from driftloop.registry import Registry

    registry = Registry.open(_settings())
    from driftloop.evaluate.report import parse_ref

    name, version = parse_ref(ref)
    record = registry.get(name, version)
    run = registry.store.get_run(record.run_id) if record.run_id else None
    datasets = registry.store.run_datasets(record.run_id) if record.run_id else {}
    described = registry.describe(record)
    info = {
        "version": record.__dict__,
        "run": run.__dict__ if run else None,
        "datasets": {role: d.__dict__ for role, d in datasets.items()},
        "aliases": described["aliases"],
        "ece": described["ece"],
        "worst_slice": described["worst_slice"],
        "evaluation_report": described["evaluation_report"],
    }
    if json_out:
        _emit_json(info)
        return
    out.print(f"[bold]{record.model_name} v{record.version}[/] · {record.task} · "
              f"{record.input_kind} · created {record.created_at:%Y-%m-%d %H:%M}")
    out.print(f"  aliases: {', '.join(described['aliases']) or 'none'}")
    if described["ece"] is not None:
        out.print(f"  ECE (calibrated): {described['ece']:.4f}")
    out.print(f"  worst slice: {_worst_slice(described['worst_slice'])}", markup=False)
    for key, value in record.metrics.items():
        out.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    out.print(f"  weights {record.weights_sha256}\n  bundle  {record.bundle_sha256}")
    if run:
        out.print(f"  run {run.id} · {run.world_size} workers · {run.status} · "
                  f"{(run.samples_per_s or 0):,.0f} samples/s · {run.run_dir}")
    for role, d in datasets.items():
        out.print(f"  data {role:6s} {d.rows:>7} rows · {d.fingerprint[:16]} · {d.source_uri}")


def _version_number(text: str) -> int:
    try:
        return int(text.lstrip("v"))
    except ValueError:
        raise UsageError(f"VERSION '{text}' is not a whole number (e.g. 3 or v3).") from None


class CardFormat(str, Enum):
    md = "md"
    html = "html"
    json = "json"


@models_app.command("promote")
def models_promote_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote (3 or v3).")],
    to: Annotated[str, typer.Option("--to", help="Alias, e.g. production or staging.")],
    reason: Annotated[str | None, typer.Option(help="Why (audited; no personal data).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote despite failed gates (needs --reason).")
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Evaluate candidate and holder on this data first.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Point an alias at a version if every promotion gate passes (exit 1 when refused)."""
    from driftloop.registry import GateRefused, Registry

    registry = Registry.open(_settings())
    try:
        result = registry.promote(name, _version_number(version), to=to, reason=reason,
                                  actor=actor, force=force, data=data)
    except GateRefused as exc:
        if json_out:
            _emit_json({"moved": False, "forced": False, "move": None,
                        "gates": exc.report.to_json()})
        raise
    if json_out:
        _emit_json(result.to_json())
        return
    out.print(result.gates.summary(), markup=False, highlight=False)
    if result.move is None:
        out.print(f"{name} v{result.gates.version} already holds {to}; nothing moved.")
        return
    m = result.move
    before = f"v{m.from_version}" if m.from_version is not None else "nobody"
    note = " [yellow](forced: failed gates overridden, audited)[/]" if result.forced else ""
    out.print(f"[bold]{name}@{m.alias}[/]: {before} → v{m.to_version} (audit entry "
              f"{m.audit_seq}){note}")


@models_app.command("rollback")
def models_rollback_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to roll back.")],
    reason: Annotated[str | None, typer.Option(help="Why (audited; no personal data).")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Point an alias back at the version that held it before the current one."""
    from driftloop.registry import Registry

    move = Registry.open(_settings()).rollback(name, alias, reason=reason, actor=actor)
    if json_out:
        _emit_json(move.__dict__)
        return
    out.print(f"[bold]{name}@{move.alias}[/]: v{move.from_version} → v{move.to_version} "
              f"(rolled back; audit entry {move.audit_seq})")


@models_app.command("deactivate")
def models_deactivate_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why it is taken out of service (audited; no "
                                         "personal data).")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to remove.")] = "production",
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Take a model out of service: remove its alias so servers answer 503 (audited).

    `driftloop models promote NAME VERSION --to ALIAS` restores it (gated).
    """
    from driftloop.registry import Registry
    from driftloop.registry.aliases import deactivate

    move = deactivate(Registry.open(_settings()), name, alias, reason=reason, actor=actor)
    if json_out:
        _emit_json(move.__dict__)
        return
    out.print(f"[bold]{name}@{move.alias}[/]: v{move.to_version} → nothing (deactivated; audit "
              f"entry {move.audit_seq}). Servers answer 503 from their next alias check; "
              f"restore with `driftloop models promote {name} VERSION --to {move.alias}`.",
              markup=False, highlight=False)


@models_app.command("gate")
def models_gate_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Candidate version (3 or v3).")],
    to: Annotated[str, typer.Option("--to", help="Alias it would be promoted to.")],
    data: Annotated[
        Path | None, typer.Option(help="Evaluate candidate and holder on this data first.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the promotion gates without promoting (exit 1 when one fails), e.g. in CI."""
    from driftloop.registry import Registry

    report = Registry.open(_settings()).gate(name, _version_number(version), to=to, data=data)
    if json_out:
        _emit_json(report.to_json())
    else:
        out.print(report.summary(), markup=False, highlight=False)
    if not report.passed:
        raise CheckFailed(f"{len(report.failed)} gate(s) failed: "
                          + ", ".join(r.name for r in report.failed))


@models_app.command("lineage")
def models_lineage_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(help="Version (latest when omitted).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Where a version came from: run, datasets, parents, reports, alias moves, audit."""
    from driftloop.registry import Registry

    found = Registry.open(_settings()).lineage(
        name, None if version is None else _version_number(version))
    if json_out:
        _emit_json(found.to_json())
        return
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    v, run = found.version, found.run
    say(f"{v.model_name} v{v.version} · {v.task} · {v.input_kind} · created "
        f"{v.created_at:%Y-%m-%d %H:%M} · weights {v.weights_sha256[:16]}")
    if run is not None:
        say(f"  run {run.id} · {run.status} · world size {run.world_size} · code commit "
            f"{run.git_commit or 'unknown'}")
        say("  params " + ", ".join(f"{k}={run.params[k]}" for k in sorted(run.params)))
        say("  packages " + ", ".join(f"{k} {run.package_versions[k]}"
                                     for k in sorted(run.package_versions)))
    for role, d in found.datasets.items():
        say(f"  data {role:6s} {d.rows:>7} rows · {d.fingerprint[:16]} · {d.source_uri}")
    chain = " ← ".join(f"v{a.version}" for a in found.ancestors)
    say(f"  retrained from {chain}" if chain else "  retrained from: no parent")
    if found.children:
        say("  retrained into " + ", ".join(f"v{c.version}" for c in found.children))
    for r in found.reports:
        say(f"  report {r.kind} {r.artifact_sha256[:16]} on {r.dataset_fingerprint[:16]} · "
            f"{r.created_at:%Y-%m-%d %H:%M}")
    say(f"  aliases now: {', '.join(found.aliases) or 'none'}")
    for m in found.moves:
        gates = m.gates or {}
        verdict = ("forced past " + ", ".join(gates.get("failed", [])) if m.forced
                   else "gates passed" if gates.get("passed") else m.action)
        say(f"  move {m.at:%Y-%m-%d %H:%M} {m.action} {m.alias}: "
            f"{'v' + str(m.from_version) if m.from_version else 'nobody'} → v{m.to_version} by "
            f"{m.actor} · {verdict} · {m.reason or 'no reason given'}")
    for e in found.audit:
        say(f"  audit #{e.seq} {e.at:%Y-%m-%d %H:%M} {e.action} {e.subject} by {e.actor}")


@models_app.command("card")
def models_card_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(help="Version (latest when omitted).")] = None,
    format: Annotated[CardFormat, typer.Option("--format", help="md, html or json.")] = (
        CardFormat.md),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=TEXT for a human part, e.g. caveats=... (repeatable)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
) -> None:
    """A model card (Mitchell et al. 2019): facts from the store, text from `card:`/--set."""
    from driftloop.registry import Registry
    from driftloop.registry.card import parse_set

    card = Registry.open(_settings()).card(
        name, None if version is None else _version_number(version), parse_set(set_ or []))
    if format is CardFormat.json:
        text = json.dumps(card.to_json(), indent=1) + "\n"
    else:
        text = card.to_html() if format is CardFormat.html else card.to_markdown()
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    err.print(f"model card written to {output} ({len(card.missing())} item(s) missing)")


@audit_app.command("show")
def audit_show_cmd(
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. credit:v3.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. promote.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Only the newest N entries.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List audit entries, oldest first."""
    from driftloop.registry import Registry

    entries = Registry.open(_settings()).audit.entries(subject=subject, limit=limit,
                                                       action=action)
    if json_out:
        _emit_json([e.__dict__ for e in entries])
        return
    table = Table(show_header=True)
    for col in ("seq", "at (UTC)", "actor", "action", "subject", "details"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject,
                      json.dumps(e.details, default=str)[:160])
    out.print(table if entries else "no audit entries match.")


@audit_app.command("verify")
def audit_verify_cmd(
    anchor: Annotated[
        Path | None, typer.Option(help="Anchor file from `driftloop audit anchor`.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Recompute the hash chain; with --anchor also detect a truncated tail (exit 1 if bad)."""
    from driftloop.registry import Registry
    from driftloop.store import Anchor

    kept = Anchor.read(anchor) if anchor is not None else None
    report = Registry.open(_settings()).audit.verify(kept)
    if json_out:
        _emit_json(report.__dict__)
    elif report.ok:
        out.print(f"[green]ok[/] {report.reason} head {report.head}")
    if not report.ok:
        raise CheckFailed(f"audit log verification failed at entry {report.first_bad_seq}: "
                          f"{report.reason}")


@audit_app.command("anchor")
def audit_anchor_cmd() -> None:
    """Print the newest entry's seq and hash as JSON; keep it elsewhere for `verify --anchor`."""
    from driftloop.registry import Registry

    _emit_json(Registry.open(_settings()).audit.anchor().to_json())


@app.command("demo")
def demo_cmd(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its data and report.")] = Path(
        "driftloop-demo"
    ),
    rows: Annotated[int, typer.Option(min=500, help="Pre-change rows to train on.")] = 6000,
    traffic: Annotated[int, typer.Option(min=1000, help="Post-change rows sent.")] = 4000,
    workers: Annotated[int, typer.Option(min=1, help="Data-parallel processes.")] = 2,
    json_out: JsonFlag = False,
) -> None:
    """The whole closed loop: train data-parallel, serve, send drifting traffic, monitor,
    retrain, gate, promote, hot swap; writes FOLDER/report.html and tells the story."""
    from driftloop.loop.demo import run_demo

    def say(step: str, payload: Any) -> None:
        if json_out:
            return
        if step == "check-done":
            _print_check(payload)
        else:
            out.print(f"[bold cyan]▸ {step}[/] {escape(str(payload))}")

    result = run_demo(folder, rows=rows, traffic_rows=traffic, workers=workers,
                      settings=_settings(), progress=not json_out, on_step=say)
    if json_out:
        _emit_json(result.to_json())
        return
    _print_training(result.training)
    out.print("[bold cyan]▸ the story[/]")
    for line in result.story:
        out.print(f"  {escape(line)}")
    out.print("[bold cyan]▸ where everything went[/]")
    out.print(f"  report     {result.report_path}")
    out.print(f"  data       {result.data_path}")
    out.print(f"  store      {result.store_url}")
    home = Path(result.folder) / ".driftloop"
    out.print(f"  next: DRIFTLOOP_HOME={home} driftloop models lineage "
              f"{result.training.model}")


keys_app = typer.Typer(help="Create, list and revoke API keys of the model server.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


class KeyRole(str, Enum):
    predict = "predict"
    admin = "admin"


class ExportFormat(str, Enum):
    onnx = "onnx"


class RuntimeKind(str, Enum):
    torch = "torch"
    int8 = "int8"
    onnx = "onnx"


@app.command("serve")
def serve_cmd(
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Model to serve (repeat for more); default: every model with a "
        "version under the alias.")] = None,
    alias: Annotated[str | None, typer.Option(help="Alias whose version is served.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    runtime: Annotated[RuntimeKind | None, typer.Option(help="Inference runtime.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(
        help="Samples per batch; 1 turns batching off.")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        help="How long a batch waits for more requests.")] = None,
) -> None:
    """Serve models over HTTP (predict, KServe V2 infer, feedback, health, metrics)."""
    from driftloop.serve.server import serve

    flags = {"alias": alias, "host": host, "port": port, "max_batch_size": max_batch_size,
             "max_latency_ms": max_latency_ms,
             "runtime": None if runtime is None else runtime.value}
    settings = _settings(serve={k: v for k, v in flags.items() if v is not None})
    cfg = settings.serve
    err.print(f"serving on http://{cfg.host}:{cfg.port} (alias {cfg.alias}, runtime "
              f"{cfg.runtime}); docs at /docs")
    serve(settings, model or None, warn=lambda m: err.print(f"[yellow]warning:[/] {m}"))


@app.command("ui")
def ui_cmd(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the dashboard alone (no model needed); `driftloop serve` also serves it at /."""
    from driftloop.ui import serve_ui

    flags = {"host": host, "port": port}
    settings = _settings(serve={k: v for k, v in flags.items() if v is not None})
    err.print(f"dashboard on http://{settings.serve.host}:{settings.serve.port}/")
    serve_ui(settings, warn=lambda m: err.print(f"[yellow]warning:[/] {m}"))


@keys_app.command("create")
def keys_create_cmd(
    name: Annotated[str, typer.Argument(help="What the key is for (a service, not a person).")],
    role: Annotated[KeyRole, typer.Option(help="predict or admin.")] = KeyRole.predict,
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create an API key; its secret is printed once and stored only hashed."""
    from driftloop.registry import Registry
    from driftloop.serve.auth import create_key

    registry = Registry.open(_settings())
    created = create_key(registry.store, registry.audit, name, role.value,
                         actor=actor or registry.actor)
    if json_out:
        _emit_json({"name": name, "role": role.value, "prefix": created.record.prefix,
                    "key": created.secret})
        return
    out.print(f"created {role.value} key [bold]{name}[/] ({created.record.prefix}); "
              "it is shown only now:")
    out.print(created.secret, markup=False, highlight=False)


@keys_app.command("list")
def keys_list_cmd(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """List API keys (names, prefixes and roles; never secrets)."""
    from driftloop.registry import Registry
    from driftloop.serve.auth import list_keys

    keys = list_keys(Registry.open(_settings()).store, include_revoked=all_keys)
    if json_out:
        _emit_json([k.__dict__ for k in keys])
        return
    if not keys:
        out.print("no API keys: predictions need none (admin endpoints are closed).")
    for k in keys:
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        out.print(f"{k.prefix}  {k.role:7s}  {k.name}  created {k.created_at:%Y-%m-%d %H:%M}"
                  f"  {state}")


@keys_app.command("revoke")
def keys_revoke_cmd(
    key: Annotated[str, typer.Argument(help="Name or prefix of the key.")],
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Revoke an API key (audited); servers stop accepting it within seconds."""
    from driftloop.registry import Registry
    from driftloop.serve.auth import revoke_key

    registry = Registry.open(_settings())
    record = revoke_key(registry.store, registry.audit, key, actor=actor or registry.actor)
    if json_out:
        _emit_json(record.__dict__)
        return
    out.print(f"revoked {record.role} key {record.name} ({record.prefix})")


@models_app.command("export")
def models_export_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version (3 or v3).")],
    format: Annotated[ExportFormat, typer.Option("--format", help="Package format.")] = (
        ExportFormat.onnx),
    int8: Annotated[bool, typer.Option("--int8", help="Also write an int8 model.")] = False,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder to write (default NAME-vVERSION-onnx).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Write a self-contained edge package: ONNX model, preprocessing and schema JSON."""
    from driftloop.registry import Registry
    from driftloop.serve.export import export_edge_package

    number = _version_number(version)
    target = out_dir or Path(f"{name}-v{number}-{format.value}")
    package = export_edge_package(Registry.open(_settings()), name, number, target, int8=int8,
                                  overwrite=overwrite)
    if json_out:
        _emit_json(package.to_json())
        return
    out.print(f"wrote {package.path}")
    for file, size in package.files.items():
        out.print(f"  {file:20s} {size:>10,} bytes")


@app.command("monitor")
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

    result = monitor(model, window=window, settings=_settings())
    if json_out:
        _emit_json(result.to_json())
        return
    _print_monitor(result)


def _print_monitor(result: Any) -> None:
    from rich.table import Table

    if not result.windows:
        out.print(f"no new window for {result.model} ({result.pending_rows} row(s) wait for a "
                  "full window)")
    else:
        table = Table(title=f"{result.model}: {len(result.windows)} new window(s)")
        for column in ("window", "version", "rows", "status", "drift", "share drifted",
                       "est. accuracy", "realised accuracy"):
            table.add_column(column)
        for w in result.windows:
            est = (w.estimated or {}).get("accuracy") or {}
            real = (w.realised or {}).get("accuracy") or {}
            table.add_row(
                str(w.id), str(w.version), str(w.rows), w.status,
                "DRIFT" if w.drift_detected else "no",
                "-" if w.share_drifted is None else f"{w.share_drifted:.2f}",
                "-" if not est else f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}]",
                "-" if not real else f"{real['value']:.3f} (n={w.realised['labelled']})",
            )
        out.print(table)
        if result.pending_rows:
            out.print(f"{result.pending_rows} row(s) wait for a full window")
    for alert in result.alerts:
        failed = [d["url"] for d in alert.deliveries if not d.get("ok")]
        out.print(f"ALERT {alert.kind}: {alert.message}", markup=False, highlight=False)
        if failed:
            out.print(f"  webhook delivery failed: {', '.join(failed)} (stored; monitoring "
                      "goes on)", markup=False, highlight=False)


loop_app = typer.Typer(help="The closed loop: monitor, retrain on a trigger, gate, promote.",
                       no_args_is_help=True)
app.add_typer(loop_app, name="loop")


def _say_step(step: str, message: str) -> None:
    out.print(f"[bold]{step:>9}[/bold]  {escape(message)}")


@loop_app.command("run-once")
def loop_run_once_cmd(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    json_out: JsonFlag = False,
) -> None:
    """Monitor, evaluate the triggers, and when one fires: retrain, compare, gate, promote."""
    from driftloop.loop.runner import run_once

    result = run_once(model, settings=_settings(), say=None if json_out else _say_step)
    if json_out:
        _emit_json(result.to_json())


@loop_app.command("watch")
def loop_watch_cmd(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    interval: Annotated[str, typer.Option(help="Time between iterations: 60s, 5m, 1h.")] = "60s",
    iterations: Annotated[
        int | None, typer.Option(help="Stop after this many iterations (default: never).")
    ] = None,
) -> None:
    """Run the loop every INTERVAL until SIGINT/SIGTERM (stops cleanly between steps)."""
    from driftloop.loop.runner import watch
    from driftloop.monitor.windows import WindowSpec

    spec = WindowSpec.parse(interval)
    if spec.seconds is None:
        raise UsageError(f"--interval {interval!r} must be a duration such as 60s, 5m or 1h.")
    done = watch(model, interval_s=spec.seconds, settings=_settings(), say=_say_step,
                 max_iterations=iterations)
    out.print(f"stopped after {done} iteration(s)")


@app.command("erase")
def erase_cmd(
    subject_id: Annotated[str, typer.Option("--subject-id", help="The data subject's id.")],
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="Feature column holding the id (default governance.id_column).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be removed; change and audit nothing.")] = False,
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Erase a data subject's rows: prediction log, their feedback, the loop's snapshots.

    The audit entry holds only a salted hash of the id and the counts.
    """
    from driftloop.governance.erasure import erase_subject

    result = erase_subject(_settings(), subject_id, id_column=id_column, actor=actor,
                           dry_run=dry_run)
    if json_out:
        _emit_json(result.to_json())
        return
    say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    verb = "would remove" if result.dry_run else "removed"
    if not result.erased:
        say(f"no stored row has {result.id_column} = that id; nothing {verb}.")
    else:
        say(f"{verb} {result.prediction_log} prediction-log row(s), {result.feedback} feedback "
            f"row(s), {sum(result.snapshots.values())} snapshot row(s)")
    for path, n in result.snapshots.items():
        if n:
            say(f"  {path}: {n}")
    if result.skipped_snapshots:
        say(f"  {len(result.skipped_snapshots)} snapshot(s) have no column "
            f"'{result.id_column}' and were left alone")
    if result.shared_request_ids:
        say(f"  {result.shared_request_ids} request id(s) were shared with other rows; their "
            "feedback was removed too")
    if result.audit_seq is not None:
        say(f"audited as entry {result.audit_seq} (subject hash {result.subject_hash}; the id "
            "itself is not stored)")


report_app = typer.Typer(help="Reports on the store: governance.", no_args_is_help=True)
app.add_typer(report_app, name="report")


class ReportFormat(str, Enum):
    md = "md"
    html = "html"
    json = "json"


@report_app.command("governance")
def report_governance_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Option(
        help="Version (default: the served alias's holder, else the newest).")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="md, html or json.")] = (
        ReportFormat.md),
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
    fail_on_gap: Annotated[bool, typer.Option(
        "--fail-on-gap", help="Exit 1 when a subcategory has no evidence.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Map NIST AI RMF 1.0 subcategories to live evidence in the store; list the gaps."""
    from driftloop.governance.report import governance_report
    from driftloop.registry import Registry

    report = governance_report(Registry.open(_settings()), name,
                               None if version is None else _version_number(version))
    if json_out or format is ReportFormat.json:
        text = json.dumps(report.to_json(), indent=1) + "\n"
    else:
        text = report.to_html() if format is ReportFormat.html else report.to_markdown()
    if output is None:
        sys.stdout.write(text)
    else:
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(output)
        c = report.counts()
        err.print(f"governance report written to {output} ({c['evidence']} with evidence, "
                  f"{c['gap']} gap(s), {c['attention']} needing attention)")
    if fail_on_gap and report.gaps:
        raise CheckFailed(f"{len(report.gaps)} subcategory(ies) without evidence: "
                          + ", ".join(i.id for i in report.gaps))


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
