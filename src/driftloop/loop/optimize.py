"""``driftloop models optimize NAME VERSION``: measure each runtime here and pick one.

For every runtime that applies (:func:`default_candidates`: eager fp32 torch, torch int8 while
torch still has it, ONNX fp32, ONNX int8) it measures on this machine

- **latency at batch 1**: ``calls`` single-row calls per round, every sample kept (µs), p50/p99;
- **time of a large batch** (``batch`` rows, 1024 by default) once per round, as rows/s;
- **size on disk** of what the runtime runs (weights, ONNX bytes, int8 tensors);
- **the metric on the test split** with its bootstrap interval, and the **paired** difference
  with fp32 on the same rows (:func:`driftloop.evaluate.paired.paired_difference`).

Runtimes are timed in interleaved **rounds** (each round in a fresh random order), so a burst of
noise on a shared machine hits them all alike; each round gives one ratio per runtime against
fp32 *of the same round* (median of its batch-1 calls over fp32's), and the ratio's interval is
a bootstrap over rounds of their geometric mean.

The decision (written into every report as ``criterion``): a runtime is **eligible** when

1. the upper bound of its batch-1 latency ratio to fp32 is below 1 (faster, beyond the noise);
2. the lower bound of its large-batch time ratio is at most 1 (not shown slower in bulk);
3. the upper bound of its paired metric drop against fp32 is at most ``max_drop``.

The recommendation is the eligible runtime with the lowest latency ratio, and fp32 ``torch``
when none is eligible — so int8 is refused wherever it is not measurably faster here.

Examples
--------
>>> import numpy as np
>>> log_ratio_interval(np.log([0.5, 0.52, 0.49, 0.51, 0.5]), n_resamples=200,
...                    confidence=0.95, seed=0).high < 1
True
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.evaluate.intervals import Interval, bootstrap_interval, metric_intervals
from driftloop.evaluate.metrics import METRICS
from driftloop.evaluate.paired import PAIRED_METRICS, RowOutcomes, paired_difference
from driftloop.evaluate.report import evaluation_arrays
from driftloop.models import LoadedModel
from driftloop.registry import Registry
from driftloop.registry.runtime_choice import apply_runtime, record_optimization
from driftloop.serve.runtimes import (
    Int8Runtime,
    OnnxRuntime,
    Runtime,
    TorchRuntime,
    finish,
    torch_int8_available,
)
from driftloop.store import VersionRecord
from driftloop.train.spec import DATA_DIR, SPEC_FILE, TrainSpec

BASELINE = "torch"
CRITERION = (
    "eligible: upper bound of the batch-1 latency ratio to fp32 torch < 1, lower bound of the "
    "large-batch time ratio <= 1, and upper bound of the paired metric drop <= max_drop; "
    "recommended: the eligible runtime with the lowest latency ratio, else torch"
)


@dataclass(frozen=True)
class Candidate:
    """A runtime to measure and the bytes on disk of what it runs."""

    runtime: Runtime
    size_bytes: int

    @property
    def name(self) -> str:
        return self.runtime.name


@dataclass(frozen=True)
class Arrays:
    """The rows the runtimes are measured on: preprocessed inputs and the target."""

    x: np.ndarray
    x_cat: np.ndarray | None
    y: np.ndarray
    source: str

    @property
    def rows(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.x[index], None if self.x_cat is None else self.x_cat[index]


def default_candidates(loaded: LoadedModel, weights_bytes: int) -> list[Candidate]:
    """fp32 torch, torch int8 (while torch has it), ONNX fp32 and ONNX int8 of ``loaded``.

    int8 applies only to a model with ``nn.Linear`` layers (all built-in ones have them).
    """
    bundle = loaded.bundle
    inputs = bundle.model_inputs
    onnx_args = {"n_numeric": int(inputs.get("n_numeric", 0)),
                 "n_cat": len(inputs.get("cardinalities", [])), "shape": inputs.get("shape")}
    found = [Candidate(TorchRuntime(loaded.module, bundle.input_kind), weights_bytes)]
    if torch_int8_available():
        int8 = Int8Runtime(loaded.module, bundle.input_kind)
        found.append(Candidate(int8, _module_bytes(int8.module)))
    for int8_onnx in (False, True):
        onnx = OnnxRuntime(loaded.module, bundle.input_kind, int8=int8_onnx, **onnx_args)
        found.append(Candidate(onnx, len(onnx.model_bytes)))
    return found


def _module_bytes(module: Any) -> int:
    """Bytes of a (quantised) module's tensors: int8 weights count 1 byte an element."""
    import torch

    total = 0
    for value in module.state_dict().values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, tuple):  # packed (weight, bias) of a dynamic quantised linear
            total += sum(v.numel() * v.element_size() for v in value
                         if isinstance(v, torch.Tensor))
    return total


def measured_rows(registry: Registry, record: VersionRecord, loaded: LoadedModel,
                data: str | os.PathLike[str] | pd.DataFrame | None = None,
                target: str | None = None) -> Arrays:
    """``data`` preprocessed as the version was trained, or else its own test split rebuilt
    from its run folder (``RUN/data/test_*.npy``). Regression targets are on the original
    scale."""
    if data is not None:
        x, x_cat, y = evaluation_arrays(data, loaded, target)
        return Arrays(x, x_cat, y, str(data) if not isinstance(data, pd.DataFrame) else "data")
    ref = f"{record.model_name}:{record.version}"
    run_dir = None if record.run_id is None else Path(registry.store.get_run(record.run_id).run_dir)
    if run_dir is None or not (run_dir / SPEC_FILE).is_file() or not (run_dir / DATA_DIR).is_dir():
        raise UsageError(f"{ref} has no run folder with its test split (registered without "
                         "`driftloop train`, or the folder was removed); pass --data FILE with "
                         "rows it never trained on.")
    spec = TrainSpec.read(run_dir)
    arrays = [np.load(run_dir / DATA_DIR / n) for n in spec.array_files("test")]
    x, x_cat, y = (arrays[0], arrays[1], arrays[2]) if len(arrays) == 3 else (
        arrays[0], None, arrays[1])
    if len(y) == 0:
        raise UsageError(f"the test split of {ref} is empty; pass --data FILE.")
    return Arrays(x, x_cat, loaded.to_original_scale(y) if loaded.task == "regression" else y,
                  "test split")


def paired_metric(task: str, metric: str | None) -> str:
    """The metric compared (accuracy for classifiers, rmse for regression by default).

    >>> paired_metric("binary", None), paired_metric("regression", "mae")
    ('accuracy', 'mae')
    >>> paired_metric("regression", "accuracy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: metric 'accuracy' does not apply to a regression model; ...
    """
    kind = "residual" if task == "regression" else "correct"
    allowed = [m.name for m in PAIRED_METRICS.values() if m.kind == kind]
    chosen = metric or allowed[0]
    if chosen not in allowed:
        raise UsageError(f"metric '{chosen}' does not apply to a {task} model; use one of "
                         f"{', '.join(allowed)}.")
    return chosen


def log_ratio_interval(log_ratios: np.ndarray, *, n_resamples: int, confidence: float,
                       seed: int) -> Interval:
    """Geometric mean of per-round ratios and its bootstrap interval (rounds resampled)."""
    return bootstrap_interval(lambda a: float(np.exp(np.mean(a))), np.asarray(log_ratios),
                              n_resamples=n_resamples, confidence=confidence, seed=seed)


def time_rounds(candidates: Sequence[Candidate], arrays: Arrays, *, rounds: int, calls: int,
                batch: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Interleaved timing: per runtime, ``rounds × calls`` batch-1 seconds and ``rounds``
    large-batch seconds; each round runs the runtimes in a fresh random order."""
    rng = np.random.default_rng(seed)
    singles = [arrays.take(np.array([i % arrays.rows])) for i in range(calls)]
    bulk = arrays.take(np.resize(np.arange(arrays.rows), batch))
    for c in candidates:  # warm up: first calls allocate, compile kernels, fill caches
        for x, x_cat in singles[:3]:
            c.runtime.logits(x, x_cat)
        c.runtime.logits(*bulk)
    one = {c.name: np.zeros((rounds, calls)) for c in candidates}
    large = {c.name: np.zeros(rounds) for c in candidates}
    clock = time.perf_counter
    for r in range(rounds):
        for k in rng.permutation(len(candidates)):
            c = candidates[k]
            for j, (x, x_cat) in enumerate(singles):
                start = clock()
                c.runtime.logits(x, x_cat)
                one[c.name][r, j] = clock() - start
            start = clock()
            c.runtime.logits(*bulk)
            large[c.name][r] = clock() - start
    return {c.name: {"one": one[c.name], "large": large[c.name]} for c in candidates}


def optimize_version(
    registry: Registry,
    record: VersionRecord,
    *,
    max_drop: float | None = None,
    metric: str | None = None,
    data: str | os.PathLike[str] | pd.DataFrame | None = None,
    target: str | None = None,
    candidates: Sequence[Candidate] | None = None,
    rounds: int = 30,
    calls: int = 20,
    batch: int = 1024,
    settings: Settings | None = None,
    store: bool = True,
) -> dict[str, Any]:
    """Measure every runtime of ``record`` (see the module docstring); the report as JSON,
    stored with the version (audited ``runtime_optimize``) unless ``store=False``.

    ``candidates`` replaces :func:`default_candidates` (its first is the fp32 baseline and
    must be named ``torch``).
    """
    settings = settings or registry.settings
    cfg = settings.evaluate
    bound = settings.serve.optimize_max_drop if max_drop is None else max_drop
    if bound < 0:
        raise UsageError(f"--max-drop must be 0 or more (a drop of the metric). Got {bound}.")
    for name, value, least in (("rounds", rounds, 3), ("calls", calls, 1), ("batch", batch, 1)):
        if value < least:
            raise UsageError(f"{name} must be {least} or more. Got {value}.")
    loaded = registry.load(record.model_name, record.version)
    chosen_metric = paired_metric(record.task, metric)
    arrays = measured_rows(registry, record, loaded, data, target)
    found = list(candidates) if candidates is not None else default_candidates(
        loaded, record.size_bytes)
    if not found or found[0].name != BASELINE:
        raise UsageError(f"the first runtime measured must be the fp32 baseline '{BASELINE}'.")
    timings = time_rounds(found, arrays, rounds=rounds, calls=calls, batch=batch, seed=cfg.seed)
    outputs = {c.name: _outputs(c.runtime, arrays, loaded, batch) for c in found}
    base = timings[BASELINE]
    base_outcomes = RowOutcomes.from_predictions(record.task, arrays.y, outputs[BASELINE])
    stats = {"n_resamples": cfg.resamples, "confidence": cfg.confidence, "seed": cfg.seed}
    rows = []
    for c in found:
        t = timings[c.name]
        latency = log_ratio_interval(
            np.log(np.median(t["one"], axis=1)) - np.log(np.median(base["one"], axis=1)),
            **stats)
        bulk = log_ratio_interval(np.log(t["large"]) - np.log(base["large"]), **stats)
        outcome = RowOutcomes.from_predictions(record.task, arrays.y, outputs[c.name])
        paired = paired_difference(chosen_metric, outcome, base_outcomes, **stats)
        value = metric_intervals(record.task, arrays.y, outputs[c.name],
                                 metrics=[METRICS[chosen_metric]], **stats)[chosen_metric]
        rows.append(_row(c, t, latency, bulk, value, paired, bound, batch))
    eligible = [r for r in rows if r["eligible"]]
    best = min(eligible, key=lambda r: r["latency_ratio"]["value"], default=None)
    report = {
        "model": record.model_name, "version": record.version, "task": record.task,
        "metric": chosen_metric, "max_drop": bound, "data": arrays.source,
        "rows": arrays.rows, "rounds": rounds, "calls_per_round": calls, "batch": batch,
        "confidence": cfg.confidence, "criterion": CRITERION, "baseline": BASELINE,
        "recommended": BASELINE if best is None else best["name"],
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "runtimes": rows,
    }
    if store:
        report["report_sha256"] = record_optimization(registry.audit, registry.artifacts,
                                                      record, report, actor=registry.actor)
    return report


def apply_recommendation(registry: Registry, record: VersionRecord, report: dict[str, Any], *,
                         reason: str | None = None) -> dict[str, Any]:
    """Record ``report``'s recommended runtime for ``record`` (audited ``runtime_apply``);
    the report must be stored (``store=True``) and about this version."""
    sha = report.get("report_sha256")
    if sha is None or (report["model"], report["version"]) != (record.model_name,
                                                              record.version):
        raise UsageError("apply a stored optimisation report of this version (run "
                         "`driftloop models optimize NAME VERSION --apply`).")
    runtime = str(report["recommended"])
    why = (reason or "").strip() or (f"recommended by models optimize (report {sha[:12]}, "
                                     f"{report['metric']} max drop {report['max_drop']:g})")
    entry = apply_runtime(registry.audit, record, runtime, sha, actor=registry.actor,
                          reason=why)
    return {"runtime": runtime, "report_sha256": sha, "audit_seq": entry.seq, "reason": why}


def _outputs(runtime: Runtime, arrays: Arrays, loaded: LoadedModel, batch: int) -> np.ndarray:
    """What the server would answer for every row: probabilities, or values on the target's
    original scale."""
    parts = []
    for start in range(0, arrays.rows, batch):
        index = np.arange(start, min(start + batch, arrays.rows))
        parts.append(finish(loaded.task, runtime.logits(*arrays.take(index)),
                            loaded.temperature))
    return loaded.to_original_scale(np.concatenate(parts))


def _row(c: Candidate, t: dict[str, np.ndarray], latency: Interval, bulk: Interval,
         value: Interval, paired: Any, bound: float, batch: int) -> dict[str, Any]:
    one_us = t["one"].ravel() * 1e6
    drop_high = -paired.low  # paired difference > 0 means better: its lowest is the worst drop
    refused = []
    if c.name != BASELINE:
        if not (latency.high is not None and latency.high < 1):
            refused.append(f"not faster than fp32 at batch 1 (latency ratio upper bound "
                           f"{_fmt(latency.high)} >= 1)")
        if bulk.low is not None and bulk.low > 1:
            refused.append(f"slower than fp32 at batch {batch} (time ratio lower bound "
                           f"{bulk.low:.3f} > 1)")
        if drop_high > bound:
            refused.append(f"metric drop upper bound {drop_high:.4f} > max drop {bound:g}")
    return {
        "name": c.name, "size_bytes": int(c.size_bytes),
        "latency_b1_us": {"p50": float(np.percentile(one_us, 50)),
                          "p99": float(np.percentile(one_us, 99)),
                          "samples": [round(float(v), 2) for v in one_us]},
        "latency_ratio": latency.to_json(),
        "throughput_rows_per_s": float(batch / np.median(t["large"])),
        "large_batch_ratio": bulk.to_json(),
        "metric": value.to_json(),
        "paired_vs_fp32": paired.to_json(),
        "drop_upper_bound": drop_high + 0.0,
        "eligible": c.name != BASELINE and not refused,
        "refused": refused,
    }


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


__all__ = [
    "BASELINE", "CRITERION", "Arrays", "Candidate", "apply_recommendation", "default_candidates",
    "log_ratio_interval",
    "optimize_version", "paired_metric", "measured_rows", "time_rounds",
]
