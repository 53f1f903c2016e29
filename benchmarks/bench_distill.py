"""Knowledge distillation: a wide MLP teacher against its distilled student and against the
same student trained on the labels alone (issue 18).

Setup
    sklearn's digits (1,797 rows, the 61 pixels that are not always blank scaled to [0, 1],
    10 classes; driftloop's 70/15/15 split, 270 test rows). Teacher: ``models:mlp_wide``
    (61 → 512 → 256 → 10). Student: the built-in ``mlp-small`` (61 → 32 → 10), once distilled
    from the teacher (``driftloop.distill``, T and alpha below) and once trained plainly on the
    labels (``driftloop.train``, same epochs, batch, seed, split). 2 workers (gloo, CPU),
    batch 32 per worker, early stopping patience 10.

What is measured
    accuracy with its 95 % bootstrap interval (the test split's report); the student gate's
    paired interval of teacher − student on the same 270 test rows (``registry.gate`` with
    ``gates.student_max_drop``); parameters and safetensors bytes; inference latency at batch 1
    and 256 (median of repeated ``LoadedModel.predict_arrays`` calls, one thread); training
    wall time (``train()`` / ``distill()`` end to end); the teacher-output precompute (seconds,
    once per row) against the teacher's forward pass over the training split once (what running
    the teacher inside the workers would repeat every epoch).

How to run (from the repository root, under the shared benchmark lock)::

    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_distill.py

Prints one JSON line per model and a summary line with the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # models:mlp_wide for the workers

from driftloop.config import Settings  # noqa: E402
from driftloop.registry import Registry  # noqa: E402
from driftloop.train.distill import distill  # noqa: E402
from driftloop.train.launcher import train  # noqa: E402
from driftloop.train.spec import DATA_DIR, TrainSpec  # noqa: E402


def _latency(model, x: np.ndarray, x_cat: np.ndarray, batch: int, reps: int) -> float:
    """Median seconds of one predict_arrays call on ``batch`` rows."""
    rows = np.arange(batch) % len(x)
    xb, cb = x[rows], x_cat[rows]
    model.predict_arrays(xb, cb)  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        model.predict_arrays(xb, cb)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _describe(registry: Registry, name: str, result, wall: float, run_dir: Path,
              reps: int) -> dict:
    record = registry.get(name, result.version)
    model = registry.load(name, result.version)
    x, x_cat, _ = (np.load(run_dir / DATA_DIR / f)
                   for f in TrainSpec.read(run_dir).array_files("test"))
    accuracy = result.evaluation["metrics"]["accuracy"]
    return {
        "model": name, "architecture": model.bundle.model,
        "accuracy": accuracy["value"], "accuracy_low": accuracy["low"],
        "accuracy_high": accuracy["high"],
        "params": sum(p.numel() for p in model.module.parameters()),
        "bytes": record.size_bytes,
        "latency_b1_ms": 1e3 * _latency(model, x, x_cat, 1, reps),
        "latency_b256_ms": 1e3 * _latency(model, x, x_cat, 256, max(20, reps // 5)),
        "train_wall_s": wall, "epochs_run": result.epochs_run,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--reps", type=int, default=300)
    args = parser.parse_args(argv)
    digits = load_digits(as_frame=True)
    # pixels scaled to [0, 1] (not whole numbers, so read as numeric, not as categories);
    # the always-blank border pixels left out
    pixels = digits.data.loc[:, digits.data.nunique() > 1] / 16.0
    frame = pixels.assign(digit=digits.target)
    home = Path(tempfile.mkdtemp(prefix="bench-distill-"))
    csv = home / "digits.csv"
    frame.to_csv(csv, index=False)
    settings = Settings.load(overrides={
        "home": str(home / "dl"), "train": {"patience": 10, "seed": 0},
        "gates": {"student_max_drop": 0.05, "student_min_shrink": 10.0},
        "security": {"model_factories": ["models"]},
    }, environ={}, cwd=home)
    fit = dict(workers=2, epochs=args.epochs, batch_size=32, settings=settings, progress=False)

    t = time.perf_counter()
    teacher = train(csv, "digit", model="models:mlp_wide", name="digits", **fit)
    teacher_wall = time.perf_counter() - t
    t = time.perf_counter()
    student = distill("digits:1", csv, temperature=args.temperature, alpha=args.alpha, **fit)
    student_wall = time.perf_counter() - t
    t = time.perf_counter()
    plain = train(csv, "digit", model="mlp-small", name="digits-plain", **fit)
    plain_wall = time.perf_counter() - t

    torch.set_num_threads(1)  # latency on one thread: the machine is shared
    with Registry.open(settings) as registry:
        rows = [
            _describe(registry, "digits", teacher, teacher_wall, Path(teacher.run_dir), args.reps),
            _describe(registry, "digits-student", student, student_wall, Path(student.run_dir),
                      args.reps),
            _describe(registry, "digits-plain", plain, plain_wall, Path(plain.run_dir),
                      args.reps),
        ]
        gate = {r.name: r for r in registry.gate("digits-student", 1, to="production").results}
        teacher_model = registry.load("digits", 1)
    run_dir = Path(student.run_dir)
    train_x, train_cat, _ = (np.load(run_dir / DATA_DIR / f)
                             for f in TrainSpec.read(run_dir).array_files("train"))
    t = time.perf_counter()
    with torch.inference_mode():
        teacher_model.module(torch.from_numpy(train_x), torch.from_numpy(train_cat))
    per_epoch_forward = time.perf_counter() - t
    for row in rows:
        print(json.dumps(row))
    t_row, s_row, p_row = rows
    drop = gate["student:metric"].details
    summary = {
        "summary": "distillation", "dataset": "sklearn digits", "test_rows": drop["rows"],
        "temperature": args.temperature, "alpha": args.alpha, "epochs": args.epochs,
        "student_gate": {"metric_passed": gate["student:metric"].passed,
                         "drop": drop["drop"], "drop_high": drop["drop_high"],
                         "drop_low": -drop["interval"][1],
                         "size_passed": gate["student:size"].passed},
        "param_ratio": t_row["params"] / s_row["params"],
        "bytes_ratio": t_row["bytes"] / s_row["bytes"],
        "latency_b1_ratio": t_row["latency_b1_ms"] / s_row["latency_b1_ms"],
        "latency_b256_ratio": t_row["latency_b256_ms"] / s_row["latency_b256_ms"],
        "distilled_minus_plain_accuracy": s_row["accuracy"] - p_row["accuracy"],
        "precompute_s": student.distillation["precompute_seconds"],
        "teacher_forward_train_split_s": per_epoch_forward,
        "python": platform.python_version(), "torch": torch.__version__,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
