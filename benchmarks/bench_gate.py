"""The holder gate's paired decision: false promotions of equal pairs, and power by holdout size.

What is measured
    The holder gate itself (``driftloop.registry.gates.GATES["holder"]``) deciding on the
    per-row outcomes an evaluation report stores (``RowOutcomes.from_predictions``, exactly what
    ``build_report`` keeps), for many seeded candidate/holder pairs of scikit-learn random
    forests trained in-process; next to it, in the same run, the rule it replaced (the baseline:
    promote when the candidate's point accuracy is at most ``margin`` = 0.01 below the
    holder's). ``ratio`` is the gate's rate over the baseline's.

    1. **Equal pairs, exactly equal.** The features are i.i.d. and the label is symmetric in
       ``x1`` and ``x2``, so a forest ``f`` and its mirror ``f(swap(x))`` have the same accuracy
       on the population, while disagreeing on some rows. Each pair: a fresh training set, a
       fresh forest, a fresh holdout. A promotion is a false promotion.
    2. **Equal pairs, the same recipe from another seed.** Two forests trained on the same
       rows with different ``random_state``: equal in expectation over the seeds (each pair
       may differ slightly in truth, which can only raise this rate).
    3. **Power.** The candidate is really better, in two ways: the holder was trained without
       ``x3`` (which carries signal: a large gap), or on a quarter of the rows (a small gap). The
       true gaps are measured on 20,000 independent rows and reported. Each repetition trains
       the models once and draws a fresh holdout of every size.

    Every equal pair is also trained once and given a fresh holdout of each size.

    The gate runs under the default policy (``superior``, confidence 0.95, 2,000 resamples);
    ``min_holdout_rows`` is lowered to the smallest holdout measured, so every size is decided.
    The false-promotion rate must be at most 1 − confidence + 0.02 = 0.07; its 95 %
    Clopper–Pearson interval is printed with it.

How to run (from the repository root; a few minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_gate.py
    .venv/bin/python benchmarks/bench_gate.py --pairs 50 --power-reps 40   # quicker

Prints JSON lines on stdout, one per measurement. Always exits 0 (it is a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.ensemble import RandomForestClassifier

from driftloop.config import GateSettings
from driftloop.evaluate.paired import RowOutcomes
from driftloop.registry.evidence import Evaluation
from driftloop.registry.gates import GATES, Evidence
from driftloop.store import ReportRecord, VersionRecord

FEATURES = 6
NOISE = 0.8
_AT = datetime(2024, 1, 1, tzinfo=timezone.utc)


def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows with i.i.d. normal features; the label is symmetric in x1 and x2, x3 carries
    signal of its own, x4..x6 are noise."""
    x = rng.normal(size=(n, FEATURES))
    score = x[:, 0] + x[:, 1] + 0.8 * x[:, 2] + 0.6 * x[:, 0] * x[:, 1]
    return x, (score + rng.normal(0, NOISE, n) > 0).astype(np.int64)


def forest(seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=10, max_depth=6, max_features=0.5,
                                  random_state=seed, n_jobs=1)


def swap(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, [0, 1]] = out[:, [1, 0]]
    return out


def blind(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, 2] = 0.0  # the holder of the power pairs never sees x3
    return out


def _version(vid: int) -> VersionRecord:
    return VersionRecord(vid, "bench", vid, None, _AT, "binary", "table", "a" * 64, "b" * 64,
                         {}, 1, None, None)


def _evaluation(vid: int, outcomes: RowOutcomes) -> Evaluation:
    body = {"per_row": outcomes.to_json(), "metrics": {},
            "dataset": {"rows": outcomes.rows, "source": "holdout", "role": "evaluation"}}
    record = ReportRecord(vid, "evaluation", "e" * 64, vid, None, f"{vid:064x}", {}, _AT)
    return Evaluation(record, body)


class Decider:
    """Runs the holder gate on two models' predictions, and the old point-estimate rule."""

    def __init__(self, policy: GateSettings) -> None:
        self.policy = policy
        self.check = GATES["holder"].check
        self.candidate, self.holder = _version(2), _version(1)

    def decide(self, y: np.ndarray, cand_pred: np.ndarray,
               hold_pred: np.ndarray) -> dict[str, Any]:
        mine = RowOutcomes.from_predictions("binary", y, np.eye(2)[cand_pred])
        theirs = RowOutcomes.from_predictions("binary", y, np.eye(2)[hold_pred])
        evidence = Evidence(self.candidate, "production", holder=self.holder,
                            evaluation=_evaluation(2, mine),
                            holder_evaluation=_evaluation(1, theirs))
        (result,) = self.check(evidence, self.policy)
        diff = float(np.mean(cand_pred == y) - np.mean(hold_pred == y))
        return {"gate": bool(result.passed), "baseline": diff >= -0.01,
                "low": (result.details or {}).get("interval", [None])[0]}


def rate_line(name: str, outcomes: list[dict[str, Any]], limit: float | None,
              **extra: Any) -> dict[str, Any]:
    k = sum(o["gate"] for o in outcomes)
    base = sum(o["baseline"] for o in outcomes)
    n = len(outcomes)
    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    line = {"bench": "gate", "measure": name, "pairs": n, "promoted": k, "rate": k / n,
            "rate_ci95": [round(ci.low, 4), round(ci.high, 4)], "baseline_promoted": base,
            "baseline_rate": base / n, "ratio": (k / n) / (base / n) if base else None, **extra}
    if limit is not None:
        line["limit"] = limit
        line["within_limit"] = k / n <= limit
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="equal pairs per holdout size")
    parser.add_argument("--equal-rows", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--power-reps", type=int, default=100)
    parser.add_argument("--power-rows", type=int, nargs="+",
                        default=[200, 500, 1000, 2000, 5000])
    parser.add_argument("--train-rows", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    policy = GateSettings(min_holdout_rows=min(args.equal_rows + args.power_rows))
    decider = Decider(policy)
    limit = round(1 - policy.confidence + 0.02, 4)
    print(json.dumps({"bench": "gate", "machine": platform.machine(), "cpus": os.cpu_count(),
                      "policy": policy.holder_policy, "confidence": policy.confidence,
                      "resamples": policy.resamples, "train_rows": args.train_rows,
                      "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}),
          flush=True)

    mirrored: dict[int, list[dict[str, Any]]] = {rows: [] for rows in args.equal_rows}
    seeded: dict[int, list[dict[str, Any]]] = {rows: [] for rows in args.equal_rows}
    for i in range(args.pairs):
        rng = np.random.default_rng([1, i])
        x, y = draw(args.train_rows, rng)
        f = forest(i).fit(x, y)
        g = forest(10_000 + i).fit(x, y)  # same rows, same recipe, another seed
        for rows in args.equal_rows:
            hx, hy = draw(rows, rng)
            held = f.predict(hx)
            mirrored[rows].append(decider.decide(hy, f.predict(swap(hx)), held))
            seeded[rows].append(decider.decide(hy, g.predict(hx), held))
    for rows in args.equal_rows:
        print(json.dumps(rate_line("false_promotion_mirrored", mirrored[rows], limit,
                                   holdout_rows=rows)), flush=True)
        print(json.dumps(rate_line("false_promotion_other_seed", seeded[rows], limit,
                                   holdout_rows=rows)), flush=True)

    scenarios = ("holder_blind_to_x3", "holder_on_a_quarter_of_the_rows")
    power = {(s, rows): [] for s in scenarios for rows in args.power_rows}
    gaps: dict[str, list[float]] = {s: [] for s in scenarios}
    big_x, big_y = draw(20_000, np.random.default_rng(99))
    for i in range(args.power_reps):
        rng = np.random.default_rng([2, i])
        x, y = draw(args.train_rows, rng)
        strong = forest(i).fit(x, y)
        quarter = args.train_rows // 4
        holders = {"holder_blind_to_x3": (forest(i).fit(blind(x), y), blind),
                   "holder_on_a_quarter_of_the_rows": (forest(i).fit(x[:quarter], y[:quarter]),
                                                       lambda a: a)}
        truth = np.mean(strong.predict(big_x) == big_y)
        for name, (weak, view) in holders.items():
            gaps[name].append(float(truth - np.mean(weak.predict(view(big_x)) == big_y)))
        for rows in args.power_rows:
            hx, hy = draw(rows, rng)
            mine = strong.predict(hx)
            for name, (weak, view) in holders.items():
                power[(name, rows)].append(decider.decide(hy, mine, weak.predict(view(hx))))
    for (name, rows), outcomes in power.items():
        g = gaps[name]
        print(json.dumps(rate_line("power", outcomes, None, scenario=name, holdout_rows=rows,
                                   true_gap_mean=round(float(np.mean(g)), 4),
                                   true_gap_range=[round(min(g), 4), round(max(g), 4)])),
              flush=True)
    print(json.dumps({"bench": "gate", "measure": "seconds",
                      "value": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
