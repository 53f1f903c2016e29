"""Training throughput: driftloop's DDP workers against a hand-written DDP loop.

What is measured
    Training samples per second, over the training steps only, with ``workers`` CPU ranks
    (gloo, ``threads_per_worker`` threads each, as driftloop picks them).

    * ``driftloop``: ``driftloop.train(...)`` end to end; the figure is its own
      ``TrainResult.samples_per_s`` (the worker times each epoch's step loop).
    * ``plain_ddp_slicing`` / ``plain_ddp_dataloader``: ``benchmarks/plain_ddp.py`` started with
      ``torch.distributed.run`` on *that same run folder*: identical arrays, model, AdamW,
      LR scaling + warmup, per-worker batch, epochs, world size and threads. ``slicing`` keeps
      the arrays in memory and indexes one batch per step (the fastest hand-written loop);
      ``dataloader`` is the TensorDataset + DistributedSampler + DataLoader loop of tutorials.

What is not measured
    Start-up (process launch, rendezvous, imports), data preparation, validation, driftloop's
    end-of-epoch checkpoint, test evaluation and registration are all outside the timed
    region, in both. Early stopping is
    disabled (patience >= epochs) and ``epochs_run == epochs`` is checked, so both run the same
    number of steps.

Noise
    The repeats are interleaved (driftloop, plain slicing, plain dataloader, driftloop, ...) so
    that load on a shared machine hits every implementation alike; the summary is the median
    over repeats. ``ratio_*`` is median over median (the headline figure); ``paired_ratio_*`` is
    the median of the per-repeat ratios; ``median_epoch_ratio_*`` uses each run's median epoch
    instead of its total (less sensitive to a burst of load in one epoch). When the three
    disagree by more than a few per cent the machine was too noisy to call the result.

Data: ``make_classification`` (seeded), 30 numeric features plus 2 categorical columns (so the
embedding path runs), 80,000 rows by default (70 % of them train). The defaults (5 repeats,
8 epochs, batch 256 per worker, 2 workers) take about 4–5 minutes on 2 shared cores.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_train.py                    # 2 workers, batch 256
    .venv/bin/python benchmarks/bench_train.py --batch-size 256,64  # sweep: one summary each
    .venv/bin/python benchmarks/bench_train.py --repeats 3 --epochs 4 --no-dataloader  # quick

Prints JSON lines on stdout (one per measurement, then the summaries) and a short readable
summary on stderr. Always exits 0 (it is a measurement, not a test) unless a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = 0.97
PLAIN = Path(__file__).resolve().with_name("plain_ddp.py")


def make_table(rows: int, seed: int) -> pd.DataFrame:
    """A seeded binary-classification table: 30 numeric features and 2 categorical columns."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=30, n_informative=12, n_redundant=6, n_classes=2,
        flip_y=0.02, random_state=seed,
    )
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"num_{i}" for i in range(30)])
    rng = np.random.default_rng(seed)
    # categories that carry some signal, so the embeddings are really trained
    frame["region"] = np.where(y == 1, rng.integers(0, 8, rows), rng.integers(3, 11, rows))
    frame["region"] = "r" + frame["region"].astype(str)
    frame["product"] = "p" + rng.integers(0, 40, rows).astype(str)
    frame["label"] = np.where(y == 1, "yes", "no")
    return frame


def run_driftloop(
    frame: pd.DataFrame, home: Path, workers: int, epochs: int, batch: int
) -> tuple[float, float, Path]:
    from driftloop.config import Settings
    from driftloop.train.launcher import train

    settings = Settings.load(
        overrides={"home": str(home), "train": {"patience": epochs + 1000}},
        environ={}, cwd=home,
    )
    result = train(
        frame, "label", workers=workers, epochs=epochs, batch_size=batch, settings=settings,
        progress=True, name="bench",
    )
    if result.epochs_run != epochs:
        raise SystemExit(f"driftloop ran {result.epochs_run} epochs, not {epochs}: not comparable")
    if result.world_size != workers:
        raise SystemExit(f"driftloop ran with world size {result.world_size}, not {workers}")
    run_dir = Path(result.run_dir)
    history = json.loads((run_dir / "outputs" / "history.json").read_text())
    return float(result.samples_per_s), steady_rate(history_rows(run_dir), [
        float(epoch["seconds"]) for epoch in history
    ]), run_dir


def history_rows(run_dir: Path) -> int:
    return len(np.load(run_dir / "data" / "train_y.npy", mmap_mode="r"))


def steady_rate(rows: int, epoch_seconds: list[float]) -> float:
    """Samples/s of the median epoch: less sensitive to a burst of load on a shared machine."""
    return rows / statistics.median(epoch_seconds)


def run_plain(run_dir: Path, workers: int, loader: str) -> tuple[float, float]:
    spec = json.loads((run_dir / "spec.json").read_text())
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads_per_worker"]))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={workers}", "--max-restarts=0",
        str(PLAIN), "--run-dir", str(run_dir), "--loader", loader,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"plain_ddp.py --loader {loader} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    out = json.loads(lines[-1])
    result = json.loads((run_dir / "outputs" / "result.json").read_text())
    if (
        out["epochs"] != spec["epochs"] or out["world_size"] != workers
        or out["steps_per_epoch"] != result["steps_per_epoch"]
    ):
        raise SystemExit(f"plain_ddp.py ran a different setup than driftloop ({result}): {out}")
    return float(out["samples_per_s"]), steady_rate(out["train_rows"], out["epoch_seconds"])


def emit(record: dict[str, object]) -> None:
    print(json.dumps(record), flush=True)


def bench_one_batch(
    frame: pd.DataFrame, home: Path, args: argparse.Namespace, batch: int
) -> dict[str, object]:
    impls = ["driftloop", "plain_ddp_slicing"] + ([] if args.no_dataloader else [
        "plain_ddp_dataloader"
    ])
    figures: dict[str, list[float]] = {impl: [] for impl in impls}
    steady: dict[str, list[float]] = {impl: [] for impl in impls}
    train_rows = world = threads = None
    for rep in range(args.repeats):
        for impl in impls:
            if impl == "driftloop":
                rate, epoch_rate, run_dir = run_driftloop(
                    frame, home, args.workers, args.epochs, batch
                )
                spec = json.loads((run_dir / "spec.json").read_text())
                world, threads = args.workers, spec["threads_per_worker"]
                train_rows = history_rows(run_dir)
            else:
                rate, epoch_rate = run_plain(run_dir, args.workers, impl.removeprefix("plain_ddp_"))
            figures[impl].append(rate)
            steady[impl].append(epoch_rate)
            emit({
                "impl": impl, "repeat": rep, "batch_size": batch, "samples_per_s": rate,
                "median_epoch_samples_per_s": epoch_rate,
            })
    medians = {impl: statistics.median(v) for impl, v in figures.items()}
    steady_medians = {impl: statistics.median(v) for impl, v in steady.items()}
    for impl in impls:
        emit({
            "impl": impl, "batch_size": batch, "median_samples_per_s": medians[impl],
            "min_samples_per_s": min(figures[impl]), "max_samples_per_s": max(figures[impl]),
            "median_of_median_epoch_samples_per_s": steady_medians[impl],
        })

    def ratios(base: str) -> tuple[float | None, float | None]:
        if base not in figures:
            return None, None
        paired = [d / p for d, p in zip(figures["driftloop"], figures[base], strict=True)]
        return medians["driftloop"] / medians[base], statistics.median(paired)

    r_slice, p_slice = ratios("plain_ddp_slicing")
    r_dl, p_dl = ratios("plain_ddp_dataloader")
    s_slice = steady_medians["driftloop"] / steady_medians["plain_ddp_slicing"]
    s_dl = (
        steady_medians["driftloop"] / steady_medians["plain_ddp_dataloader"]
        if "plain_ddp_dataloader" in steady else None
    )
    summary = {
        "ratio_driftloop_over_plain_slicing": r_slice,
        "ratio_driftloop_over_plain_dataloader": r_dl,
        "paired_ratio_driftloop_over_plain_slicing": p_slice,
        "paired_ratio_driftloop_over_plain_dataloader": p_dl,
        "median_epoch_ratio_driftloop_over_plain_slicing": s_slice,
        "median_epoch_ratio_driftloop_over_plain_dataloader": s_dl,
        "target": TARGET,
        "meets_target": bool(r_slice is not None and r_slice >= TARGET),
        "world_size": world,
        "threads_per_worker": threads,
        "rows": args.rows,
        "train_rows": train_rows,
        "batch_size": batch,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "timed": "training steps only (no start-up, data preparation or validation)",
    }
    emit(summary)
    verdict = "meets" if summary["meets_target"] else "BELOW"
    print(
        f"[bench_train] batch {batch}/worker x {world} workers: driftloop "
        f"{medians['driftloop']:,.0f} samples/s, plain slicing "
        f"{medians['plain_ddp_slicing']:,.0f} (ratio {r_slice:.3f}, paired {p_slice:.3f}, "
        f"median-epoch {s_slice:.3f}; {verdict} the {TARGET} target)"
        + (f", plain DataLoader {medians['plain_ddp_dataloader']:,.0f} (ratio {r_dl:.3f})"
           if r_dl is not None else ""),
        file=sys.stderr, flush=True,
    )
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--batch-size", default="256",
        help="per-worker batch; a comma-separated list runs a sweep (e.g. 256,64)",
    )
    parser.add_argument("--rows", type=int, default=80_000, help="rows of the generated table")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-dataloader", action="store_true", help="skip the (slow) DataLoader baseline"
    )
    args = parser.parse_args()
    batches = [int(b) for b in str(args.batch_size).split(",") if b.strip()]

    emit({
        "benchmark": "train_throughput",
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "workers": args.workers, "epochs": args.epochs, "batch_sizes": batches,
        "rows": args.rows, "repeats": args.repeats,
        "timed": "training steps only, in every implementation",
    })
    started = time.perf_counter()
    frame = make_table(args.rows, args.seed)
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-") as tmp:
        for batch in batches:
            bench_one_batch(frame, Path(tmp), args, batch)
    print(f"[bench_train] done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
