"""What DP-SGD costs: test accuracy (with its 95 % interval) and training time at ε ∈ {1, 3, 8}
against the same run without differential privacy (ε = ∞).

Setup (issue 17)
    A seeded ``make_classification`` table (default 5,000 rows × 20 features, 10 informative,
    2 classes; 70 % = 3,500 training rows), the built-in MLP, 2 workers (gloo, CPU), batch 64
    per worker, early stopping off (patience 1000), ``--epochs`` epochs (default 5). Each
    configuration is one ``driftloop.train(...)`` call end to end on the same data and seed:
    the private runs differ only by DP-SGD (per-sample clipping at C = 1, Poisson sampling at
    q = 128 / 3,500, Gaussian noise for the target ε at δ = 1e-5 with the PRV accountant).

What is measured
    accuracy and its interval: the test split's report (bootstrap interval, as every driftloop
    evaluation); train_s: summed epoch step time of rank 0 (``history[*].seconds``), i.e.
    training steps only; wall_s: the whole ``train()`` call (start-up, evaluation,
    registration). Ratios are to the non-private run of the same invocation. Every run uses the
    same learning rate (``--lr``, default driftloop's); DP-SGD often wants a larger one, so the
    accuracy ratio at the default is the cost of switching DP on, not of a tuned DP run.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_dp.py                     # ε = 1, 3, 8 and ∞
    .venv/bin/python benchmarks/bench_dp.py --rows 2000 --epochs 3   # quick

Prints one JSON line per run and a summary line with every ratio on stdout; exits 0 unless a
run fails (it is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time

import pandas as pd
from sklearn.datasets import make_classification

from driftloop.config import Settings
from driftloop.train.launcher import train


def _frame(rows: int, seed: int) -> pd.DataFrame:
    x, y = make_classification(n_samples=rows, n_features=20, n_informative=10,
                               n_redundant=4, class_sep=1.0, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = y
    return frame


def _run(frame: pd.DataFrame, epsilon: float, args: argparse.Namespace,
         settings: Settings) -> dict:
    started = time.perf_counter()
    result = train(frame, target="label", workers=2, epochs=args.epochs,
                   batch_size=args.batch_size, seed=args.seed, lr=args.lr, name="bench-dp",
                   progress=False,
                   settings=settings, dp_epsilon=None if math.isinf(epsilon) else epsilon)
    wall = time.perf_counter() - started
    accuracy = result.evaluation["metrics"]["accuracy"]
    dp = result.differential_privacy or {}
    return {
        "bench": "dp", "epsilon_target": None if math.isinf(epsilon) else epsilon,
        "epsilon_spent": dp.get("epsilon"), "delta": dp.get("delta"),
        "noise_multiplier": dp.get("noise_multiplier"), "sample_rate": dp.get("sample_rate"),
        "steps": dp.get("steps"), "accuracy": accuracy["value"], "accuracy_low": accuracy["low"],
        "accuracy_high": accuracy["high"],
        "train_s": sum(h["seconds"] for h in result.history), "wall_s": wall,
        "epochs_run": result.epochs_run,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate at the reference batch (default: train.lr)")
    parser.add_argument("--epsilons", default="1,3,8,inf",
                        help="comma-separated targets; inf: without DP (the baseline)")
    args = parser.parse_args(argv)
    epsilons = [float(e) for e in args.epsilons.split(",")]
    if not any(math.isinf(e) for e in epsilons):
        epsilons.append(math.inf)
    frame = _frame(args.rows, args.seed)
    home = tempfile.mkdtemp(prefix="bench-dp-")
    settings = Settings.load(overrides={"home": home, "train": {"patience": 1000}},
                             environ={}, cwd=home)
    runs = []
    for epsilon in epsilons:
        run = _run(frame, epsilon, args, settings)
        runs.append(run)
        print(json.dumps(run), flush=True)
    base = next(r for r in runs if r["epsilon_target"] is None)
    print(json.dumps({
        "bench": "dp_summary", "rows": args.rows, "epochs": args.epochs,
        "batch_size_per_worker": args.batch_size, "workers": 2, "lr": args.lr,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d"),
        "ratios": {
            str(r["epsilon_target"]): {
                "accuracy_ratio": r["accuracy"] / base["accuracy"],
                "train_time_ratio": r["train_s"] / base["train_s"],
                "wall_time_ratio": r["wall_s"] / base["wall_s"],
            }
            for r in runs if r is not base
        },
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
