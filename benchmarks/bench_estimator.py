"""Label-free accuracy estimates on covariate-shifted chunks: driftloop's PerformanceEstimator
against NannyML's CBPE on the same probabilities, and against the estimate it replaces::

    python3 -m venv /tmp/nannyml-venv && /tmp/nannyml-venv/bin/pip install nannyml statsmodels
    .venv/bin/python benchmarks/bench_estimator.py [--quick] [--nannyml-python PATH]

(1) Miscalibrated probabilities: scikit-learn models known to be miscalibrated, on data that
ships offline (no download): Breiman's waveform (3 classes) and the LED display (10 classes,
10 % noise), both river's generators, with Gaussian naive Bayes (over-confident, unevenly per
class); a 4-class ``make_classification`` with a logistic regression whose probabilities are
distorted per class (``p_c ∝ q_c ** a_c``, powers 0.4 … 2.5: one temperature cannot undo
them); river's bundled Shuttle (real, 49,097 rows, binary) with naive Bayes. The model is fit
on 5,000 rows, the estimators on 15,000 labelled reference rows; the other rows are sorted by
one feature and cut into 5,000-row chunks (each feature in turn: a covariate shift made by
selecting rows). Per chunk: |estimated − realised accuracy|; reported: the mean over chunks.

(2) driftloop's own models: ``driftloop.train(..., workers=1)`` (MLP, temperature-scaled) on
river's Bananas and on the waveform; the monitor's path — the version's stored reference
(validation outputs with their labels) fits the estimator — against the estimate before it
(the served probabilities as they are); windows are a feature's quartile bands (Bananas) or
5,000-row chunks sorted by a feature (waveform).

NannyML runs in its own venv (``--nannyml-python``), fed the same probabilities through a
temporary ``.npz``; when it cannot be run, a re-implementation of CBPE's published algorithm
(per-class isotonic regression on the reference, renormalised; accuracy = mean calibrated
probability of the predicted class) stands in, and every line says so. Prints JSON lines with
the ratios, then the markdown of ``benchmarks/RESULTS.md``'s section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 5000
NANNYML_PYTHON = "/tmp/nannyml-venv/bin/python"


# --- data ------------------------------------------------------------------------------------

def _take(stream: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for x, y in stream.take(n):
        rows.append(list(x.values()))
        labels.append(y)
    return np.asarray(rows, dtype=np.float64), np.unique(labels, return_inverse=True)[1]


def _distorted(n: int) -> tuple[np.ndarray, np.ndarray, Any]:
    """4 classes; a logistic regression's probabilities raised to a power per class."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(n, n_features=8, n_informative=6, n_redundant=2, n_classes=4,
                               n_clusters_per_class=1, random_state=0)
    powers = np.array([0.4, 1.0, 1.8, 2.5])

    class Distorted:
        def fit(self, xs: np.ndarray, ys: np.ndarray) -> Distorted:
            self.model = LogisticRegression(max_iter=1000).fit(xs, ys)
            return self

        def predict_proba(self, xs: np.ndarray) -> np.ndarray:
            p = self.model.predict_proba(xs) ** powers
            return p / p.sum(axis=1, keepdims=True)

    return x, y, Distorted()


def miscalibrated_cases(quick: bool) -> list[dict[str, Any]]:
    """Each case: name, model, reference probabilities and labels, chunks of probabilities
    and labels."""
    from river import datasets
    from river.datasets import synth
    from sklearn.naive_bayes import GaussianNB

    n = 40_000 if quick else 60_000
    sources: list[tuple[str, str, np.ndarray, np.ndarray, Any]] = []
    x, y = _take(synth.Waveform(seed=0), n)
    sources.append(("waveform (3 classes)", "GaussianNB", x, y, GaussianNB()))
    x, y = _take(synth.LED(seed=0, noise_percentage=0.1), n)
    sources.append(("LED (10 classes)", "GaussianNB", x, y, GaussianNB()))
    x, y, model = _distorted(n)
    sources.append(("make_classification (4 classes)", "logistic, p_c ** a_c", x, y, model))
    x, y = _take(datasets.Shuttle(), 49_097)
    sources.append(("Shuttle (binary, real)", "GaussianNB", x, y, GaussianNB()))
    cases = []
    for name, model_name, x, y, model in sources:
        order = np.random.default_rng(0).permutation(len(y))
        x, y = x[order], y[order]
        model.fit(x[:5000], y[:5000])
        rest_x, rest_y = x[20_000:], y[20_000:]
        rest_p = model.predict_proba(rest_x)
        chunks = []
        for feature in range(3):
            by = np.argsort(rest_x[:, feature], kind="stable")
            for start in range(0, len(by) - CHUNK + 1, CHUNK):
                rows = by[start:start + CHUNK]
                chunks.append((rest_p[rows], rest_y[rows]))
        cases.append({"dataset": name, "model": model_name,
                      "reference": (model.predict_proba(x[5000:20_000]), y[5000:20_000]),
                      "chunks": chunks})
    return cases


def own_model_cases(quick: bool) -> list[dict[str, Any]]:
    """driftloop-trained models; the reference is what the monitor reads from the store."""
    import pandas as pd
    from river import datasets
    from river.datasets import synth

    from driftloop.config import Settings
    from driftloop.monitor.reference import load_reference
    from driftloop.registry import Registry
    from driftloop.train.launcher import train

    frames = []
    bananas = pd.DataFrame.from_records([{**x, "label": str(y)} for x, y in datasets.Bananas()])
    frames.append(("Bananas (binary)", bananas, "quartiles"))
    x, y = _take(synth.Waveform(seed=1), 30_000 if quick else 45_000)
    waveform = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    waveform["label"] = y.astype(str)
    frames.append(("waveform (3 classes)", waveform, "chunks"))
    cases = []
    for name, frame, windows in frames:
        frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        half = len(frame) // 2 if windows == "quartiles" else 15_000
        with tempfile.TemporaryDirectory() as home:
            settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
            result = train(frame.iloc[:half], "label", workers=1, epochs=5 if quick else 20,
                           settings=settings, progress=False, name="bench", seed=0,
                           ignore_checks=["target_leakage", "label_errors"])
            with Registry.open(settings) as registry:
                loaded = registry.load(result.model, result.version)
                profile = load_reference(registry, result.model, result.version)
        rest = frame.iloc[half:].reset_index(drop=True)
        classes = [str(c) for c in loaded.bundle.classes]
        codes = rest["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        proba = loaded.predict_raw(rest.drop(columns=["label"]))
        features = [c for c in rest.columns if c != "label"][:3]
        chunks = []
        for feature in features:
            if windows == "quartiles":
                bands = np.quantile(rest[feature], np.linspace(0, 1, 5))
                for lo, hi in zip(bands[:-1], bands[1:], strict=True):
                    rows = np.flatnonzero((rest[feature] >= lo) & (rest[feature] <= hi))
                    chunks.append((proba[rows], codes[rows]))
            else:
                by = np.argsort(rest[feature].to_numpy(), kind="stable")
                for start in range(0, len(by) - CHUNK + 1, CHUNK):
                    rows = by[start:start + CHUNK]
                    chunks.append((proba[rows], codes[rows]))
        assert profile.labelled is not None, "training stored no labelled reference"
        cases.append({"dataset": name, "model": "driftloop MLP", "profile": profile,
                      "reference": profile.labelled.arrays(), "chunks": chunks,
                      "windows": "quartile bands of 2 features" if windows == "quartiles"
                      else f"{CHUNK:,}-row chunks sorted by 3 features"})
    return cases


# --- the estimators --------------------------------------------------------------------------

def _accuracy_errors(estimates: list[float], chunks: list[tuple[np.ndarray, np.ndarray]]
                     ) -> list[float]:
    return [abs(e - float(np.mean(p.argmax(axis=1) == y)))
            for e, (p, y) in zip(estimates, chunks, strict=True)]


def driftloop_estimates(case: dict[str, Any], calibration: str) -> tuple[list[float], str]:
    from driftloop.monitor.estimator import PerformanceEstimator, reference_estimator

    if calibration == "monitor":  # exactly what the monitor fits on a stored reference
        estimator, _ = reference_estimator(case["profile"])
        assert estimator is not None
    else:
        estimator = PerformanceEstimator(calibration).fit(*case["reference"])
    values = [estimator.estimate(p, metrics=("accuracy",), seed=i)["accuracy"]["value"]
              for i, (p, _) in enumerate(case["chunks"])]
    return values, estimator.calibration_


def today_estimates(case: dict[str, Any]) -> list[float]:
    """The estimate before the estimator: the served probabilities as they are."""
    from driftloop.monitor.performance import estimate_performance

    return [estimate_performance(p, metrics=("accuracy",), seed=i)["accuracy"]["value"]
            for i, (p, _) in enumerate(case["chunks"])]


def cbpe_reimplementation(case: dict[str, Any]) -> list[float]:
    """CBPE as NannyML publishes it: per class (binary: the positive class) an isotonic
    regression of the label on the probability, fitted on the reference; rows renormalised;
    accuracy = mean calibrated probability of the predicted class."""
    from sklearn.isotonic import IsotonicRegression

    proba, labels = case["reference"]
    columns = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    maps = {c: IsotonicRegression(out_of_bounds="clip").fit(proba[:, c], labels == c)
            for c in columns}
    out = []
    for p, _ in case["chunks"]:
        if len(columns) == 1:
            one = maps[1].predict(p[:, 1])
            calibrated = np.column_stack([1 - one, one])
        else:
            calibrated = np.column_stack([maps[c].predict(p[:, c]) for c in columns])
            total = calibrated.sum(axis=1, keepdims=True)
            uniform = np.full_like(calibrated, 1 / len(columns))
            calibrated = np.divide(calibrated, total, out=uniform, where=total > 0)
        out.append(float(calibrated[np.arange(len(p)), p.argmax(axis=1)].mean()))
    return out


def nannyml_estimates(case: dict[str, Any], python: str) -> tuple[list[float], str]:
    """NannyML's CBPE (in its own venv) on the case's probabilities; falls back to the
    re-implementation, saying why."""
    if not Path(python).exists():
        return cbpe_reimplementation(case), f"CBPE re-implementation ({python} not found)"
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {"reference_proba": case["reference"][0], "reference_labels": case["reference"][1]}
        for i, (p, _) in enumerate(case["chunks"]):
            arrays[f"chunk{i}"] = p
        np.savez(Path(tmp) / "in.npz", **arrays)
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        proc = subprocess.run([python, __file__, "--nannyml-worker", tmp], capture_output=True,
                              text=True, env=env, check=False)
        out = Path(tmp) / "out.json"
        if proc.returncode != 0 or not out.exists():
            why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return cbpe_reimplementation(case), f"CBPE re-implementation (NannyML failed: {why})"
        body = json.loads(out.read_text())
    return body["accuracy"], f"NannyML {body['version']} CBPE"


def _nannyml_worker(folder: str) -> None:
    """Run inside NannyML's venv: CBPE fitted on the reference, one estimate per chunk."""
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.simplefilter("ignore")
    data = np.load(Path(folder) / "in.npz")
    proba, labels = data["reference_proba"], data["reference_labels"]
    k = proba.shape[1]

    def frame(p: np.ndarray, y: np.ndarray | None = None) -> pd.DataFrame:
        df = pd.DataFrame(p, columns=[f"p{i}" for i in range(k)])
        df["pred"] = p.argmax(axis=1)
        if y is not None:
            df["y"] = y
        return df

    common = {"y_pred": "pred", "y_true": "y", "metrics": ["accuracy"], "chunk_number": 1}
    if k == 2:
        estimator = nml.CBPE(y_pred_proba="p1", problem_type="classification_binary", **common)
    else:
        estimator = nml.CBPE(y_pred_proba={i: f"p{i}" for i in range(k)},
                             problem_type="classification_multiclass", **common)
    estimator.fit(frame(proba, labels))
    values = []
    chunks = sorted((name for name in data.files if name.startswith("chunk")),
                    key=lambda name: int(name[5:]))
    for name in chunks:
        result = estimator.estimate(frame(data[name])).filter(period="analysis").to_df()
        values.append(float(result[("accuracy", "value")].iloc[0]))
    (Path(folder) / "out.json").write_text(json.dumps({"accuracy": values,
                                                       "version": nml.__version__}))


# --- the sections ----------------------------------------------------------------------------

def _mae(errors: list[float]) -> float:
    return float(np.mean(errors))


def miscalibrated_section(quick: bool, python: str) -> list[dict[str, Any]]:
    out = []
    for case in miscalibrated_cases(quick):
        auto, chosen = driftloop_estimates(case, "auto")
        temperature, _ = driftloop_estimates(case, "temperature")
        baseline, label = nannyml_estimates(case, python)
        maes = {"driftloop": _mae(_accuracy_errors(auto, case["chunks"])),
                "baseline": _mae(_accuracy_errors(baseline, case["chunks"])),
                "as_is": _mae(_accuracy_errors(today_estimates(case), case["chunks"])),
                "temperature": _mae(_accuracy_errors(temperature, case["chunks"]))}
        out.append({"bench": "estimator_miscalibrated", "dataset": case["dataset"],
                    "model": case["model"], "chunks": len(case["chunks"]),
                    "chunk_rows": CHUNK, "reference_rows": len(case["reference"][1]),
                    "calibration": chosen, "baseline": label,
                    "mae": {k: round(v, 5) for k, v in maes.items()},
                    "ratio_vs_baseline": round(maes["driftloop"] / maes["baseline"], 3),
                    "target_met": maes["driftloop"] <= maes["baseline"]})
    return out


def own_model_section(quick: bool, python: str) -> list[dict[str, Any]]:
    out = []
    for case in own_model_cases(quick):
        new, chosen = driftloop_estimates(case, "monitor")
        baseline, label = nannyml_estimates(case, python)
        maes = {"driftloop": _mae(_accuracy_errors(new, case["chunks"])),
                "today": _mae(_accuracy_errors(today_estimates(case), case["chunks"])),
                "baseline": _mae(_accuracy_errors(baseline, case["chunks"]))}
        out.append({"bench": "estimator_own_model", "dataset": case["dataset"],
                    "model": case["model"], "windows": case["windows"],
                    "chunks": len(case["chunks"]), "reference_rows": len(case["reference"][1]),
                    "calibration": chosen, "baseline": label,
                    "mae": {k: round(v, 5) for k, v in maes.items()},
                    "ratio_vs_today": round(maes["driftloop"] / maes["today"], 3),
                    "ratio_vs_baseline": round(maes["driftloop"] / maes["baseline"], 3),
                    "target_met": maes["driftloop"] <= maes["today"]})
    return out


def markdown(miscalibrated: list[dict[str, Any]], own: list[dict[str, Any]]) -> str:
    lines = ["| dataset | model | chunks | chosen | driftloop | NannyML CBPE | ratio | as is | "
             "temperature | target (≤ NannyML) |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in miscalibrated:
        m = r["mae"]
        lines.append(f"| {r['dataset']} | {r['model']} | {r['chunks']} | {r['calibration']} | "
                     f"{m['driftloop']:.4f} | {m['baseline']:.4f} | {r['ratio_vs_baseline']:.2f} "
                     f"| {m['as_is']:.4f} | {m['temperature']:.4f} | "
                     f"{'met' if r['target_met'] else 'NOT met'} |")
    lines += ["", "| dataset | windows | chosen | driftloop | today | ratio vs today | "
              "NannyML CBPE | target (≤ today) |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in own:
        m = r["mae"]
        lines.append(f"| {r['dataset']} | {r['chunks']} {r['windows']} | {r['calibration']} | "
                     f"{m['driftloop']:.4f} | {m['today']:.4f} | {r['ratio_vs_today']:.2f} | "
                     f"{m['baseline']:.4f} | {'met' if r['target_met'] else 'NOT met'} |")
    labels = sorted({r["baseline"] for r in miscalibrated + own})
    lines += ["", f"Baseline: {'; '.join(labels)}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and epochs")
    parser.add_argument("--nannyml-python", default=NANNYML_PYTHON,
                        help="the interpreter of a venv with nannyml installed")
    parser.add_argument("--nannyml-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.nannyml_worker:
        _nannyml_worker(args.nannyml_worker)
        return
    miscalibrated = miscalibrated_section(args.quick, args.nannyml_python)
    for line in miscalibrated:
        print(json.dumps(line), flush=True)
    own = own_model_section(args.quick, args.nannyml_python)
    for line in own:
        print(json.dumps(line), flush=True)
    print("\n" + markdown(miscalibrated, own))


if __name__ == "__main__":
    sys.exit(main())
