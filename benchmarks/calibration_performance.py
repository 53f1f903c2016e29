"""Honesty of the monitor's performance side: CBPE under covariate shift, and concept-drift
detectors on streams with known change points. Imported by ``drift_calibration.py``; also runs
alone::

    .venv/bin/python benchmarks/calibration_performance.py [--quick]

CBPE: a model trained by driftloop (data-parallel, temperature-scaled) on half of a real
dataset that ships with river (Bananas, 5,300 rows; Shuttle, 49,097 rows), then windows of the
other half selected by a feature's quantile band (a covariate shift made by selecting rows):
the label-free estimate of each window's accuracy against the realised accuracy.

Concept drift: a model (scikit-learn gradient boosting) trained on concept A, then a stream
from river's ``ConceptDriftStream`` (SEA and Agrawal) that switches to concept B at a known
position; ADWIN, Page–Hinkley and DDM read the 0/1 error stream. Reported per detector:
detection rate, mean delay after the change, false alarms before it.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from driftloop.monitor.detectors import detect_changes
from driftloop.monitor.performance import estimate_performance


def _river_frame(name: str) -> pd.DataFrame:
    from river import datasets

    dataset = getattr(datasets, name)()
    rows = [{**x, "label": str(y)} for x, y in dataset]
    return pd.DataFrame.from_records(rows)


def cbpe_section(quick: bool = False) -> list[dict[str, Any]]:
    """Estimated vs realised accuracy per covariate-shifted window, on shipped datasets."""
    from driftloop.config import Settings
    from driftloop.registry import Registry
    from driftloop.train.launcher import train

    out: list[dict[str, Any]] = []
    for name, feature, limit in (("Bananas", "1", None), ("Shuttle", "f1", 20_000)):
        frame = _river_frame(name).sample(frac=1.0, random_state=0).reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        if limit:
            frame = frame.head(limit)
        half = len(frame) // 2
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
            result = train(frame.iloc[:half], "label", workers=2,
                           epochs=5 if quick else 20, settings=settings, progress=False,
                           name=name.lower(), ignore_checks=["target_leakage", "label_errors"])
            loaded = Registry.open(settings).load(result.model, result.version)
            rest = frame.iloc[half:]
            classes = [str(c) for c in loaded.bundle.classes]
            bands = np.quantile(rest[feature], np.linspace(0, 1, 5))
            for lo, hi in zip(bands[:-1], bands[1:], strict=True):
                window = rest[(rest[feature] >= lo) & (rest[feature] <= hi)]
                proba = loaded.predict_raw(window.drop(columns=["label"]))
                realised = float(np.mean(np.array(classes)[proba.argmax(1)] == window["label"]))
                est = estimate_performance(proba, seed=0)["accuracy"]
                out.append({"dataset": name, "window": f"{feature} in [{lo:.3g}, {hi:.3g}]",
                            "rows": len(window), "estimated": est["value"],
                            "band": (est["low"], est["high"]), "realised": realised,
                            "error": abs(est["value"] - realised)})
    return out


def concept_section(quick: bool = False) -> list[dict[str, Any]]:
    """Detection rate, delay and false alarms of each detector on streams with a known change."""
    from river.datasets import synth
    from sklearn.ensemble import HistGradientBoostingClassifier

    seeds = range(3 if quick else 10)
    position, length = 5000, 10_000
    streams = {
        "SEA 0→3": lambda s: (synth.SEA(variant=0, seed=s), synth.SEA(variant=3, seed=s + 100)),
        "Agrawal 2→6": lambda s: (synth.Agrawal(classification_function=2, seed=s),
                                   synth.Agrawal(classification_function=6, seed=s + 100)),
    }
    out: list[dict[str, Any]] = []
    for name, make in streams.items():
        stats: dict[str, dict[str, list[float]]] = {}
        for seed in seeds:
            before, after = make(seed)
            train_x, train_y = _take(before, 3000)
            model = HistGradientBoostingClassifier(random_state=0).fit(train_x, train_y)
            drift = synth.ConceptDriftStream(stream=make(seed + 1000)[0],
                                             drift_stream=make(seed + 1000)[1],
                                             position=position, width=50, seed=seed)
            x, y = _take(drift, length)
            errors = (model.predict(x) != y).astype(float)
            for detector, points in detect_changes(errors, binary=True).items():
                entry = stats.setdefault(detector, {"delay": [], "false": [], "found": []})
                early = [p for p in points if p < position]
                late = [p for p in points if p >= position]
                entry["false"].append(len(early))
                entry["found"].append(float(bool(late)))
                if late:
                    entry["delay"].append(late[0] - position)
        for detector, entry in stats.items():
            out.append({"stream": name, "detector": detector, "runs": len(seeds),
                        "detection_rate": float(np.mean(entry["found"])),
                        "mean_delay": float(np.mean(entry["delay"])) if entry["delay"] else None,
                        "false_alarms_per_run": float(np.mean(entry["false"]))})
    return out


def _take(stream: Any, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    rows, labels = [], []
    for x, y in stream.take(n):
        rows.append(x)
        labels.append(int(y))
    return pd.DataFrame.from_records(rows), np.array(labels)


def cbpe_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| dataset | window | rows | estimated [band] | realised | abs error |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['window']} | {r['rows']} | {r['estimated']:.3f} "
                     f"[{r['band'][0]:.3f}, {r['band'][1]:.3f}] | {r['realised']:.3f} | "
                     f"{r['error']:.3f} |")
    worst = max(r["error"] for r in rows)
    verdict = "met" if worst <= 0.03 else "NOT met"
    lines.append(f"\nworst abs error {worst:.3f} (target <= 0.03): {verdict}")
    return "\n".join(lines)


def concept_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["Change centred at position 5,000 of 10,000 (ConceptDriftStream, width 50).\n",
             "| stream | detector | runs | detection rate | mean delay | false alarms / run |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        delay = "-" if r["mean_delay"] is None else f"{r['mean_delay']:.0f}"
        lines.append(f"| {r['stream']} | {r['detector']} | {r['runs']} | "
                     f"{r['detection_rate']:.2f} | {delay} | {r['false_alarms_per_run']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and seeds")
    args = parser.parse_args()
    print("## CBPE\n\n" + cbpe_markdown(cbpe_section(args.quick)))
    print("\n## Concept drift\n\n" + concept_markdown(concept_section(args.quick)))


if __name__ == "__main__":
    main()
