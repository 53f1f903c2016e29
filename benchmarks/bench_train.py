"""Training throughput and overheads: driftloop's DDP workers against a hand-written DDP loop.

Setup (issue 3, "Performance, measured")
    A seeded synthetic regression table, 200,000 rows x 32 numeric features
    (``make_regression``; 70 % = 140,000 training rows), the MLP 32-256-256-1 of
    ``benchmarks/models.py`` (ReLU, no dropout, MSE), AdamW with driftloop's LR scaling and
    warmup, batch 256 per worker, early stopping off (patience 1000, ``epochs_run`` checked).

    ``driftloop.train(...)`` is called once, end to end, to prepare the data and write the run
    folder (``RUN/spec.json`` + ``RUN/data/*.npy``); its figures are printed as a cross-check
    (``impl: driftloop_train_api``) but are not in the medians. Every measured run then starts
    on *that same run folder*, with torchrun, either

    * ``driftloop``: driftloop's own worker,
      ``python -m torch.distributed.run --standalone --nproc-per-node N -m driftloop.train.worker
      --run-dir RUN`` (the command the launcher runs; ``RUN/checkpoints`` and ``RUN/outputs``
      are deleted before each run so it starts fresh), figures from ``RUN/outputs/result.json``;
    * ``plain_slicing`` / ``plain_dataloader``: ``benchmarks/plain_ddp.py`` (in-memory tensors
      indexed one batch per step / ``TensorDataset`` + ``DistributedSampler`` + ``DataLoader``).

    Before each run the bench rewrites ``RUN/spec.json`` (only ``threads_per_worker``,
    ``consistency_every``, ``checkpoint_every``, ``epochs``, ``batch_size``), so both sides read
    the same spec. Starting the worker directly, rather than through ``train()``, skips the
    ~30 s of data preparation, data check, evaluation and registration per run and lets the
    weak-scaling runs pin one thread per worker (``train()`` always picks cores // workers).

What is timed (the same in both)
    Training steps only, on rank 0: each optimiser step from the end of the previous one to the
    end of ``schedule.step()`` (``perf_counter``); samples/s = training rows x epochs / summed
    epoch step time. Start-up, validation, driftloop's end-of-epoch checkpoint and consistency
    check are outside it (their own costs are reported separately, part 4 and 5).

Parts (``--parts``, default all)
    throughput   driftloop vs plain slicing at 1 and 2 workers, threads as driftloop picks
                 them (cores // workers): samples/s, step p50/p95. Targets: p50 speed ratio
                 plain_p50 / driftloop_p50 >= 0.97; p95 overhead driftloop_p95 / plain_p95 - 1
                 <= 5 %.
    scaling      weak-scaling efficiency S(2) / (2 S(1)) with ONE thread per worker, driftloop
                 and plain. Target >= 0.85 on 2 cores.
    dataloader   plain DataLoader + DistributedSampler at 2 workers (what slicing buys).
    consistency  the parameter-checksum all-gather: seconds per call, per call / mean step, and
                 share of step time at the default (once per epoch; target <= 1 %); plus the
                 worst case, ``consistency_every=1`` (inside the timed steps) vs default.
    checkpoint   seconds per checkpoint save and share of an epoch's step time (default: one
                 save per epoch end).
    whole        (only when named: ``--parts whole``) the whole ``driftloop train`` command in a
                 fresh process (CSV-free: a Parquet file; every check and the full evaluation
                 run) against the whole raw DDP script (``torchrun plain_ddp.py`` on the same
                 prepared arrays), wall time from the parent, median of ``--repeats``, bytecode
                 compiled first; driftloop's phases (``train --json``) beside it. Target:
                 ratio <= 2 (issue 21).

Noise
    The runs of one repeat are interleaved (every configuration once, the order reversed on odd
    repeats) so load on a shared machine hits every implementation alike; summaries are medians
    over repeats (per-step p50/p95 are each run's, then the median over repeats). ``paired_*``
    is the median of per-repeat ratios. The load average is sampled after every run.

Defaults: 5 repeats x 2 epochs x 8 configurations (~6 minutes on 2 shared cores). Fewer epochs
than the previous benchmark's 8 because each run is a separate torchrun start-up (~7 s) and
there are 8 configurations; 2 epochs is still 548-1,094 timed steps per run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_train.py                          # everything
    .venv/bin/python benchmarks/bench_train.py --parts throughput,scaling
    .venv/bin/python benchmarks/bench_train.py --repeats 1 --epochs 2   # quick smoke
    .venv/bin/python benchmarks/bench_train.py --parts whole --workers 2 --repeats 5

Prints JSON lines on stdout (one per run, one per configuration's medians, then one summary
per batch size with every ratio and target) and a readable summary on stderr. Exits 0 unless a
run fails (it is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
PLAIN = BENCH_DIR / "plain_ddp.py"
MODEL = "models:mlp_32_256_256_1"
PARTS = ("throughput", "scaling", "dataloader", "consistency", "checkpoint")
EXTRA_PARTS = ("whole",)  # only when named: `--parts whole`
WHOLE_TARGET = 2.0  # issue 21: the whole `driftloop train` <= 2x the raw DDP script's wall time
TARGETS = {
    "p50_speed_ratio": 0.97,        # plain_p50 / driftloop_p50, at least
    "p95_overhead": 0.05,           # driftloop_p95 / plain_p95 - 1, at most
    "weak_scaling_efficiency": 0.85,  # S(2) / (2 S(1)), one thread per worker, at least
    "consistency_share": 0.01,      # checksum time / step time at the default, at most
}

# the model factory must be importable here (train() evaluates the model in this process) and
# in the workers (the launcher forwards sys.path; the direct runs get PYTHONPATH below)
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))


@dataclass(frozen=True)
class Config:
    impl: str  # driftloop | plain_slicing | plain_dataloader
    workers: int
    threads: int
    consistency_every: int = 0

    @property
    def key(self) -> str:
        extra = f"_consistency{self.consistency_every}" if self.consistency_every else ""
        return f"{self.impl}_w{self.workers}_t{self.threads}{extra}"


def cores() -> int:
    """What the launcher uses to pick threads per worker."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make_table(rows: int, seed: int) -> pd.DataFrame:
    """A seeded regression table: 32 numeric features and a float target."""
    from sklearn.datasets import make_regression

    x, y = make_regression(
        n_samples=rows, n_features=32, n_informative=16, noise=10.0, random_state=seed
    )
    frame = pd.DataFrame(x.astype(np.float32), columns=[f"num_{i}" for i in range(32)])
    frame["target"] = y.astype(np.float32)
    return frame


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def prepare_run(frame: pd.DataFrame, home: Path, workers: int, epochs: int,
                batch: int) -> Path:
    """``driftloop.train`` end to end once: the run folder every measured run starts on."""
    from driftloop.config import Settings
    from driftloop.train.launcher import train

    settings = Settings.load(
        overrides={"home": str(home), "train": {"patience": epochs + 1000}},
        environ={}, cwd=home,
    )
    result = train(
        frame, "target", model=MODEL, workers=workers, epochs=epochs, batch_size=batch,
        settings=settings, progress=True, name="bench",
    )
    if result.epochs_run != epochs or result.world_size != workers:
        raise SystemExit(f"train() ran {result.epochs_run} epochs x {result.world_size} workers")
    run_dir = Path(result.run_dir)
    out = json.loads((run_dir / "outputs" / "result.json").read_text())
    emit({
        "impl": "driftloop_train_api", "note": "setup run, cross-check only, not in medians",
        "workers": workers, "batch_size": batch, "samples_per_s": result.samples_per_s,
        "step_seconds_p50": out["step_seconds_p50"], "step_seconds_p95": out["step_seconds_p95"],
        "duration_s": result.duration_s, "task": result.task,
    })
    return run_dir


def write_spec(run_dir: Path, base: dict[str, Any], cfg: Config, epochs: int, batch: int) -> None:
    spec = dict(base, threads_per_worker=cfg.threads, consistency_every=cfg.consistency_every,
                checkpoint_every=0, epochs=epochs, batch_size=batch,
                patience=epochs + 1000)
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=1, sort_keys=True))


def torchrun(workers: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={workers}", "--max-restarts=0"]


def run_env(threads: int) -> dict[str, str]:
    return dict(
        os.environ, OMP_NUM_THREADS=str(threads),
        PYTHONPATH=os.pathsep.join(p for p in [str(BENCH_DIR), *sys.path] if p),
    )


def run_config(run_dir: Path, cfg: Config, epochs: int, batch: int,
               train_rows: int) -> dict[str, Any]:
    if cfg.impl == "driftloop":
        for sub in ("checkpoints", "outputs"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
        cmd = [*torchrun(cfg.workers), "-m", "driftloop.train.worker", "--run-dir", str(run_dir)]
    else:
        cmd = [*torchrun(cfg.workers), str(PLAIN), "--run-dir", str(run_dir),
               "--loader", cfg.impl.removeprefix("plain_")]
    proc = subprocess.run(cmd, env=run_env(cfg.threads), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"{cfg.key} failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    steps = math.ceil(math.ceil(train_rows / cfg.workers) / batch)
    if cfg.impl == "driftloop":
        out = json.loads((run_dir / "outputs" / "result.json").read_text())
        history = json.loads((run_dir / "outputs" / "history.json").read_text())
        epoch_seconds = [float(e["seconds"]) for e in history]
        if out["epochs_run"] != epochs or out["world_size"] != cfg.workers:
            raise SystemExit(f"{cfg.key}: driftloop ran {out}")
        extra = {k: out[k] for k in (
            "checkpoints", "checkpoint_seconds_mean", "consistency_checks",
            "consistency_seconds_mean",
        )}
    else:
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            raise SystemExit(f"{cfg.key} printed no result:\n{proc.stderr[-4000:]}")
        out = json.loads(lines[-1])
        epoch_seconds = out["epoch_seconds"]
        if out["epochs"] != epochs or out["world_size"] != cfg.workers:
            raise SystemExit(f"{cfg.key}: plain ran {out}")
        extra = {}
    if out["steps_per_epoch"] != steps or out["optimizer_steps"] != steps * epochs:
        raise SystemExit(f"{cfg.key}: {out['optimizer_steps']} steps, expected {steps * epochs}")
    return {
        "samples_per_s": float(out["samples_per_s"]),
        "train_seconds": float(out["train_seconds"]),
        "median_epoch_seconds": statistics.median(epoch_seconds),
        "step_seconds_p50": float(out["step_seconds_p50"]),
        "step_seconds_p95": float(out["step_seconds_p95"]),
        "step_seconds_mean": float(out["step_seconds_mean"]),
        "optimizer_steps": int(out["optimizer_steps"]),
        **extra,
    }


def configs_for(parts: list[str], workers: list[int], ncores: int) -> list[Config]:
    wmax = max(workers)
    picked = {w: max(1, ncores // w) for w in workers}  # what driftloop picks
    wanted: list[Config] = []
    if "throughput" in parts:
        for w in workers:
            wanted += [Config("driftloop", w, picked[w]), Config("plain_slicing", w, picked[w])]
    if "dataloader" in parts:
        wanted += [Config("driftloop", wmax, picked[wmax]),
                   Config("plain_slicing", wmax, picked[wmax]),
                   Config("plain_dataloader", wmax, picked[wmax])]
    if "scaling" in parts:
        for w in sorted({1, wmax}):
            wanted += [Config("driftloop", w, 1), Config("plain_slicing", w, 1)]
    if "consistency" in parts:
        wanted += [Config("driftloop", wmax, picked[wmax]),
                   Config("driftloop", wmax, picked[wmax], consistency_every=1)]
    if "checkpoint" in parts:
        wanted += [Config("driftloop", w, picked[w]) for w in workers]
    return list(dict.fromkeys(wanted))  # unique, first-seen order


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def summarise(results: dict[Config, list[dict[str, Any]]], parts: list[str], workers: list[int],
              ncores: int, args: argparse.Namespace, batch: int,
              loads: list[float]) -> dict[str, Any]:
    wmax = max(workers)
    picked = {w: max(1, ncores // w) for w in workers}
    by_key = {cfg.key: runs for cfg, runs in results.items()}

    def get(impl: str, w: int, t: int, ce: int = 0) -> list[dict[str, Any]]:
        return by_key[Config(impl, w, t, ce).key]

    summary: dict[str, Any] = {"summary": True, "batch_size": batch, "targets": TARGETS}
    lines: list[str] = []
    if "throughput" in parts:
        for w in workers:
            d, p = get("driftloop", w, picked[w]), get("plain_slicing", w, picked[w])
            speed = med(p, "step_seconds_p50") / med(d, "step_seconds_p50")
            p95 = med(d, "step_seconds_p95") / med(p, "step_seconds_p95") - 1
            ratio = med(d, "samples_per_s") / med(p, "samples_per_s")
            paired = statistics.median(
                a["samples_per_s"] / b["samples_per_s"] for a, b in zip(d, p, strict=True))
            paired_p50 = statistics.median(
                b["step_seconds_p50"] / a["step_seconds_p50"] for a, b in zip(d, p, strict=True))
            summary[f"w{w}"] = {
                "threads_per_worker": picked[w],
                "driftloop_samples_per_s": med(d, "samples_per_s"),
                "plain_samples_per_s": med(p, "samples_per_s"),
                "driftloop_step_ms_p50": 1e3 * med(d, "step_seconds_p50"),
                "driftloop_step_ms_p95": 1e3 * med(d, "step_seconds_p95"),
                "plain_step_ms_p50": 1e3 * med(p, "step_seconds_p50"),
                "plain_step_ms_p95": 1e3 * med(p, "step_seconds_p95"),
                "samples_ratio_driftloop_over_plain": ratio,
                "paired_samples_ratio": paired,
                "p50_speed_ratio": speed, "paired_p50_speed_ratio": paired_p50,
                "meets_p50_target": speed >= TARGETS["p50_speed_ratio"],
                "p95_overhead": p95, "meets_p95_target": p95 <= TARGETS["p95_overhead"],
            }
            lines.append(
                f"{w} worker(s) x {picked[w]} thread(s): driftloop {med(d, 'samples_per_s'):,.0f}"
                f" vs plain {med(p, 'samples_per_s'):,.0f} samples/s (ratio {ratio:.3f}); p50 "
                f"speed ratio {speed:.3f} (target >= 0.97: "
                f"{'met' if speed >= 0.97 else 'NOT met'}); p95 overhead {p95:+.1%} (target <= "
                f"5%: {'met' if p95 <= 0.05 else 'NOT met'})")
    if "scaling" in parts and wmax > 1:
        eff = {}
        for impl in ("driftloop", "plain_slicing"):
            one, many = get(impl, 1, 1), get(impl, wmax, 1)
            eff[impl] = med(many, "samples_per_s") / (wmax * med(one, "samples_per_s"))
            summary[f"weak_scaling_{impl}"] = {
                "samples_per_s_w1_t1": med(one, "samples_per_s"),
                f"samples_per_s_w{wmax}_t1": med(many, "samples_per_s"),
                "efficiency": eff[impl],
                "meets_target": eff[impl] >= TARGETS["weak_scaling_efficiency"],
            }
        lines.append(
            f"weak scaling 1 -> {wmax} workers, 1 thread each: driftloop "
            f"{eff['driftloop']:.3f}, plain {eff['plain_slicing']:.3f} (target >= 0.85)")
    if "dataloader" in parts:
        d, s = get("driftloop", wmax, picked[wmax]), get("plain_slicing", wmax, picked[wmax])
        dl = get("plain_dataloader", wmax, picked[wmax])
        summary["dataloader"] = {
            "workers": wmax,
            "plain_dataloader_samples_per_s": med(dl, "samples_per_s"),
            "plain_dataloader_step_ms_p50": 1e3 * med(dl, "step_seconds_p50"),
            "plain_dataloader_step_ms_p95": 1e3 * med(dl, "step_seconds_p95"),
            "ratio_driftloop_over_dataloader": med(d, "samples_per_s") / med(dl, "samples_per_s"),
            "ratio_plain_slicing_over_dataloader":
                med(s, "samples_per_s") / med(dl, "samples_per_s"),
        }
        lines.append(
            f"DataLoader+DistributedSampler ({wmax} workers): {med(dl, 'samples_per_s'):,.0f} "
            f"samples/s; driftloop is "
            f"{summary['dataloader']['ratio_driftloop_over_dataloader']:.2f}x, plain slicing "
            f"{summary['dataloader']['ratio_plain_slicing_over_dataloader']:.2f}x")
    if "consistency" in parts and wmax > 1:
        base = get("driftloop", wmax, picked[wmax])
        every = get("driftloop", wmax, picked[wmax], 1)
        call = med(base, "consistency_seconds_mean")
        share = statistics.median(
            r["consistency_checks"] * r["consistency_seconds_mean"] / r["train_seconds"]
            for r in base)
        worst = med(every, "samples_per_s") / med(base, "samples_per_s")
        summary["consistency"] = {
            "workers": wmax,
            "seconds_per_check": call,
            "seconds_per_check_every_step": med(every, "consistency_seconds_mean"),
            "check_over_mean_step": call / med(base, "step_seconds_mean"),
            "checks_per_run_default": base[0]["consistency_checks"],
            "share_of_step_time_default": share,
            "meets_target": share <= TARGETS["consistency_share"],
            "samples_per_s_default": med(base, "samples_per_s"),
            "samples_per_s_every_step": med(every, "samples_per_s"),
            "throughput_every_step_over_default": worst,
            "step_ms_p50_every_step": 1e3 * med(every, "step_seconds_p50"),
        }
        lines.append(
            f"consistency check: {1e3 * call:.2f} ms per call = "
            f"{summary['consistency']['check_over_mean_step']:.2f} mean steps; at the default "
            f"(once per epoch) {share:.3%} of step time (target <= 1%: "
            f"{'met' if share <= 0.01 else 'NOT met'}); every step: throughput x{worst:.3f}")
    if "checkpoint" in parts:
        ck = {}
        for w in workers:
            runs = get("driftloop", w, picked[w])
            save = med(runs, "checkpoint_seconds_mean")
            share = statistics.median(
                r["checkpoints"] * r["checkpoint_seconds_mean"] / r["train_seconds"]
                for r in runs)
            ck[f"w{w}"] = {"seconds_per_save": save, "saves_per_run": runs[0]["checkpoints"],
                           "share_of_epoch_step_time": share}
            lines.append(f"checkpoint ({w} worker(s)): {1e3 * save:.1f} ms per save = "
                         f"{share:.2%} of an epoch's step time (one save per epoch)")
        summary["checkpoint"] = ck
    summary.update(
        cores=ncores, workers=workers, epochs=args.epochs, repeats=args.repeats, rows=args.rows,
        parts=parts, timed="training steps only (rank 0; no start-up, validation, checkpoint)",
        load_average_1m_min_max=[min(loads), max(loads)],
    )
    emit(summary)
    for line in lines:
        print(f"[bench_train] batch {batch}: {line}", file=sys.stderr, flush=True)
    return summary


def bench_one_batch(frame: pd.DataFrame, home: Path, args: argparse.Namespace, batch: int,
                    parts: list[str], workers: list[int]) -> dict[str, Any]:
    ncores = cores()
    run_dir = prepare_run(frame, home / f"b{batch}", max(workers), args.epochs, batch)
    base = json.loads((run_dir / "spec.json").read_text())
    train_rows = len(np.load(run_dir / "data" / "train_y.npy", mmap_mode="r"))
    configs = configs_for(parts, workers, ncores)
    results: dict[Config, list[dict[str, Any]]] = {cfg: [] for cfg in configs}
    loads: list[float] = []
    try:
        for rep in range(args.repeats):
            for cfg in configs if rep % 2 == 0 else configs[::-1]:
                write_spec(run_dir, base, cfg, args.epochs, batch)
                record = run_config(run_dir, cfg, args.epochs, batch, train_rows)
                results[cfg].append(record)
                loads.append(load_average())
                emit({"config": cfg.key, "impl": cfg.impl, "workers": cfg.workers,
                      "threads_per_worker": cfg.threads,
                      "consistency_every": cfg.consistency_every, "repeat": rep,
                      "batch_size": batch, "load_average_1m": loads[-1], **record})
    finally:
        (run_dir / "spec.json").write_text(json.dumps(base, indent=1, sort_keys=True))
    for cfg, runs in results.items():
        emit({"config": cfg.key, "median": True, "batch_size": batch, "runs": len(runs),
              **{k: med(runs, k) for k in runs[0]}})
    return summarise(results, parts, workers, ncores, args, batch, loads)


# --- part "whole" (issue 21, "time to a registered model") -------------------------------------
# The whole `driftloop train` command as a user runs it (a fresh process: imports, read and
# prepare, data check, worker start-up and epochs, calibration and test-split evaluation,
# registration), wall time from the parent, against the whole raw DDP script
# (`torchrun plain_ddp.py`: imports, reading the prepared arrays, the epochs; no data check, no
# evaluation). Runs alternate (driftloop, raw, raw, driftloop, ...) so load hits both alike.


def _whole_driftloop(home: Path, data: Path, workers: int, epochs: int,
                     batch: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "driftloop", "train", str(data), "--target", "target",
           "--model", MODEL, "--workers", str(workers), "--epochs", str(epochs),
           "--batch-size", str(batch), "--json"]
    started = time.perf_counter()
    env = {k: v for k, v in run_env(1).items() if k != "OMP_NUM_THREADS"}  # the launcher's own
    proc = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"driftloop train failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout)
    if result["epochs_run"] != epochs:
        raise SystemExit(f"driftloop train ran {result['epochs_run']} epochs, not {epochs}")
    return {"wall_s": wall, "phases": result["phases"], "run_dir": result["run_dir"]}


def _whole_plain(run_dir: Path, workers: int) -> dict[str, Any]:
    threads = max(1, cores() // workers)  # as driftloop's spec (threads_per_worker) has it
    cmd = [*torchrun(workers), str(PLAIN), "--run-dir", str(run_dir), "--loader", "slicing"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=run_env(threads), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"plain_ddp.py failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    return {"wall_s": wall, "train_seconds": float(out["train_seconds"])}


def bench_whole(frame: pd.DataFrame, home: Path, args: argparse.Namespace, batch: int,
                workers: int) -> dict[str, Any]:
    """Median wall time of the whole command and of the raw DDP script, phases and ratio."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "src"),
                    str(BENCH_DIR)], check=True)  # bytecode cached, as a user's install has
    home.mkdir(parents=True, exist_ok=True)
    data = home / "data.parquet"
    frame.to_parquet(data, index=False)
    dl_runs: list[dict[str, Any]] = []
    plain_runs: list[dict[str, Any]] = []
    loads: list[float] = []
    for rep in range(args.repeats):
        order = ("driftloop", "plain") if rep % 2 == 0 else ("plain", "driftloop")
        for impl in order:
            if impl == "plain" and not dl_runs:
                continue  # the raw script reads the arrays of driftloop's first run folder
            if impl == "driftloop":
                record = _whole_driftloop(home, data, workers, args.epochs, batch)
                dl_runs.append(record)
            else:
                record = _whole_plain(Path(dl_runs[0]["run_dir"]), workers)
                plain_runs.append(record)
            loads.append(load_average())
            emit({"part": "whole", "impl": impl, "repeat": rep, "workers": workers,
                  "epochs": args.epochs, "batch_size": batch, "load_average_1m": loads[-1],
                  **{k: v for k, v in record.items() if k != "run_dir"}})
    while len(plain_runs) < len(dl_runs):  # the first repeat's skipped raw run
        plain_runs.append(_whole_plain(Path(dl_runs[0]["run_dir"]), workers))
    names = list(dl_runs[0]["phases"])
    phases = {k: round(statistics.median(r["phases"].get(k, 0.0) for r in dl_runs), 3)
              for k in names}
    dl_wall = statistics.median(r["wall_s"] for r in dl_runs)
    plain_wall = statistics.median(r["wall_s"] for r in plain_runs)
    ratio = dl_wall / plain_wall
    summary = {
        "part": "whole", "summary": True, "runs": len(dl_runs), "workers": workers,
        "epochs": args.epochs, "rows": len(frame), "driftloop_wall_s_median": round(dl_wall, 3),
        "driftloop_wall_s_min_max": [round(min(r["wall_s"] for r in dl_runs), 3),
                                     round(max(r["wall_s"] for r in dl_runs), 3)],
        "plain_wall_s_median": round(plain_wall, 3),
        "plain_train_seconds_median": round(
            statistics.median(r["train_seconds"] for r in plain_runs), 3),
        "ratio": round(ratio, 3), "target_ratio_at_most": WHOLE_TARGET,
        "target_met": ratio <= WHOLE_TARGET, "driftloop_phases_median": phases,
        "load_average_1m_min_max": [min(loads), max(loads)],
    }
    emit(summary)
    top = " · ".join(f"{k} {v:.1f}" for k, v in sorted(phases.items(), key=lambda kv: -kv[1])
                     if "." not in k and k != "total")
    print(f"[bench_train] whole: driftloop train {dl_wall:.1f} s vs raw DDP script "
          f"{plain_wall:.1f} s = {ratio:.2f}x (target <= {WHOLE_TARGET:g}x: "
          f"{'met' if ratio <= WHOLE_TARGET else 'NOT met'}); phases (medians): {top}",
          file=sys.stderr, flush=True)
    parts_line = " · ".join(f"{k} {v:.1f}" for k, v in phases.items() if "." in k)
    print(f"[bench_train] whole: parts {parts_line}", file=sys.stderr, flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--workers", default="1,2", help="worker counts (comma-separated)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", default="256",
                        help="per-worker batch; a comma-separated list runs a sweep")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the generated table")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS) - set(EXTRA_PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from "
                     f"{', '.join(PARTS + EXTRA_PARTS)}")
    workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    if "scaling" in parts and 1 not in workers:
        workers = [1, *workers]
    batches = [int(b) for b in str(args.batch_size).split(",") if b.strip()]

    import torch

    emit({
        "benchmark": "train_throughput", "python": platform.python_version(),
        "torch": torch.__version__, "cpus": cores(), "workers": workers, "parts": parts,
        "epochs": args.epochs, "batch_sizes": batches, "rows": args.rows,
        "repeats": args.repeats, "model": MODEL, "load_average_1m": load_average(),
        "gpu": "not measured (CPU, gloo only)",
    })
    started = time.perf_counter()
    frame = make_table(args.rows, args.seed)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="driftloop-bench-") as tmp:
        if "whole" in parts:
            bench_whole(frame, Path(tmp) / "whole", args, batches[0], max(workers))
            parts = [p for p in parts if p != "whole"]
        for batch in batches if parts else []:
            summaries.append(bench_one_batch(frame, Path(tmp), args, batch, parts, workers))
    for s in summaries:
        lo, hi = s["load_average_1m_min_max"]
        print(f"[bench_train] batch {s['batch_size']}: load average (1 min) {lo:.2f}-{hi:.2f}"
              " during the runs", file=sys.stderr)
    print(f"[bench_train] done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
