"""``driftloop data check`` on a large table: 1,000,000 rows × 20 columns (target included).

What is measured
    Wall-clock seconds of ``driftloop.check_data(path, target)`` end to end — reading the
    file, schema inference, fingerprint, missing values, duplicates, class balance,
    single-feature leakage AUCs, label errors (cross-validated model on the sampled rows +
    cleanlab), the PII scan — and, separately, with ``against=`` a 100,000-row holdout
    (row and group overlap on top).

Baseline
    What a person types first: ``pandas.read_<format>`` + ``frame.isna().mean()`` +
    ``frame.duplicated().sum()`` + ``frame[target].value_counts()``. ``ratio`` is driftloop's
    time over the baseline's: the price of the extra checks.

The table
    Seeded: 12 float columns (two with missing values), 3 small-integer columns, 2 text
    categories, a yes/no column, an e-mail column (PII), and a binary target with 5% of its
    labels flipped. Written once to a temporary folder as Parquet and CSV.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_data_check.py               # 1,000,000 rows, Parquet+CSV
    .venv/bin/python benchmarks/bench_data_check.py --rows 200000 --formats parquet

Prints JSON lines on stdout, one per measurement. Always exits 0 (it is a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "label"
BUDGET_S = 60.0


def make_table(rows: int, seed: int) -> pd.DataFrame:
    """The seeded 20-column table described in the module docstring."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    x = rng.normal(size=(rows, 12))
    for i in range(12):
        columns[f"x{i}"] = x[:, i].round(4)
    columns["x3"] = np.where(rng.random(rows) < 0.05, np.nan, columns["x3"])  # type: ignore
    columns["x7"] = np.where(rng.random(rows) < 0.3, np.nan, columns["x7"])  # type: ignore
    for i in range(3):
        columns[f"n{i}"] = rng.integers(0, 6, rows)
    columns["city"] = rng.choice(["Oslo", "Rome", "Lima", "Pune", "Kyiv"], rows)
    columns["plan"] = rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1])
    columns["member"] = rng.choice(["yes", "no"], rows)
    columns["email"] = [f"user{i}@example.com" for i in rng.integers(0, rows * 10, rows)]
    logit = x[:, 0] - 0.8 * x[:, 1] + 0.5 * (columns["city"] == "Oslo")  # type: ignore
    y = (logit + rng.logistic(size=rows) * 0.5 > 0).astype(np.int64)
    flip = rng.random(rows) < 0.05
    columns[TARGET] = np.where(flip, 1 - y, y)
    return pd.DataFrame(columns)


def baseline(path: Path) -> float:
    started = time.perf_counter()
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame.isna().mean()
    int(frame.duplicated().sum())
    frame[TARGET].value_counts()
    return time.perf_counter() - started


def measure(path: Path, against: Path | None, settings: object) -> tuple[float, object]:
    from driftloop.data.check import check_data

    started = time.perf_counter()
    report = check_data(path, TARGET, against, settings=settings)  # type: ignore[arg-type]
    return time.perf_counter() - started, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from driftloop.config import Settings

    settings = Settings.load(environ={}, cwd=tempfile.gettempdir())
    machine = {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
               "machine": platform.machine()}
    with tempfile.TemporaryDirectory() as folder:
        frame = make_table(args.rows, args.seed)
        holdout = make_table(100_000, args.seed + 1)
        holdout.iloc[:1000] = frame.iloc[:1000].to_numpy()  # 1000 leaked rows
        for fmt in args.formats.split(","):
            path = Path(folder) / f"big.{fmt}"
            other = Path(folder) / f"holdout.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
                holdout.to_parquet(other, index=False)
            else:
                frame.to_csv(path, index=False)
                holdout.to_csv(other, index=False)
            base = baseline(path)
            for against in (None, other):
                seconds, report = measure(path, against, settings)
                counts = report.to_json()["counts"]  # type: ignore[attr-defined]
                line = {
                    "bench": "data_check", "format": fmt, "rows": args.rows,
                    "columns": frame.shape[1], "against": against is not None,
                    "seconds": round(seconds, 2), "baseline_s": round(base, 2),
                    "ratio": round(seconds / base, 2), "under_budget": seconds < BUDGET_S,
                    "findings": [f.check for f in report.findings],  # type: ignore[attr-defined]
                    "counts": counts, **machine,
                }
                print(json.dumps(line), flush=True)
                print(f"{fmt} against={against is not None}: {seconds:.1f} s "
                      f"(baseline {base:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
