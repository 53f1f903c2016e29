"""``driftloop models …``: the group, its read-out commands (list, show, lineage, card, export)
and, in ``--help`` order, the alias commands of :mod:`driftloop.cli.models_alias`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli.models_alias import (
    models_deactivate_cmd,
    models_gate_cmd,
    models_promote_cmd,
    models_rollback_cmd,
)
from driftloop.cli.models_optimize import models_optimize_cmd
from driftloop.cli.models_rollout import models_rollout_cmd
from driftloop.cli.output import (
    JsonFlag,
    TextFormat,
    Typer,
    emit_json,
    err,
    open_registry,
    out,
    plain,
    table,
    version_number,
    write_document,
)

app = Typer(help="List, inspect, gate, promote and roll back model versions.",
            no_args_is_help=True)


class ExportFormat(str, Enum):
    onnx = "onnx"
    edge = "edge"  # a pip-installable project: onnxruntime + numpy, its own prediction log


def models_list_cmd(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List registered model versions."""
    with open_registry() as registry:
        versions = [registry.describe(v) for v in registry.versions(name)]
    if json_out:
        emit_json(versions)
        return
    rows = table("model", "version", "aliases", "task", "created", "key metric", "ECE",
                 "worst slice", "size", "train data")
    for v in versions:
        key = "rmse" if v["task"] == "regression" else "accuracy"
        metric = v["metrics"].get(key)
        rows.add_row(
            v["model_name"], str(v["version"]), ", ".join(v["aliases"]) or "-", v["task"],
            v["created_at"].strftime("%Y-%m-%d %H:%M"),
            f"{key} {metric:.4f}" if metric is not None else "-",
            f"{v['ece']:.4f}" if v["ece"] is not None else "-", _worst_slice(v["worst_slice"]),
            f"{v['size_bytes'] / 1024:.0f} KiB", v["fingerprints"].get("train", "-")[:12],
        )
    out.print(rows if versions else "no model versions yet — run `driftloop train`.")


def _worst_slice(worst: dict[str, Any] | None) -> str:
    if not worst:
        return "-"
    gap = f" ({worst['gap']:+.3f})" if worst.get("gap") is not None else ""
    flag = " flagged" if worst.get("flagged") else ""
    return f"{worst['column']} = {worst['value']}{gap}{flag}"


def models_show_cmd(
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (latest when omitted).")],
    json_out: JsonFlag = False,
) -> None:
    """Show one model version: metrics, run, data fingerprints and artifacts."""
    from driftloop.evaluate.report import parse_ref

    name, version = parse_ref(ref)
    with open_registry() as registry:
        record = registry.get(name, version)
        run = registry.store.get_run(record.run_id) if record.run_id else None
        datasets = registry.store.run_datasets(record.run_id) if record.run_id else {}
        described = registry.describe(record)
        runtime = _runtime_choice(registry, record)
    info = {
        "version": record.__dict__,
        "run": run.__dict__ if run else None,
        "datasets": {role: d.__dict__ for role, d in datasets.items()},
        "aliases": described["aliases"],
        "ece": described["ece"],
        "worst_slice": described["worst_slice"],
        "evaluation_report": described["evaluation_report"],
        "runtime": runtime,
    }
    if json_out:
        emit_json(info)
        return
    out.print(f"[bold]{record.model_name} v{record.version}[/] · {record.task} · "
              f"{record.input_kind} · created {record.created_at:%Y-%m-%d %H:%M}")
    out.print(f"  aliases: {', '.join(described['aliases']) or 'none'}")
    if described["ece"] is not None:
        out.print(f"  ECE (calibrated): {described['ece']:.4f}")
    out.print(f"  worst slice: {_worst_slice(described['worst_slice'])}", markup=False)
    recommended = (f"recommended {runtime['recommended']} on {runtime['measured_at']:%Y-%m-%d}"
                   if runtime["recommended"] else "not measured: `driftloop models optimize`")
    out.print(f"  runtime: {runtime['applied'] or 'torch'} "
              f"({'applied' if runtime['applied'] else 'default'}; {recommended})", markup=False)
    from driftloop.registry.distillation import DISTILL_KEY, distill_record
    from driftloop.registry.dp import DP_KEY, dp_record

    for key, value in record.metrics.items():
        if key == DP_KEY:
            dp = dp_record(record)
            out.print(f"  differential privacy: {dp.label() if dp else value}", markup=False)
            continue
        if key == DISTILL_KEY:
            distilled = distill_record(record)
            out.print(f"  distillation: {distilled.label() if distilled else value}"
                      + (f", {distilled.param_ratio:g}x fewer parameters" if distilled else ""),
                      markup=False)
            continue
        out.print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    out.print(f"  weights {record.weights_sha256}\n  bundle  {record.bundle_sha256}")
    if run:
        out.print(f"  run {run.id} · {run.world_size} workers · {run.status} · "
                  f"{(run.samples_per_s or 0):,.0f} samples/s · {run.run_dir}")
    for role, d in datasets.items():
        out.print(f"  data {role:6s} {d.rows:>7} rows · {d.fingerprint[:16]} · {d.source_uri}")
    from driftloop.registry.lineage import feature_views_text

    if feature_views_text(run):
        out.print(f"  Features: {feature_views_text(run)}", markup=False)


def _runtime_choice(registry: Any, record: Any) -> dict[str, Any]:
    """What `models optimize` recommended for the version (newest report) and what is applied."""
    from driftloop.registry.runtime_choice import applied_runtime, latest_optimization

    found = latest_optimization(registry.audit, registry.artifacts, record)
    return {"applied": applied_runtime(registry.audit, record),
            "recommended": None if found is None else found.body["recommended"],
            "measured_at": None if found is None else found.at,
            "report_sha256": None if found is None else found.report_sha256}


def models_lineage_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(help="Version (latest when omitted).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Where a version came from: run, datasets, parents, reports, alias moves, audit."""
    with open_registry() as registry:
        found = registry.lineage(name, None if version is None else version_number(version))
    if json_out:
        emit_json(found.to_json())
        return
    say = plain
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
    from driftloop.registry.lineage import feature_views_text

    if feature_views_text(run):
        say(f"  Features: {feature_views_text(run)}")
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


def models_card_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(help="Version (latest when omitted).")] = None,
    format: Annotated[TextFormat, typer.Option("--format", help="md, html or json.")] = (
        TextFormat.md),
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=TEXT for a human part, e.g. caveats=... (repeatable)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
) -> None:
    """A model card (Mitchell et al. 2019): facts from the store, text from `card:`/--set."""
    from driftloop.registry.card import parse_set

    with open_registry() as registry:
        card = registry.card(
            name, None if version is None else version_number(version), parse_set(set_ or []))
    if format is TextFormat.json:
        text = json.dumps(card.to_json(), indent=1) + "\n"
    else:
        text = card.to_html() if format is TextFormat.html else card.to_markdown()
    if write_document(text, output):
        err.print(f"model card written to {output} ({len(card.missing())} item(s) missing)")


def models_export_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version (3 or v3).")],
    format: Annotated[ExportFormat, typer.Option("--format", help="Package format.")] = (
        ExportFormat.onnx),
    int8: Annotated[bool, typer.Option("--int8", help="Also write an int8 model.")] = False,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder to write (default NAME-vVERSION-FORMAT).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Write a self-contained edge package: ONNX model, preprocessing and schema JSON.

    ``--format edge``: a pip-installable project (onnxruntime + numpy only) with ``predict()``,
    ``python -m PACKAGE predict rows.csv`` and its own prediction log (``driftloop ingest``)."""
    from driftloop.registry.names import check_model_name
    from driftloop.serve.export import export_edge_package

    number = version_number(version)
    # a name stored before names were checked must not pick the folder (no '/' or '..')
    target = out_dir or Path(f"{check_model_name(name)}-v{number}-{format.value}")
    with open_registry() as registry:
        if format is ExportFormat.edge:
            from driftloop.errors import UsageError
            from driftloop.serve.export import export_edge_project

            if int8:
                raise UsageError("--int8 applies to --format onnx; the edge package runs the "
                                 "fp32 model (its answers equal the server's).")

            package = export_edge_project(registry, name, number, target, overwrite=overwrite)
        else:
            package = export_edge_package(registry, name, number, target, int8=int8,
                                          overwrite=overwrite)
    if json_out:
        emit_json(package.to_json())
        return
    out.print(f"wrote {package.path}")
    for file, size in package.files.items():
        out.print(f"  {file:20s} {size:>10,} bytes")


for _name, _command in (
    ("list", models_list_cmd), ("show", models_show_cmd), ("promote", models_promote_cmd),
    ("rollback", models_rollback_cmd), ("rollout", models_rollout_cmd),
    ("deactivate", models_deactivate_cmd),
    ("gate", models_gate_cmd), ("lineage", models_lineage_cmd), ("card", models_card_cmd),
    ("export", models_export_cmd), ("optimize", models_optimize_cmd),
):
    app.command(_name)(_command)
