"""The loop's feedback screen against label flipping by one API key: recall and false holds.

What is measured
    A champion is trained the way driftloop trains (an MLP from ``driftloop.models``, full-batch
    Adam on 4,000 rows of a seeded ``make_classification`` table, 12 features, 2 classes) and
    temperature-calibrated on 2,000 validation rows, as ``driftloop train`` does. Its feedback
    window is 4,000 fresh rows labelled by 4 keys (1,000 each) with the true labels, then:

    - ``clean``: nothing changed;
    - ``flip 5% / 10% / 20%``: key ``k3`` flips that share of its labels;
    - ``drift``: the concept moves for everyone (the label of 15% of rows, those with the
      largest first feature, is flipped for every key) — a retrain is what is wanted here;
    - ``drift + flip 10%``: both.

    For each scenario and ``--seeds`` seeds (new feedback rows and flips each time), three
    rules decide whether to hold the retrain and whom to blame:

    - **driftloop** — :func:`driftloop.loop.screening.screen_feedback` with the loop's
      defaults (lower 99% bound of a key's excess disagreement, Bonferroni over keys, scaled by
      the other keys' observed/expected ratio, over 0.25% of the window);
    - **point rule** — a key whose disagreement rate with the champion is 2 percentage points
      above the other keys' (point estimates, no interval);
    - **cleanlab rule** — a key whose share of cleanlab label issues is 2 points above the
      others'.

    *Recall* is the share of poisoned runs held with ``k3`` named; *false holds* the share of
    runs held (or a wrong key named) where no key flipped labels.

How to run::

    .venv/bin/python benchmarks/bench_poisoning.py            # 20 seeds, about 1 minute
    .venv/bin/python benchmarks/bench_poisoning.py --seeds 50

Prints one JSON line per scenario and rule, then a table. Always exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
KEYS = np.array(["k0", "k1", "k2", "k3"])
POISONER = "k3"
SCENARIOS = {"clean": (0.0, False), "flip 5%": (0.05, False), "flip 10%": (0.10, False),
             "flip 20%": (0.20, False), "drift": (0.0, True), "drift + flip 10%": (0.10, True)}


def champion(seed: int):
    """A calibrated driftloop MLP and the generator of fresh rows from the same table."""
    from sklearn.datasets import make_classification

    from driftloop.models import LoadedModel
    from driftloop.models.temperature import TemperatureScaler

    sys.path.insert(0, str(ROOT / "tests"))
    from quick_model import quick_version

    x, y = make_classification(n_samples=60_000, n_features=12, n_informative=6,
                               flip_y=0.03, class_sep=0.8, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(12)]).assign(label=y)
    prepared, weights, bundle = quick_version(frame.iloc[:6000], steps=300, seed=seed)
    val = prepared.splits["val"]
    raw = LoadedModel(bundle, weights).predict_arrays(val.x, val.x_cat, calibrated=False)
    scaler = TemperatureScaler().fit(raw, val.y)
    model = LoadedModel(dataclasses.replace(bundle, calibration=scaler.to_json()), weights)
    return model, frame.iloc[6000:].reset_index(drop=True)


def feedback(pool: pd.DataFrame, model, rng: np.random.Generator, flip: float, drift: bool):
    rows = pool.iloc[rng.choice(len(pool), 4000, replace=False)].reset_index(drop=True)
    proba = model.predict_raw(rows.drop(columns="label"))
    labels = rows["label"].to_numpy().copy()
    sources = np.repeat(KEYS, 1000)
    if drift:  # the concept moves: the same rows' labels change for every key
        moved = rows["f0"].to_numpy() >= np.quantile(rows["f0"], 0.85)
        labels[moved] = 1 - labels[moved]
    if flip:
        mine = np.flatnonzero(sources == POISONER)
        flipped = rng.choice(mine, int(round(flip * len(mine))), replace=False)
        labels[flipped] = 1 - labels[flipped]
    return labels, sources, proba


def rule_driftloop(labels, sources, proba) -> list[str]:
    from driftloop.loop.screening import screen_feedback

    return screen_feedback(labels, sources, proba).flagged


def _gap_rule(per_row: np.ndarray, sources: np.ndarray, gap: float = 0.02) -> list[str]:
    out = []
    for key in KEYS:
        mine = sources == key
        if per_row[mine].mean() > per_row[~mine].mean() + gap:
            out.append(key)
    return out


def rule_point(labels, sources, proba) -> list[str]:
    return _gap_rule((proba.argmax(axis=1) != labels).astype(float), sources)


def rule_cleanlab(labels, sources, proba) -> list[str]:
    from cleanlab.filter import find_label_issues

    issues = find_label_issues(labels=labels, pred_probs=proba, n_jobs=1).astype(float)
    return _gap_rule(issues, sources)


RULES = {"driftloop": rule_driftloop, "point rule": rule_point, "cleanlab rule": rule_cleanlab}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    model, pool = champion(seed=0)
    results: dict[tuple[str, str], list[bool]] = {}
    seconds: dict[str, list[float]] = {rule: [] for rule in RULES}
    for name, (flip, drift) in SCENARIOS.items():
        for seed in range(args.seeds):
            rng = np.random.default_rng(1000 + seed)
            labels, sources, proba = feedback(pool, model, rng, flip, drift)
            for rule, decide in RULES.items():
                t = time.perf_counter()
                flagged = decide(labels, sources, proba)
                seconds[rule].append(time.perf_counter() - t)
                right = flagged == [POISONER] if flip else flagged == []
                results.setdefault((name, rule), []).append(right)
    lines = []
    for (name, rule), outcomes in results.items():
        flip = SCENARIOS[name][0]
        share = float(np.mean(outcomes))
        line = {"scenario": name, "rule": rule, "seeds": len(outcomes),
                "recall" if flip else "false_hold_rate": share if flip else 1 - share}
        print(json.dumps(line), flush=True)
        lines.append(line)
    print(f"\n{args.seeds} seeds per scenario; {time.perf_counter() - started:.0f} s in all; "
          + ", ".join(f"{r} {1000 * np.median(s):.1f} ms/decision" for r, s in seconds.items()))
    print("\n| scenario | " + " | ".join(RULES) + " |")
    print("|---|" + "---:|" * len(RULES))
    for name, (flip, _) in SCENARIOS.items():
        what = "recall" if flip else "false holds"
        cells = []
        for rule in RULES:
            right = float(np.mean(results[(name, rule)]))
            cells.append(f"{right if flip else 1 - right:.2f}")
        print(f"| {name} ({what}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
