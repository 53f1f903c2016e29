"""``driftloop train``, ``driftloop distill``, ``driftloop worker`` (the other nodes of a
multi-node job) and ``driftloop evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli.output import JsonFlag, emit_json, out, plain, settings, table, warn
from driftloop.errors import UsageError


def train_cmd(
    data: Annotated[Path | None, typer.Argument(help="CSV, Parquet or NPZ file.")] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict (tables).")] = None,
    model: Annotated[
        str, typer.Option(help="auto, mlp, mlp-small, cnn, gru or module:function.")] = "auto",
    workers: Annotated[int | None, typer.Option(help="Data-parallel processes.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size per worker.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate at the reference batch.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of split, init and order.")] = None,
    name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    task: Annotated[str | None, typer.Option(help="binary, multiclass or regression.")] = None,
    time_column: Annotated[str | None, typer.Option(help="Split by this time column.")] = None,
    features: Annotated[str | None, typer.Option(
        help="VIEW[,VIEW...]: join these feature views as of each row's --time-column "
        "(DATA is then the entity table).")] = None,
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
    nnodes: Annotated[
        int | None, typer.Option(help="Nodes of a multi-node job (this one is node 0).")
    ] = None,
    node_rank: Annotated[
        int | None, typer.Option(help="This node's rank: 0 (other nodes: driftloop worker).")
    ] = None,
    rdzv_endpoint: Annotated[
        str | None, typer.Option(help="HOST:PORT where node 0 hosts the rendezvous.")
    ] = None,
    job: Annotated[
        str | None, typer.Option(help="Job name the other nodes join (names the run).")
    ] = None,
    join_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for every node to join.")
    ] = None,
    local_addr: Annotated[
        str | None, typer.Option(help="Address other nodes reach this one at.")
    ] = None,
    dp_epsilon: Annotated[
        float | None, typer.Option(help="Train with DP-SGD to this target ε (train.dp).")
    ] = None,
    dp_delta: Annotated[
        float | None, typer.Option(help="δ of DP-SGD (default: min(1e-5, 1/(10·rows))).")
    ] = None,
    dp_max_grad_norm: Annotated[
        float | None, typer.Option(help="DP-SGD per-sample gradient clipping norm C.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Train a model data-parallel and register it as a new version.

    DATA is required unless --resume RUN_ID continues a stopped run. With --nnodes N this
    machine is node 0 of a job that `driftloop worker --job NAME --node-rank K` joins on the
    other nodes; --workers is per node.
    """
    from driftloop.features.retrieve import parse_view_names
    from driftloop.timing import Phases, since_process_start
    from driftloop.train.launcher import train
    from driftloop.train.torchrun import rendezvous_from_flags

    nodes = rendezvous_from_flags(nnodes, node_rank, rdzv_endpoint, job, join_timeout,
                                  local_addr)

    # this process runs one command: its phases start when it did ("start": the interpreter
    # and the imports); train() records into this recorder
    with Phases(started_ago=since_process_start()).active():
        result = train(
            data, target, model=model, workers=workers, epochs=epochs, batch_size=batch_size,
            lr=lr, seed=seed, name=name, task=task, time_column=time_column,
            group_column=group_column, input_kind=input_kind, accumulate=accumulate,
            precision=precision, checkpoint_every=checkpoint_every,
            consistency_every=consistency_every, collective_timeout=collective_timeout,
            max_restarts=max_restarts, resume=resume, settings=settings(), progress=not json_out,
            ignore_checks=ignore_check or (), allow_pii=allow_pii or (), nodes=nodes,
            dp_epsilon=dp_epsilon, dp_delta=dp_delta, dp_max_grad_norm=dp_max_grad_norm,
            features=None if features is None else parse_view_names(features),
        )
    if json_out:
        emit_json(result.to_json())
        return
    for line in result.warnings:
        warn(line)
    print_training(result)


def distill_cmd(
    teacher: Annotated[str, typer.Argument(metavar="TEACHER[:VERSION]",
                                           help="Registered teacher version.")],
    data: Annotated[Path, typer.Argument(help="The teacher's training data (same file).")],
    student: Annotated[
        str, typer.Option(help="mlp-small (one hidden layer of 32), another built-in model "
                          "or module:function.")] = "mlp-small",
    temperature: Annotated[
        float, typer.Option(help="Softening temperature T > 0 of the teacher's outputs.")
    ] = 2.0,
    alpha: Annotated[
        float, typer.Option(help="Weight of the teacher term in [0, 1] (1 - alpha: labels).")
    ] = 0.5,
    name: Annotated[
        str | None, typer.Option(help="Registered name (default: TEACHER-student).")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-parallel processes.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size per worker.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate at the reference batch.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Distil a registered teacher into a smaller student and register it as a new version.

    The student trains data-parallel on the teacher's temperature-softened outputs plus the
    labels (regression: an MSE to the teacher's outputs plus one to the target), on the
    teacher's exact splits of DATA. Its lineage parent is the teacher; `driftloop models
    gate` checks it against the teacher with the student gate (gates.student_max_drop,
    gates.student_min_shrink). Resume a stopped run with `driftloop train --resume RUN_ID`.
    """
    from driftloop.train.distill import distill

    result = distill(
        teacher, data, student=student, temperature=temperature, alpha=alpha, name=name,
        workers=workers, epochs=epochs, batch_size=batch_size, lr=lr, settings=settings(),
        progress=not json_out,
    )
    if json_out:
        emit_json(result.to_json())
        return
    for line in result.warnings:
        warn(line)
    print_training(result)


def worker_cmd(
    job: Annotated[str, typer.Option(help="Job name node 0 gave with --job.")],
    node_rank: Annotated[int, typer.Option(help="This node's rank, 1 to nnodes - 1.")],
    rdzv_endpoint: Annotated[
        str | None, typer.Option(help="HOST:PORT of node 0 (default: the one it recorded).")
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for node 0 to publish the job.")
    ] = 600.0,
    local_addr: Annotated[
        str | None, typer.Option(help="Address other nodes reach this one at.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Join a multi-node training job as node K: fetch its run, start this node's workers.

    Node 0 runs `driftloop train DATA … --nnodes N --node-rank 0 --rdzv-endpoint HOST:PORT
    --job NAME`; every other node runs this with the same store and artifact settings
    (DRIFTLOOP_STORE_URL, DRIFTLOOP_ARTIFACTS_URL). It only reads the store; node 0 records
    the run and the model version.
    """
    from driftloop.train.nodes import join

    result = join(job, node_rank, settings(), endpoint=rdzv_endpoint, wait=wait,
                  local_addr=local_addr)
    if json_out:
        emit_json(result.to_json())
        return
    out.print(
        f"node {result.node_rank} of job [bold]{result.job}[/] finished: {result.workers} "
        f"workers · run {result.run_id} · fetched {len(result.fetched)} files"
    )
    out.print(f"run folder {result.run_dir}")
    out.print(f"workers' output {result.log}")


def print_training(result: Any) -> None:
    """The test-split metrics and the run of a training result (also the demo's)."""
    if getattr(result, "evaluation", None):
        from driftloop.evaluate.report import EvaluationReport

        out.print(f"[bold]{result.model} v{result.version} — test split[/]")
        plain(EvaluationReport.from_json(result.evaluation).summary())
    else:
        metrics = table("metric", "value", title=f"{result.model} v{result.version} — test split",
                        right=("value",))
        for key, value in result.metrics.items():
            metrics.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        out.print(metrics)
    out.print(
        f"run [bold]{result.run_id}[/] · {result.world_size} workers · "
        f"{result.samples_per_s:,.0f} samples/s · {result.duration_s:.1f} s · best epoch "
        f"{result.best_epoch + 1} of {result.epochs_run}"
    )
    phases = getattr(result, "phases", None)
    if phases:
        out.print(phase_line(phases))
    dp = getattr(result, "differential_privacy", None)
    if dp:
        out.print(f"differential privacy: ε spent {dp['epsilon']:.3g} of {dp['target_epsilon']:g}"
                  f" at δ {dp['delta']:.3g} · σ {dp['noise_multiplier']:.3g} · C "
                  f"{dp['max_grad_norm']:g} · q {dp['sample_rate']:.3g} · {dp['steps']} steps")
    distilled = getattr(result, "distillation", None)
    if distilled:
        out.print(f"distilled from {distilled['teacher']} (T={distilled['temperature']:g}, "
                  f"alpha={distilled['alpha']:g}) · {distilled['student_params']:,} parameters "
                  f"vs {distilled['teacher_params']:,} ({distilled['param_ratio']:g}x fewer)")
    out.print(f"weights sha256 {result.weights_sha256}")
    out.print(f"run folder {result.run_dir}")


def phase_line(phases: dict[str, float]) -> str:
    """The top-level phases on one line, longest first.

    >>> phase_line({"start": 1.0, "data_check": 2.5, "data_check.leakage_aucs": 2.0,
    ...             "other": 0.2, "total": 3.7})
    'time 3.7 s: data_check 2.5 · start 1.0 · other 0.2'
    """
    top = sorted(((k, v) for k, v in phases.items() if "." not in k and k != "total"),
                 key=lambda kv: -kv[1])
    return f"time {phases.get('total', 0.0):.1f} s: " + " · ".join(
        f"{k} {v:.1f}" for k, v in top)


def _epsilons(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--robustness-epsilon must be numbers separated by commas, e.g. "
                         f"0.05,0.1. Got {text!r} instead.") from None


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
    robustness_epsilon: Annotated[
        str | None, typer.Option(help="L-infinity radii of the robustness section in "
                                 "standardised units: EPS[,EPS] (default evaluate.robustness_"
                                 "epsilon).")
    ] = None,
    privacy: Annotated[
        bool, typer.Option("--privacy", help="Also audit membership inference: train "
                           "reference models, attack training rows vs DATA and the test split.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Evaluate a model version on DATA: metrics with 95% intervals, calibration, slices,
    robustness.

    The report is stored as an artifact linked to the version and the data's fingerprint.
    With --privacy it also holds a membership-inference audit (non-members: DATA, test split).
    """
    from driftloop.registry.registry import evaluate

    columns = [c.strip() for c in (slices or "").split(",") if c.strip()]
    current = settings(evaluate=None if robustness_epsilon is None else {
        "robustness": True, "robustness_epsilon": _epsilons(robustness_epsilon)})
    if privacy:
        from driftloop.loop.privacy_audit import evaluate_with_privacy

        report = evaluate_with_privacy(ref, data, slices=columns, target=target,
                                       settings=current)
    else:
        report = evaluate(ref, data, slices=columns, target=target, settings=current)
    if diagram is not None:
        report.write_diagram(diagram)
    if json_out:
        emit_json(report.to_json())
        return
    plain(report.summary())
    out.print(f"report {report.artifact_sha256}" + (
        f" · diagram {report.diagram_sha256}" if report.diagram_sha256 else ""))
    if diagram is not None:
        out.print(f"reliability diagram written to {diagram}")
