"""``dl.train``: prepare the data once, start the ranks with torch.distributed.run, record.

The launcher is the only part of training that touches the store. It

1. prepares the data (schema, split, preprocessing fitted on the training split) and writes the
   arrays the ranks memory-map into a fresh run folder with the training spec;
2. starts ``python -m torch.distributed.run --standalone --nproc-per-node N -m
   driftloop.train.worker --run-dir RUN`` (the engine behind ``torchrun``; several nodes: a
   c10d rendezvous that node 0 hosts, after :mod:`driftloop.train.nodes` published the run
   for the other nodes to fetch) with the workers' output going to ``RUN/logs/`` and draws
   rank 0's progress;
3. reads rank 0's outputs, fits the temperature that calibrates the best weights on the
   validation split, evaluates the test split fully (metrics with intervals, calibration,
   slices; :mod:`driftloop.train.evaluation`), and records the run
   (params, per-epoch metrics, world size, duration, throughput, package versions, git commit)
   and the new model version (weights, bundle, metrics, fingerprints) with an audit entry.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from driftloop.config import Settings
from driftloop.data import PreparedData, prepare
from driftloop.data.read import read_table, table_suffix
from driftloop.errors import DataError, NotFoundError, TrainingError, UsageError
from driftloop.evaluate.metrics import classification_metrics, regression_metrics
from driftloop.features.retrieve import historical_features, write_table
from driftloop.features.spec import FeatureUse
from driftloop.models.architectures import (
    MODELS,
    build_model,
    factory_allowed,
    factory_reference,
    resolve_model_name,
)
from driftloop.models.bundle import ModelBundle
from driftloop.models.loaded import LoadedModel
from driftloop.monitor.reference import (
    PROFILE_FILE,
    store_training_reference,
    write_training_profile,
)
from driftloop.registry.distillation import DISTILL_KEY, student_record
from driftloop.registry.evaluation import store_report
from driftloop.registry.names import check_model_name, model_name_from
from driftloop.registry.registry import Registry
from driftloop.timing import Phases, current, record
from driftloop.train.evaluation import calibrate_and_evaluate, write_slice_rows
from driftloop.train.nodes import check_port_free, job_run_id, publish_run
from driftloop.train.precheck import precheck, record_precheck
from driftloop.train.privacy import DP_KEY, plan_dp
from driftloop.train.provenance import git_commit, package_versions
from driftloop.train.spec import (
    DATA_DIR,
    HISTORY_FILE,
    LOG_DIR,
    OUTPUTS_DIR,
    PROGRESS_FILE,
    RESULT_FILE,
    SPEC_FILE,
    WEIGHTS_FILE,
    TrainSpec,
    write_json_atomic,
)
from driftloop.train.teacher import Teacher
from driftloop.train.torchrun import Rendezvous, agent_environment, cores, torchrun_command

BUNDLE_FILE = "bundle.json"
PHASES_FILE = "phases.json"  # in the run folder: where the command's wall time went
JOINED_FILE = "features.parquet"  # in DATA_DIR: the entity table with its views joined

ModelArg = str | Callable[[dict[str, Any], int], nn.Module]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; ``to_json()`` is what ``driftloop train --json`` prints."""

    run_id: str
    model: str
    version: int
    task: str
    metrics: dict[str, float]
    world_size: int
    samples_per_s: float
    duration_s: float
    weights_sha256: str
    run_dir: str
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    step_seconds_p50: float = 0.0
    step_seconds_p95: float = 0.0
    evaluation: dict[str, Any] = field(default_factory=dict)  # the test split's report
    # DP-SGD's record (ε spent, δ, σ, C, q, steps, accountant); None: trained without DP
    differential_privacy: dict[str, Any] | None = None
    # a distilled student's record (teacher, T, alpha, sizes); None: not distilled
    distillation: dict[str, Any] | None = None
    # wall seconds per phase of this call (driftloop.timing): top-level phases + "other" sum to
    # "total"; dotted names ("data_check.leakage_aucs") are parts of their parent
    phases: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def train(
    data: str | os.PathLike[str] | pd.DataFrame | None = None,
    target: str | None = None,
    *,
    model: ModelArg = "auto",
    workers: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    name: str | None = None,
    task: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    input_kind: str | None = None,
    accumulate: int | None = None,
    precision: str | None = None,
    checkpoint_every: int | None = None,
    consistency_every: int | None = None,
    collective_timeout: float | None = None,
    max_restarts: int | None = None,
    resume: str | None = None,
    ignore_checks: Sequence[str] = (),
    allow_pii: Sequence[str] = (),
    settings: Settings | None = None,
    progress: bool = True,
    parent: int | None = None,
    nodes: Rendezvous | None = None,
    dp_epsilon: float | None = None,
    dp_delta: float | None = None,
    dp_max_grad_norm: float | None = None,
    features: Sequence[str] | None = None,
    teacher: Teacher | None = None,
    feature_uses: Sequence[Mapping[str, Any]] | None = None,
) -> TrainResult:
    """Train a model data-parallel on ``data`` and register it as a new version.

    Parameters
    ----------
    data
        CSV / Parquet / NPZ path, or a DataFrame (not needed with ``resume``).
    target
        Target column (tables); NPZ files carry ``y``.
    model
        ``"auto"``, ``"mlp"``, ``"cnn"``, ``"gru"``, ``"module:function"``, or a factory
        ``f(model_inputs: dict, n_outputs: int) -> nn.Module`` defined at module top level.
    workers, epochs, batch_size, lr, seed
        Override the ``train:`` settings; ``batch_size`` is per worker, ``lr`` applies at the
        reference batch and is scaled linearly to the global batch.
    accumulate
        Micro-batches per optimiser step (gradients all-reduced once per step).
    precision
        ``fp32``, ``bf16`` (autocast, CPU and GPU) or ``fp16`` (GPU, with a grad scaler).
    checkpoint_every, consistency_every
        Every this many optimiser steps (0: at each epoch end) write a checkpoint / compare
        the ranks' parameter checksums.
    collective_timeout
        Seconds a collective may wait for a rank before the run fails naming it.
    max_restarts
        How often the elastic agent restarts the worker group after a failure; each restart
        resumes from the newest complete checkpoint.
    resume
        Id of a stopped run to continue from its newest checkpoint (``workers`` may differ;
        then the result is not bitwise-equal to an uninterrupted run).
    ignore_checks
        Names of data checks (``driftloop.data.check.CHECKS``) whose error findings do not
        stop training; recorded in the run's params.
    allow_pii
        Columns found to hold personal data that are kept as features anyway (by default they
        are left out); recorded in the run's params.
    name
        Registered model name (default: the data file's stem, or ``"model"``).
    parent
        Id of the version this one retrains (the loop passes the champion's), for lineage.
    nodes
        Train on several nodes as node 0 of this rendezvous (``workers`` per node): the run
        id comes from the job name, the run is published for ``driftloop worker`` on the other
        nodes (:mod:`driftloop.train.nodes`), and this process records it as usual.
    dp_epsilon, dp_delta, dp_max_grad_norm
        Train with DP-SGD (Opacus) to this target ε at δ (default ``min(1e-5, 1/(10·rows))``),
        clipping per-sample gradients to this norm (``train.dp``; see docs/scaling-out.md).
        The ε spent is in ``differential_privacy`` of the result and of the version's metrics.
    features
        Feature views (``features.views``) to join to ``data`` as of each row's
        ``time_column`` (required then): ``data`` is the entity table (keys, time, target,
        request-time features). The joined table is what is trained on, and is kept in the run
        folder (``data/features.parquet``); the entity keys are not model inputs and the time
        column only splits. The views' registered versions go into the bundle and the run's
        params (lineage).
    feature_uses
        The feature views (``FeatureUse`` JSON, from the bundle of the version being retrained)
        whose columns ``data`` already holds: the loop retrains a feature-view version from its
        joined table plus logged rows, and the new version keeps looking those columns up by
        entity key when served. Each view's features must be features of ``data``.
    teacher
        Train a student of this teacher (set by :func:`driftloop.train.distill.distill`, which
        also passes the teacher's split and preprocessing settings): the prepared data must be
        the teacher's, its outputs are written into the run folder, and the version records
        ``distillation`` in its metrics with the teacher as its lineage parent.

    Examples
    --------
    >>> import driftloop as dl, tempfile                       # doctest: +SKIP
    >>> from sklearn.datasets import load_breast_cancer          # doctest: +SKIP
    >>> frame = load_breast_cancer(as_frame=True).frame          # doctest: +SKIP
    >>> result = dl.train(frame, target="target", workers=2, epochs=5)  # doctest: +SKIP
    >>> result.metrics["accuracy"] > 0.9                          # doctest: +SKIP
    True
    """
    recorder = current() or Phases()
    with recorder.active():
        result = _train(
            data, target, model=model, workers=workers, epochs=epochs, batch_size=batch_size,
            lr=lr, seed=seed, name=name, task=task, time_column=time_column,
            group_column=group_column, input_kind=input_kind, accumulate=accumulate,
            precision=precision, checkpoint_every=checkpoint_every,
            consistency_every=consistency_every, collective_timeout=collective_timeout,
            max_restarts=max_restarts, resume=resume, ignore_checks=ignore_checks,
            allow_pii=allow_pii, settings=settings, progress=progress, parent=parent,
            nodes=nodes, dp_epsilon=dp_epsilon, dp_delta=dp_delta,
            dp_max_grad_norm=dp_max_grad_norm, features=features, teacher=teacher,
            feature_uses=feature_uses,
        )
    phases = recorder.to_json()
    write_json_atomic(Path(result.run_dir) / PHASES_FILE, phases)
    return dataclasses.replace(result, phases=phases)


def _train(
    data: Any, target: str | None, *, model: ModelArg, workers: int | None,
    epochs: int | None, batch_size: int | None, lr: float | None, seed: int | None,
    name: str | None, task: str | None, time_column: str | None, group_column: str | None,
    input_kind: str | None, accumulate: int | None, precision: str | None,
    checkpoint_every: int | None, consistency_every: int | None,
    collective_timeout: float | None, max_restarts: int | None, resume: str | None,
    ignore_checks: Sequence[str], allow_pii: Sequence[str], settings: Settings | None,
    progress: bool, parent: int | None, nodes: Rendezvous | None, dp_epsilon: float | None,
    dp_delta: float | None, dp_max_grad_norm: float | None, features: Sequence[str] | None,
    teacher: Teacher | None, feature_uses: Sequence[Mapping[str, Any]] | None,
) -> TrainResult:
    """:func:`train`'s work, its phases timed into the current recorder."""
    overrides = {
        "workers": workers, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "accumulate": accumulate, "precision": precision, "checkpoint_every": checkpoint_every,
        "consistency_every": consistency_every, "collective_timeout": collective_timeout,
        "max_restarts": max_restarts,
    }
    dp_overrides = {"epsilon": dp_epsilon, "delta": dp_delta, "max_grad_norm": dp_max_grad_norm}
    overrides["dp"] = {k: v for k, v in dp_overrides.items() if v is not None} or None
    settings = (settings or Settings.load()).updated(
        {"train": {k: v for k, v in overrides.items() if v is not None}}
    )
    cfg = settings.train
    if cfg.dp.epsilon is None and (dp_delta is not None or dp_max_grad_norm is not None):
        raise UsageError(
            "--dp-delta and --dp-max-grad-norm only apply to differential privacy: add "
            "--dp-epsilon E (or set train.dp.epsilon), or leave them out."
        )
    with Registry.open(settings) as registry:  # closed once the run is recorded or failed
        if resume is not None:
            return _resume_run(registry, resume, workers, cfg.max_restarts, progress, nodes)
        run_id = _new_run_id(registry, nodes)
        if data is None:
            raise UsageError("pass the data to train on, or resume=RUN_ID to continue a run.")
        if cfg.precision == "fp16" and not torch.cuda.is_available():
            raise UsageError(
                "--precision fp16 needs a GPU (it relies on a CUDA grad scaler); use bf16 or fp32 "
                "on CPU."
            )
        model_ref = model if isinstance(model, str) else factory_reference(model)
        name = name or (_default_name(data) if features else None)
        started = time.perf_counter()
        joined = _join_features(registry, data, features, time_column)
        if joined is not None:
            data = joined.frame
        prepared = prepare(
            data, target, task=task, seed=cfg.seed, val_fraction=cfg.val_fraction,
            test_fraction=cfg.test_fraction, time_column=time_column, group_column=group_column,
            input_kind=input_kind,
        )
        record("prepare", started)
        world_size = cfg.workers * (nodes.nnodes if nodes is not None else 1)
        _check_enough_rows(prepared, world_size, cfg.batch_size)
        model_name = check_model_name(name) if name else _default_name(data)
        model_ref = resolve_model_name(model_ref, prepared.input_kind)
        dp_plan = _plan_dp(cfg, prepared, model_ref, world_size)
        if teacher is not None and dp_plan is not None:
            raise UsageError(
                "distillation with differential privacy is not supported (the teacher saw the "
                "training rows without DP-SGD); unset train.dp.epsilon for `driftloop distill`."
            )
        # bad input is reported first (above, exit 2); then the data check refuses errors not
        # ignored (exit 1) and names the columns holding personal data, which are left out
        started = time.perf_counter()
        checked = precheck(
            data, target, task=prepared.task, group_column=group_column,
            input_kind=prepared.input_kind, ignore_checks=ignore_checks, allow_pii=allow_pii,
            settings=settings,
        )
        record("data_check", started)
        if checked.exclude:
            started = time.perf_counter()
            prepared = prepare(
                data, target, task=task, seed=cfg.seed, val_fraction=cfg.val_fraction,
                test_fraction=cfg.test_fraction, time_column=time_column,
                group_column=group_column, input_kind=input_kind, exclude=checked.exclude,
            )
            record("prepare", started)
        if teacher is not None:
            teacher.check_data(prepared)

        params = {
            **cfg.model_dump(), "model": model_ref, "task": prepared.task, "target": target,
            "time_column": time_column, "group_column": group_column, "source": prepared.source_uri,
            "name": model_name,
            "checks": checked.params, "evaluate": settings.evaluate.model_dump(),
        }
        if joined is not None:
            params["features"] = joined.feature_views
            params["entity_table"] = joined.entity_uri
        if dp_plan is not None:
            params[DP_KEY] = dp_plan  # the plan; the version's metrics hold what was spent
        if teacher is not None:
            params[DISTILL_KEY] = teacher.spec_entry()
        run_dir = (settings.runs_dir / run_id).resolve()
        # the folder the ranks read is written (and, for other nodes, published) before the run
        # is recorded, so that the record can say where the other nodes find it
        views = (joined.feature_views if joined is not None
                 else _inherited_views(feature_uses, prepared, features))
        if views is not None and joined is None:
            params["features"] = views
        started = time.perf_counter()
        spec = _write_run_folder(run_dir, run_id, prepared, model_ref, cfg, progress, dp_plan,
                                 teacher, feature_views=views)
        if joined is not None:
            # the source of record is the joined table (what was trained on; the loop
            # retrains from it), the entity table it was joined from is kept beside it
            params["source"] = str(write_table(joined.frame, run_dir / DATA_DIR / JOINED_FILE))
        if nodes is not None:
            params["job"] = publish_run(run_dir, spec, registry.artifacts, nodes, cfg.workers,
                                        cfg.max_restarts)
        registry.store.create_run(
            model_name=model_name, params=params, world_size=world_size, run_dir=str(run_dir),
            package_versions=package_versions(), git_commit=git_commit(Path.cwd()), run_id=run_id,
        )
        try:
            for role in ("source", "train", "val", "test"):
                registry.record_dataset(run_id, role, prepared)
            record_precheck(checked, registry, run_id)
            write_slice_rows(run_dir, data, prepared, settings.evaluate.max_slice_columns)
            write_training_profile(run_dir / DATA_DIR, data, prepared, settings.drift)
        except BaseException as exc:
            registry.store.finish_run(run_id, "failed", error=str(exc))
            raise
        record("run_folder", started)
        warnings = list(prepared.warnings) + _factory_warning(
            model_ref, settings.security.model_factories)
        return _launch_and_record(registry, run_id, run_dir, spec, cfg.workers, cfg.max_restarts,
                                  model_name, progress, warnings=warnings, parent=parent,
                                  nodes=nodes)


def _inherited_views(uses: Sequence[Mapping[str, Any]] | None, prepared: PreparedData,
                     features: Sequence[str] | None) -> list[dict[str, Any]] | None:
    """``feature_uses`` checked against the prepared table's features (None: none given)."""
    if not uses:
        return None
    if features:
        raise UsageError("pass either features (views to join) or feature_uses (views already "
                         "joined), not both")
    have = set(prepared.schema.feature_names if prepared.schema is not None else ())
    views = [FeatureUse.from_json(dict(use)).to_json() for use in uses]
    for view in views:
        lacking = [f for f in view["features"] if f not in have]
        if lacking:
            raise UsageError(f"feature view {view['view']} v{view['version']}: the table has no "
                             f"feature {', '.join(lacking)}; retrain from the joined table "
                             "(the run folder's data/features.parquet) or join the views again "
                             "with --features")
    return views


@dataclass(frozen=True)
class _Joined:
    """The entity table with its feature views joined, and which view versions were used."""

    frame: pd.DataFrame
    uses: list[FeatureUse]
    entity_uri: str

    @property
    def feature_views(self) -> list[dict[str, Any]]:
        return [use.to_json() for use in self.uses]


def _join_features(registry: Registry, data: object, features: Sequence[str] | None,
                   time_column: str | None) -> _Joined | None:
    """Join ``features`` to the entity table ``data`` as of ``time_column``; drop the keys."""
    if not features:
        return None
    if time_column is None:
        raise UsageError("--features joins each view as of each row's time: pass "
                         "--time-column COLUMN (the entity table's time column).")
    if not isinstance(data, (str, os.PathLike, pd.DataFrame)) or (
            not isinstance(data, pd.DataFrame) and table_suffix(data) is None):
        raise UsageError("--features needs a table (CSV/Parquet file or DataFrame) of entity "
                         "keys, times and the target.")
    table = read_table(data)
    got = historical_features(registry.store, registry.settings, table.frame, list(features),
                              time_column=time_column, actor=registry.actor)
    keys = list(dict.fromkeys(k for use in got.uses for k in use.keys))
    return _Joined(frame=got.result.frame.drop(columns=keys), uses=got.uses,
                   entity_uri=table.uri)


def _plan_dp(
    cfg: Any, prepared: PreparedData, model_ref: str, world_size: int
) -> dict[str, Any] | None:
    """The DP-SGD plan (noise multiplier for the target ε), or None when DP is off."""
    if cfg.dp.epsilon is None:
        return None
    model = build_model(model_ref, prepared.model_inputs, _n_outputs(prepared),
                        allowed=[model_ref])
    return plan_dp(cfg.dp, rows=prepared.row_counts["train"], world_size=world_size,
                   batch_size=cfg.batch_size, epochs=cfg.epochs, accumulate=cfg.accumulate,
                   precision=cfg.precision, model=model)


def _new_run_id(registry: Registry, nodes: Rendezvous | None) -> str:
    """A fresh uuid4, or the job's id; refuses a job name already used in this store."""
    if nodes is None:
        return uuid.uuid4().hex
    if nodes.node_rank != 0:
        raise UsageError(
            f"--node-rank {nodes.node_rank}: only node 0 runs `driftloop train` (it prepares "
            f"and records the run); start the other nodes with `driftloop worker --job "
            f"{nodes.job} --node-rank {nodes.node_rank}`."
        )
    run_id = job_run_id(nodes.job)
    try:
        run = registry.store.get_run(run_id)
    except NotFoundError:
        check_port_free(nodes.endpoint)
        return run_id
    raise UsageError(
        f"job '{nodes.job}' already exists (run {run_id}, {run.status}): resume it with "
        f"`driftloop train --resume {run_id}`, or choose another --job name."
    )


def _resume_run(
    registry: Registry, run_id: str, workers: int | None, max_restarts: int, progress: bool,
    nodes: Rendezvous | None = None,
) -> TrainResult:
    run = registry.store.get_run(run_id)
    run_dir = Path(run.run_dir)
    if not (run_dir / SPEC_FILE).is_file():
        raise UsageError(
            f"run '{run_id}' has no run folder at {run_dir} (it was never launched or the "
            "folder was removed); train it again instead."
        )
    rendezvous = _resumed_rendezvous(run.params.get("job"), run_id, nodes)
    if rendezvous is not None:
        job = run.params["job"]
        if workers not in (None, job["workers_per_node"]):
            raise UsageError(
                f"run '{run_id}' is job '{job['name']}' with {job['workers_per_node']} workers "
                f"on each of {job['nnodes']} nodes; resume it with the same --workers."
            )
        workers, world_size = job["workers_per_node"], job["workers_per_node"] * job["nnodes"]
    else:
        world_size = workers = workers or run.world_size
    spec = TrainSpec.read(run_dir)
    if spec.dp is not None and world_size != run.world_size:
        raise UsageError(
            f"run '{run_id}' trains with differential privacy on {run.world_size} workers; "
            f"resume it with --workers {run.world_size} (its Poisson sampler's state is per "
            "worker)."
        )
    registry.store.resume_run(run_id, world_size)
    spec = dataclasses.replace(
        spec, threads_per_worker=max(1, cores() // workers), progress=progress
    )
    spec.write(run_dir)
    return _launch_and_record(registry, run_id, run_dir, spec, workers, max_restarts,
                              run.model_name, progress, warnings=[], nodes=rendezvous)


def _resumed_rendezvous(
    job: dict[str, Any] | None, run_id: str, nodes: Rendezvous | None
) -> Rendezvous | None:
    """The rendezvous a resumed run joins: the job's, with this call's endpoint and address."""
    if job is None:
        if nodes is not None:
            raise UsageError(
                f"run '{run_id}' ran on one node; resume it without --nnodes / --rdzv-endpoint."
            )
        return None
    if nodes is not None and (nodes.nnodes, nodes.job) != (job["nnodes"], job["name"]):
        raise UsageError(
            f"run '{run_id}' is job '{job['name']}' on {job['nnodes']} nodes; resume it with "
            "that --job and --nnodes (or leave both out)."
        )
    return Rendezvous(
        nnodes=int(job["nnodes"]), node_rank=0, job=job["name"],
        endpoint=nodes.endpoint if nodes is not None else job["endpoint"],
        join_timeout=nodes.join_timeout if nodes is not None else float(job["join_timeout"]),
        local_addr=nodes.local_addr if nodes is not None else None,
    )


def _launch_and_record(
    registry: Registry, run_id: str, run_dir: Path, spec: TrainSpec, workers: int,
    max_restarts: int, model_name: str, progress: bool, warnings: list[str],
    parent: int | None = None, nodes: Rendezvous | None = None,
) -> TrainResult:
    started = time.perf_counter()
    try:
        _launch(run_dir, workers, max_restarts, show_progress=progress, nodes=nodes)
        record("workers", started)
        outputs = _read_outputs(run_dir)
        _epoch_phases(outputs["history"])
        for epoch in outputs["history"]:
            registry.store.add_run_metrics(
                run_id, int(epoch["epoch"]),
                {k: float(v) for k, v in epoch.items() if k != "epoch"},
            )
        weights = (run_dir / OUTPUTS_DIR / WEIGHTS_FILE).read_bytes()
        bundle = ModelBundle.from_json(
            json.loads((run_dir / BUNDLE_FILE).read_text(encoding="utf-8"))
        )
        evaluating = time.perf_counter()
        bundle, evaluation = calibrate_and_evaluate(registry, run_id, run_dir, bundle, weights)
        record("evaluation", evaluating)
        registering = time.perf_counter()
        metrics = evaluation.headline_metrics()
        duration = time.perf_counter() - started
        stored: dict[str, Any] = dict(metrics)
        dp_record = outputs["result"].get(DP_KEY)
        if dp_record is not None:
            stored[DP_KEY] = dp_record
        distilled = None
        if spec.distill is not None:
            # the spec, not this call, names the teacher: a resumed run keeps its parent
            distilled = student_record(spec.distill, spec.model, weights)
            stored[DISTILL_KEY] = distilled
            parent = int(spec.distill["teacher_id"])
        version = registry.register(
            model_name, run_id=run_id, bundle=bundle, weights=weights, metrics=stored,
            actor="driftloop distill" if distilled else "driftloop train",
            reason=(f"distilled from {distilled['teacher']} by run {run_id}" if distilled
                    else f"trained by run {run_id}"),
            parent_id=parent,
        )
        evaluation = store_report(evaluation, registry, version=version, run_id=run_id)
        _store_reference_profile(registry, version, run_id, run_dir, bundle, weights)
        registry.store.finish_run(
            run_id, "succeeded", duration_s=duration,
            samples_per_s=outputs["result"]["samples_per_s"],
        )
        record("registration", registering)
    except BaseException as exc:
        why = "interrupted (resume with --resume)" if isinstance(exc, KeyboardInterrupt) else exc
        registry.store.finish_run(
            run_id, "failed", duration_s=time.perf_counter() - started, error=str(why)
        )
        raise
    result = outputs["result"]
    return TrainResult(
        run_id=run_id, model=model_name, version=version.version, task=bundle.task,
        metrics=metrics, world_size=result["world_size"],
        samples_per_s=result["samples_per_s"], duration_s=duration,
        weights_sha256=version.weights_sha256, run_dir=str(run_dir),
        best_epoch=result["best_epoch"], epochs_run=result["epochs_run"],
        history=outputs["history"], fingerprints=dict(bundle.fingerprints),
        warnings=warnings, step_seconds_p50=result.get("step_seconds_p50", 0.0),
        step_seconds_p95=result.get("step_seconds_p95", 0.0),
        evaluation=evaluation.to_json(), differential_privacy=result.get(DP_KEY),
        distillation=distilled,
    )


def _epoch_phases(history: list[dict[str, Any]]) -> None:
    """Split the workers' phase into the epochs (the ranks' own timing) and the rest."""
    recorder = current()
    if recorder is None or "workers" not in recorder.seconds:
        return
    epochs = sum(float(e.get("seconds", 0.0)) for e in history)
    recorder.add("workers.epochs", epochs)
    recorder.add("workers.startup_and_exit", max(0.0, recorder.seconds["workers"] - epochs))


def _store_reference_profile(
    registry: Registry, version: Any, run_id: str, run_dir: Path, bundle: ModelBundle,
    weights: bytes,
) -> None:
    """Store the training split's feature profile (written before launch; tables only) with
    the calibrated model's outputs on the validation split (and, for a classifier, its labels),
    for drift monitoring and the label-free performance estimate."""
    path = run_dir / DATA_DIR / PROFILE_FILE
    if not path.is_file():
        return
    *inputs, y = (np.load(run_dir / DATA_DIR / f) for f in TrainSpec.read(run_dir).array_files(
        "val"))
    model = LoadedModel(bundle, weights, allowed_factories=[bundle.model])
    outputs = model.to_original_scale(model.predict_arrays(*inputs))
    store_training_reference(registry, version, run_id, path, outputs, bundle.classes, labels=y)


def test_metrics(model: LoadedModel, run_dir: Path) -> dict[str, float]:
    """Metrics of ``model`` on the run's test split (original target scale for regression)."""
    files = TrainSpec.read(run_dir).array_files("test")
    *inputs, y = (np.load(run_dir / DATA_DIR / name) for name in files)
    outputs = model.predict_arrays(*inputs)
    if model.task == "regression":
        return regression_metrics(model.to_original_scale(y), model.to_original_scale(outputs))
    return classification_metrics(y, outputs)


test_metrics.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def train_unregistered(
    spec: TrainSpec,
    splits: dict[str, Sequence[np.ndarray]],
    run_dir: Path,
    *,
    workers: int = 1,
    seed: int | None = None,
) -> bytes:
    """Train ``spec``'s model on given arrays in a fresh ``run_dir``; return the best weights.

    Nothing is recorded or registered and the store is not opened: this is how the privacy
    audit (:mod:`driftloop.loop.privacy_audit`) trains reference models with a version's own
    spec (architecture, epochs, optimiser, early stopping) on rows of its choosing.
    ``splits`` maps ``"train"`` and ``"val"`` to the arrays of :meth:`TrainSpec.array_files`
    (already preprocessed, as in the version's run folder); ``seed`` replaces the spec's.
    """
    rows = len(splits["train"][-1])
    batch = min(spec.batch_size, max(1, rows // workers))  # a small half still takes steps
    spec = dataclasses.replace(
        spec, run_id=run_dir.name, seed=spec.seed if seed is None else seed, batch_size=batch,
        threads_per_worker=max(1, cores() // workers), progress=False,
    )
    (run_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        for fname, value in zip(spec.array_files(split), splits[split], strict=True):
            np.save(run_dir / DATA_DIR / fname, np.ascontiguousarray(value))
    spec.write(run_dir)
    _launch(run_dir, workers, 0, show_progress=False)
    return (run_dir / OUTPUTS_DIR / WEIGHTS_FILE).read_bytes()


def _check_enough_rows(prepared: PreparedData, workers: int, batch_size: int) -> None:
    rows = prepared.row_counts["train"]
    if rows < workers * batch_size:
        raise DataError(
            f"the training split has {rows} rows, fewer than workers × batch size = "
            f"{workers} × {batch_size} = {workers * batch_size}. Use a smaller --batch-size, "
            "fewer --workers, or more data."
        )


def _default_name(data: object) -> str:
    if isinstance(data, (str, os.PathLike)):
        return model_name_from(Path(data).name.split(".")[0])
    return "model"


def _factory_warning(model_ref: str, allowed: list[str]) -> list[str]:
    """This run trusts the factory its operator named; a stored version is loaded elsewhere
    (serve, evaluate, monitor) only where ``security.model_factories`` allows it."""
    if model_ref in MODELS or factory_allowed(model_ref, allowed):
        return []
    module = model_ref.partition(":")[0]
    return [f"the model factory '{model_ref}' is not in security.model_factories: serving, "
            f"evaluating or monitoring this version refuses to import it until '{module}' is "
            "added there on that machine."]


def _write_run_folder(
    run_dir: Path, run_id: str, prepared: PreparedData, model_ref: str, cfg: Any, progress: bool,
    dp: dict[str, Any] | None = None, teacher: Teacher | None = None,
    feature_views: list[dict[str, Any]] | None = None,
) -> TrainSpec:
    workers = int(cfg.workers)
    spec = TrainSpec(
        run_id=run_id, task=prepared.task, input_kind=prepared.input_kind, model=model_ref,
        model_inputs=prepared.model_inputs, n_outputs=_n_outputs(prepared), epochs=cfg.epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, reference_batch=cfg.reference_batch,
        warmup_epochs=cfg.warmup_epochs, weight_decay=cfg.weight_decay, patience=cfg.patience,
        seed=cfg.seed, threads_per_worker=max(1, cores() // workers), progress=progress,
        accumulate=cfg.accumulate, precision=cfg.precision,
        checkpoint_every=cfg.checkpoint_every, consistency_every=cfg.consistency_every,
        collective_timeout_s=cfg.collective_timeout, dp=dp,
        distill=None if teacher is None else teacher.spec_entry(),
    )
    (run_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    # the test split and the bundle live in the run folder too, so that a resumed run can be
    # finished and registered without the source data
    bundle = dataclasses.replace(_bundle(prepared, model_ref), feature_views=feature_views)
    write_json_atomic(run_dir / BUNDLE_FILE, bundle.to_json())
    for split in ("train", "val", "test"):
        arrays = prepared.splits[split]
        values = [arrays.x, arrays.x_cat, arrays.y] if spec.input_kind == "table" else [
            arrays.x, arrays.y,
        ]
        for fname, value in zip(spec.array_files(split), values, strict=True):
            if value is None:
                value = np.zeros((len(arrays.y), 0), np.int64)
            np.save(run_dir / DATA_DIR / fname, np.ascontiguousarray(value))
    if teacher is not None:
        spec = _write_teacher_outputs(run_dir, spec, teacher)
    spec.write(run_dir)  # written last: a run folder with a spec is complete
    return spec


def _write_teacher_outputs(run_dir: Path, spec: TrainSpec, teacher: Teacher) -> TrainSpec:
    """The teacher's outputs on every row of every split, beside the arrays (row i for row i);
    the spec records how long that took."""
    started = time.perf_counter()
    for split in ("train", "val", "test"):
        *inputs, _ = (np.load(run_dir / DATA_DIR / f, mmap_mode="r")
                      for f in spec.array_files(split))
        np.save(run_dir / DATA_DIR / spec.teacher_file(split), teacher.outputs(inputs))
    seconds = time.perf_counter() - started
    return dataclasses.replace(spec, distill={**(spec.distill or {}),
                                              "precompute_seconds": round(seconds, 4)})


def _n_outputs(prepared: PreparedData) -> int:
    return 1 if prepared.task == "regression" else prepared.n_classes


def worker_command(run_dir: Path, workers: int, max_restarts: int = 0) -> list[str]:
    """The torchrun command line that starts ``workers`` ranks on this machine."""
    return torchrun_command(run_dir, workers, max_restarts)


def _launch(
    run_dir: Path, workers: int, max_restarts: int, show_progress: bool,
    nodes: Rendezvous | None = None,
) -> None:
    (run_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    log_path = run_dir / LOG_DIR / "workers.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            torchrun_command(run_dir, workers, max_restarts, nodes), stdout=log,
            stderr=subprocess.STDOUT, env=agent_environment(workers, nodes),
            stdin=subprocess.DEVNULL,
        )
        try:
            _follow(proc, run_dir / OUTPUTS_DIR / PROGRESS_FILE, show_progress)
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
    if proc.returncode != 0:
        message = _failure_message(run_dir, proc.returncode, log_path)
        if nodes is not None:
            message += (
                f". A rank on another node may have failed first: see RUN/logs/"
                f"workers-node-K.log in that node's run folder (job '{nodes.job}')"
            )
        raise TrainingError(message)


def _follow(proc: subprocess.Popen[bytes], progress_file: Path, show: bool) -> None:
    if not (show and sys.stderr.isatty()):
        proc.wait()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("[bold]train[/] {task.description}"), BarColumn(),
        TextColumn("{task.fields[rate]:>8.0f} samples/s"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    ) as bar:
        task = bar.add_task("starting workers", total=None, rate=0.0)
        while proc.poll() is None:
            time.sleep(0.25)
            try:
                state = json.loads(progress_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            bar.update(
                task, completed=state["steps"], total=state["total"],
                rate=state["samples_per_s"], description=state["text"],
            )


def _failure_message(run_dir: Path, returncode: int, log_path: Path) -> str:
    errors = []
    for path in sorted((run_dir / OUTPUTS_DIR).glob("error-rank*.json")):
        info = json.loads(path.read_text(encoding="utf-8"))
        errors.append(f"rank {info['rank']}: {info['type']}: {info['message']}")
    why = "; ".join(errors) if errors else f"the worker group exited with code {returncode}"
    return f"training failed — {why}. Workers' output: {log_path}"


def _read_outputs(run_dir: Path) -> dict[str, Any]:
    out = run_dir / OUTPUTS_DIR
    try:
        return {
            "history": json.loads((out / HISTORY_FILE).read_text(encoding="utf-8")),
            "result": json.loads((out / RESULT_FILE).read_text(encoding="utf-8")),
        }
    except (OSError, ValueError) as exc:
        raise TrainingError(f"rank 0 left no complete outputs in {out}: {exc}") from None


def _bundle(prepared: PreparedData, model_ref: str) -> ModelBundle:
    return ModelBundle(
        task=prepared.task, input_kind=prepared.input_kind, model=model_ref,
        model_inputs=dict(prepared.model_inputs), n_outputs=_n_outputs(prepared),
        classes=list(prepared.classes),
        schema=prepared.schema.to_json() if prepared.schema is not None else None,
        preprocessor=prepared.preprocessor, target_encoder=dict(prepared.target_encoder),
        fingerprints=dict(prepared.fingerprints),
    )


__all__ = ["TrainResult", "test_metrics", "train", "train_unregistered", "worker_command"]
