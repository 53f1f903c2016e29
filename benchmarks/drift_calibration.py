"""Is ``dl.drift`` honest? False alarms on data that did not drift, and power on data that did.

Sections (each a function of the parsed arguments that returns rows; ``SECTIONS`` maps names
to them, so later sections — performance estimation, concept drift — are added the same way)

``false_alarms_real``
    Random 50/50 splits of real datasets that ship with scikit-learn (breast cancer, wine,
    diabetes, digits) and river (Phishing, Bananas, ImageSegments, SolarFlare, Shuttle); the
    two halves come from one distribution, so every alarm is false. Per dataset: the rate of
    dataset-level drift (``drift_detected``), of any drifting feature, and of raw p-values
    below alpha (how calibrated — or conservative — the single tests are), with the
    Clopper–Pearson 95 % upper bound of the dataset-level rate.
``false_alarms_synthetic``
    Two independent samples of one synthetic table (normal, log-normal, Poisson counts, 0/1,
    a 10-category and a 300-category column, a column with 10 % missing, a constant column,
    and a fixed "model" output) at 1k, 10k, 100k and 1M rows per side.
``power``
    A reference of 10,000 rows against current windows of 100, 1,000 and 10,000 rows where
    one feature of five moved: mean shift, scale change, category mix change, missing-rate
    jump. Detection rate = share of repetitions in which that feature is flagged (corrected
    p-value below alpha AND effect at or above its floor), default settings.
``cbpe`` and ``concept_drift``
    The monitor's performance side, from ``calibration_performance.py``: label-free accuracy
    estimates against realised accuracy on covariate-shifted windows of river's Bananas and
    Shuttle, and ADWIN / Page–Hinkley / DDM delay and false alarms on SEA and Agrawal streams.

Every repetition is seeded (``numpy.random.default_rng([seed, repetition])``).

How to run (from the repository root)::

    .venv/bin/python benchmarks/drift_calibration.py                   # everything, ~15 min
    .venv/bin/python benchmarks/drift_calibration.py --sections power --reps 100
    .venv/bin/python benchmarks/drift_calibration.py --quick           # a smoke run, ~1 min

Prints one JSON line per table row, then the tables as Markdown. Exits 1 when a false-alarm
rate exceeds alpha + 0.02 (the issue's bound), else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from calibration_performance import (
    cbpe_markdown,
    cbpe_section,
    concept_markdown,
    concept_section,
)
from scipy.stats import binomtest

from driftloop.config import DriftSettings
from driftloop.monitor.drift import compare
from driftloop.monitor.profile import build_reference, profile_like

ALPHA = 0.05
BOUND = ALPHA + 0.02
Row = dict[str, Any]


# -- false alarms on real data -----------------------------------------------------------------


def real_datasets() -> dict[str, pd.DataFrame]:
    """Feature tables of datasets bundled with scikit-learn and river (no download)."""
    from river import datasets
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

    tables = {
        f"sklearn {loader.__name__[5:]}": loader(as_frame=True).frame.drop(columns="target")
        for loader in (load_breast_cancer, load_wine, load_diabetes, load_digits)
    }
    for name in ("Phishing", "Bananas", "ImageSegments", "SolarFlare", "Shuttle"):
        stream = getattr(datasets, name)()
        tables[f"river {name}"] = pd.DataFrame([x for x, _ in stream])
    return tables


def false_alarms_real(args: argparse.Namespace) -> list[Row]:
    cfg = DriftSettings(alpha=ALPHA)
    rows = []
    for name, frame in real_datasets().items():
        started = time.perf_counter()
        alarms = flagged = raw = tests = 0
        for rep in range(args.reps):
            order = np.random.default_rng([args.seed, rep]).permutation(len(frame))
            half = len(frame) // 2
            ref = build_reference(frame.iloc[order[:half]], settings=cfg)
            report = compare(ref, profile_like(ref, frame.iloc[order[half:]], settings=cfg),
                             settings=cfg)
            alarms += report.drift_detected
            flagged += bool(report.drifted)
            p_values = _raw_p_values(report)
            raw += sum(p < ALPHA for p in p_values)
            tests += len(p_values)
        rows.append(_rate_row({
            "section": "false_alarms_real", "dataset": name, "rows": len(frame),
            "features": frame.shape[1], "reps": args.reps, "alarms": alarms,
            "any_feature_rate": flagged / args.reps,
            "raw_test_rate": raw / tests if tests else None,
            "seconds": time.perf_counter() - started,
        }))
    return rows


# -- false alarms on synthetic data ---------------------------------------------------------------


_MANY = np.array([f"c{i}" for i in range(300)])


def synthetic(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """The no-drift table of the module docstring (one sample of it)."""
    return pd.DataFrame({
        "normal": rng.normal(size=rows),
        "lognormal": rng.lognormal(0, 1, rows),
        "counts": rng.poisson(2, rows).astype(np.float64),
        "flag": (rng.random(rows) < 0.2).astype(np.float64),
        "city": pd.Categorical.from_codes(
            rng.choice(10, rows, p=[.3, .2, .15, .1, .1, .05, .04, .03, .02, .01]),
            [f"city{i}" for i in range(10)]),
        "product": _MANY[rng.zipf(1.3, rows) % 300],
        "sparse": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
        "constant": np.full(rows, 3.0),
    })


def model_output(frame: pd.DataFrame) -> np.ndarray:
    """A fixed 'model' of the synthetic table (the same function on both sides)."""
    logit = frame["normal"].to_numpy() + 0.5 * frame["flag"].to_numpy() - 0.2
    return 1 / (1 + np.exp(-logit))


def false_alarms_synthetic(args: argparse.Namespace) -> list[Row]:
    cfg = DriftSettings(alpha=ALPHA)
    out = []
    for size in args.sizes:
        reps = max(args.min_reps, min(args.reps, int(args.reps * 10_000 / size)))
        started = time.perf_counter()
        alarms = flagged = predicted = raw = tests = 0
        for rep in range(reps):
            rng = np.random.default_rng([args.seed, size, rep])
            a, b = synthetic(size, rng), synthetic(size, rng)
            ref = build_reference(a, outputs=model_output(a), output_names=["proba:yes"],
                                  settings=cfg)
            report = compare(ref, profile_like(ref, b, outputs=model_output(b), settings=cfg),
                             settings=cfg)
            alarms += report.drift_detected
            flagged += bool(report.drifted)
            predicted += report.prediction["drift_detected"]
            p_values = _raw_p_values(report)
            raw += sum(p < ALPHA for p in p_values)
            tests += len(p_values)
        out.append(_rate_row({
            "section": "false_alarms_synthetic", "dataset": "synthetic", "rows": size,
            "features": 8, "reps": reps, "alarms": alarms, "any_feature_rate": flagged / reps,
            "prediction_rate": predicted / reps, "raw_test_rate": raw / tests,
            "seconds": time.perf_counter() - started,
        }))
    return out


# -- power ---------------------------------------------------------------------------------------


_CITIES = np.array(["Oslo", "Rome", "Lima", "Pune"])
_MIX = np.array([0.4, 0.3, 0.2, 0.1])


def _base(rows: int, rng: np.random.Generator, *, mean: float = 0.0, scale: float = 1.0,
          moved: float = 0.0, missing: float = 0.0) -> pd.DataFrame:
    mix = _MIX + np.array([-moved, 0, 0, moved])
    x = rng.normal(mean, scale, rows)
    return pd.DataFrame({
        "x": np.where(rng.random(rows) < missing, np.nan, x),
        "city": _CITIES[rng.choice(4, rows, p=mix)],
        "u": rng.random(rows),
        "v": rng.normal(size=rows),
        "n": rng.poisson(3, rows),
    })


SHIFTS: dict[str, tuple[str, dict[str, float]]] = {
    "mean +0.1 sd": ("x", {"mean": 0.1}),
    "mean +0.25 sd": ("x", {"mean": 0.25}),
    "mean +0.5 sd": ("x", {"mean": 0.5}),
    "scale ×1.25": ("x", {"scale": 1.25}),
    "scale ×1.5": ("x", {"scale": 1.5}),
    "category mix 10 pts": ("city", {"moved": 0.1}),
    "category mix 25 pts": ("city", {"moved": 0.25}),
    "missing 0 → 5 %": ("x", {"missing": 0.05}),
    "missing 0 → 10 %": ("x", {"missing": 0.10}),
    "missing 0 → 30 %": ("x", {"missing": 0.30}),
}


def power(args: argparse.Namespace) -> list[Row]:
    cfg = DriftSettings(alpha=ALPHA)
    ref_frame = _base(args.reference_rows, np.random.default_rng([args.seed, 0]))
    ref = build_reference(ref_frame, settings=cfg)
    out = []
    for shift, (feature, change) in SHIFTS.items():
        for size in args.windows:
            found = 0
            effects = []
            for rep in range(args.reps):
                cur = _base(size, np.random.default_rng([args.seed, 1, size, rep]), **change)
                report = compare(ref, profile_like(ref, cur, settings=cfg), settings=cfg)
                drift = next(f for f in report.features if f.name == feature)
                found += drift.drifted
                effect = (drift.missing["effect_size"] if "missing" in shift
                          else drift.effect_size)
                effects.append(np.nan if effect is None else effect)
            out.append({"section": "power", "shift": shift, "feature": feature,
                        "window_rows": size, "reference_rows": args.reference_rows,
                        "reps": args.reps, "detection_rate": found / args.reps,
                        "mean_effect": float(np.nanmean(effects))})
    return out


# -- plumbing --------------------------------------------------------------------------------------


def _raw_p_values(report: Any) -> list[float]:
    found = []
    for f in [*report.features]:
        if f.p_value is not None:
            found.append(f.p_value)
        if f.missing["p_value"] is not None:
            found.append(f.missing["p_value"])
    found += [o["p_value"] for o in report.prediction["outputs"] if o["p_value"] is not None]
    return found


def _rate_row(row: Row) -> Row:
    test = binomtest(row["alarms"], row["reps"])
    row["false_alarm_rate"] = row["alarms"] / row["reps"]
    row["upper_95"] = test.proportion_ci(0.95, method="exact").high
    row["within_bound"] = row["false_alarm_rate"] <= BOUND
    return row


SECTIONS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "false_alarms_real": false_alarms_real,
    "false_alarms_synthetic": false_alarms_synthetic,
    "power": power,
    # the monitor's performance side lives in calibration_performance.py (same folder)
    "cbpe": lambda args: cbpe_section(args.quick),
    "concept_drift": lambda args: concept_section(args.quick),
}


def markdown(section: str, rows: list[Row]) -> str:
    if section == "cbpe":
        return cbpe_markdown(rows)
    if section == "concept_drift":
        return concept_markdown(rows)
    if section == "power":
        sizes = sorted({r["window_rows"] for r in rows})
        lines = ["| shift | " + " | ".join(f"{s:,} rows" for s in sizes) + " | mean effect |",
                 "|---|" + "---:|" * (len(sizes) + 1)]
        for shift in dict.fromkeys(r["shift"] for r in rows):
            cells = {r["window_rows"]: r for r in rows if r["shift"] == shift}
            rates = " | ".join(f"{cells[s]['detection_rate']:.2f}" for s in sizes)
            lines.append(f"| {shift} | {rates} | {cells[sizes[-1]]['mean_effect']:.3f} |")
        return "\n".join(lines)
    lines = ["| data | rows | features | reps | dataset false alarms | 95 % upper | any feature "
             "| raw tests p<α |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        raw = "-" if r["raw_test_rate"] is None else f"{r['raw_test_rate']:.3f}"
        lines.append(
            f"| {r['dataset']} | {r['rows']:,} | {r['features']} | {r['reps']} | "
            f"{r['false_alarm_rate']:.3f} | {r['upper_95']:.3f} | {r['any_feature_rate']:.3f} | "
            f"{raw} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--reps", type=int, default=500, help="repetitions (per cell)")
    parser.add_argument("--min-reps", type=int, default=100,
                        help="repetitions at the largest synthetic size")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--windows", default="100,1000,10000")
    parser.add_argument("--reference-rows", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="few repetitions, small sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.min_reps, args.sizes = 40, 10, "1000,10000"
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.windows = [int(s) for s in str(args.windows).split(",")]
    failed = False
    tables = []
    for section in args.sections.split(","):
        started = time.perf_counter()
        rows = SECTIONS[section](args)
        for row in rows:
            print(json.dumps(row), flush=True)
            failed |= row.get("within_bound") is False
        tables.append(f"### {section} ({time.perf_counter() - started:.0f} s)\n\n"
                      f"{markdown(section, rows)}")
    print("\n\n".join(tables))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
