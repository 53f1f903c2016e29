"""``driftloop data check --deep`` against a planted backdoor: recall, precision, false findings.

What is measured
    Tables: scikit-learn's breast cancer (569 rows, 30 features, 2 classes), digits (1,797 rows,
    64 features, 10 classes) and a seeded ``make_classification`` (1,000 rows, 12 features,
    2 classes). For each ``--seeds`` seed and poison rate (0 = clean, 1 %, 3 %, 5 % of the rows)
    a backdoor is planted: that share of rows, drawn from outside class 0, get two seeded
    features set to a trigger value out of the column's range (its maximum plus three standard
    deviations) and the label of class 0.

    Two detectors see the same table:

    - **driftloop** — :func:`driftloop.loop.deep_check.check_data_deep` with the default
      settings: its ``backdoor`` finding's rows;
    - **cleanlab** — the rows of the data check's ``label_errors`` finding (out-of-fold
      gradient boosting + cleanlab's confident learning), the detector one has without --deep.

    Per run: *recall* = planted rows found / planted, *precision* = planted rows found / rows
    flagged (1.0 when nothing is flagged and nothing planted), and on clean tables whether any
    row was flagged at all (a *false finding*).

How to run::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_backdoor.py              # 3 seeds
    PYTHONPATH=src .venv/bin/python benchmarks/bench_backdoor.py --seeds 5 --datasets bc,mc

Prints one JSON line per dataset, rate, seed and detector, then one summary line per dataset,
rate and detector. Always exits 0.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

RATES = (0.0, 0.01, 0.03, 0.05)


def table(name: str, seed: int) -> pd.DataFrame:
    """One of the benchmark's tables with a ``label`` column."""
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification

    if name == "bc":
        x, y = load_breast_cancer(return_X_y=True)
    elif name == "digits":
        x, y = load_digits(return_X_y=True)
    else:
        x, y = make_classification(1000, 12, n_informative=6, random_state=seed)
    frame = pd.DataFrame(x.astype(float), columns=[f"f{i}" for i in range(x.shape[1])])
    return frame.assign(label=y)


def plant(frame: pd.DataFrame, rate: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Give ``rate`` of the rows outside class 0 a two-feature trigger and label 0."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    rows = rng.choice(np.flatnonzero(frame["label"] != 0), round(rate * len(frame)),
                      replace=False)
    varied = [c for c in frame.columns[:-1] if frame[c].std() > 0]
    for column in rng.choice(varied, 2, replace=False):
        frame.loc[rows, column] = frame[column].max() + 3 * frame[column].std()
    frame.loc[rows, "label"] = 0
    return frame, rows


def score(flagged: list[int], planted: np.ndarray) -> dict[str, float | int]:
    hits = len(set(flagged) & set(planted.tolist()))
    return {"flagged": len(flagged), "planted": len(planted),
            "recall": hits / len(planted) if len(planted) else 1.0,
            "precision": hits / len(flagged) if flagged else 1.0}


def run_one(name: str, rate: float, seed: int) -> list[dict]:
    from driftloop.config import Settings
    from driftloop.loop.deep_check import check_data_deep

    frame, planted = plant(table(name, seed), rate, seed)
    settings = Settings.load()
    settings.check.max_rows_listed = len(frame)  # the benchmark scores every flagged row
    settings.check.seed = seed
    start = time.perf_counter()
    report = check_data_deep(frame, "label", settings=settings)
    seconds = time.perf_counter() - start
    lines = []
    for detector, check in (("driftloop", "backdoor"), ("cleanlab", "label_errors")):
        rows = [r for f in report.findings if f.check == check for r in f.rows]
        lines.append({"dataset": name, "rate": rate, "seed": seed, "detector": detector,
                      **score(rows, planted), "seconds": round(seconds, 2)})
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="bc,mc,digits")
    args = parser.parse_args()
    results = []
    for name in args.datasets.split(","):
        for rate in RATES:
            for seed in range(args.seeds):
                for line in run_one(name, rate, seed):
                    print(json.dumps(line), flush=True)
                    results.append(line)
    frame = pd.DataFrame(results)
    for (name, rate, detector), group in frame.groupby(["dataset", "rate", "detector"]):
        summary = {"summary": True, "dataset": name, "rate": rate, "detector": detector,
                   "runs": len(group)}
        if rate == 0:
            summary["false_finding_rate"] = float((group["flagged"] > 0).mean())
        else:
            summary |= {"recall": round(float(group["recall"].mean()), 3),
                        "precision": round(float(group["precision"].mean()), 3),
                        "min_recall": round(float(group["recall"].min()), 3)}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
