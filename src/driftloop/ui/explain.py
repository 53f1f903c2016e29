"""The evaluation in plain words, and the simple baselines a model must beat.

:func:`baselines` scores, on the run's own test split (the arrays the ranks trained beside),
the majority class and scikit-learn's ``HistGradientBoostingClassifier`` fitted on the same
training split, each against the model with a paired bootstrap interval of the accuracy
difference (:func:`driftloop.evaluate.paired.paired_difference`): "better" or "worse" is said
only when the interval excludes 0. :func:`explain` turns a version's stored evaluation into
sentences: accuracy as "right in N of 100 cases (between L and H)", calibration, weak slices.

Examples
--------
>>> right_in_100({"value": 0.961, "low": 0.95, "high": 0.97})
'right in 96 of 100 cases (between 95 and 97)'
>>> verdict(0.02, 0.01, 0.03, "the majority class")
'better than the majority class (by 1 to 3 points of accuracy)'
>>> verdict(-0.01, -0.03, 0.01, "gradient-boosted trees")
'no clear difference from gradient-boosted trees (between -3 and 1 points)'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from driftloop.evaluate.paired import RowOutcomes, paired_difference
from driftloop.registry import Registry
from driftloop.registry.evidence import evaluations
from driftloop.train.spec import DATA_DIR


def right_in_100(interval: dict[str, Any]) -> str:
    """An accuracy interval as counts out of 100."""
    text = f"right in {round(100 * interval['value'])} of 100 cases"
    if interval.get("low") is not None and interval.get("high") is not None:
        text += f" (between {round(100 * interval['low'])} and {round(100 * interval['high'])})"
    return text


def verdict(difference: float, low: float, high: float, other: str) -> str:
    """The paired comparison with ``other`` in words, decided by the interval."""
    if low > 0:
        return f"better than {other} (by {_points(low)} to {_points(high)} points of accuracy)"
    if high < 0:
        return f"worse than {other} (by {_points(-high)} to {_points(-low)} points of accuracy)"
    return f"no clear difference from {other} (between {_points(low)} and {_points(high)} " \
           "points)"


def _points(share: float) -> str:
    """Percentage points, one decimal below 10 (so a small gap does not read as 0)."""
    points = 100 * share
    return f"{points:.1f}".rstrip("0").rstrip(".") if abs(points) < 10 else f"{points:.0f}"


def baselines(run_dir: str | Path, model_probs: np.ndarray, *, seed: int = 0
              ) -> list[dict[str, Any]]:
    """The majority class and gradient-boosted trees on the run's split, each compared with
    the model's test probabilities ``model_probs`` (classification only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    data = Path(run_dir) / DATA_DIR
    x_train, y_train = _features(data, "train"), np.load(data / "train_y.npy")
    x_test, y_test = _features(data, "test"), np.load(data / "test_y.npy")
    k = model_probs.shape[1]
    majority = np.zeros_like(model_probs)
    majority[:, int(np.bincount(y_train.astype(int), minlength=k).argmax())] = 1.0
    trees = HistGradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    tree_probs = np.zeros_like(model_probs)
    tree_probs[:, trees.classes_.astype(int)] = trees.predict_proba(x_test)
    task = "binary" if k == 2 else "multiclass"
    ours = RowOutcomes.from_predictions(task, y_test, model_probs)
    out = []
    for name, probs in (("the majority class", majority), ("gradient-boosted trees", tree_probs)):
        c = paired_difference("accuracy", ours, RowOutcomes.from_predictions(task, y_test, probs),
                              seed=seed)
        out.append({"name": name, "accuracy": float((probs.argmax(1) == y_test).mean()),
                    "difference": c.difference, "low": c.low, "high": c.high,
                    "words": verdict(c.difference, c.low, c.high, name)})
    return out


def split_probabilities(registry: Registry, name: str, version: int, run_dir: str | Path
                       ) -> np.ndarray:
    """The version's calibrated probabilities on its run's test split."""
    data = Path(run_dir) / DATA_DIR
    x_cat = data / "test_xcat.npy"
    return registry.load(name, version).predict_arrays(
        np.load(data / "test_x.npy"), np.load(x_cat) if x_cat.exists() else None)


def explain(registry: Registry, name: str, version: int) -> dict[str, Any]:
    """A version's evaluation as sentences (accuracy, calibration, weak groups)."""
    record = registry.get(name, version)
    found = evaluations(registry.store, registry.artifacts, record)
    if not found:
        return {"sentences": ["This version has no stored evaluation yet."], "slices": []}
    body = found[0].body
    sentences = []
    accuracy = body["metrics"].get("accuracy")
    if accuracy:
        sentences.append(f"On {body['dataset'].get('rows', 'the')} test rows it was not "
                         f"trained on, the model is {right_in_100(accuracy)}.")
    after = (body.get("calibration") or {}).get("after") or {}
    if "ece" in after:
        off = round(100 * after["ece"])
        sentences.append(f"When it says 80 %, it is right about {80 - off} to {min(100, 80 + off)}"
                         f" % of the time (its confidence is off by {off} points on average).")
    weak = [s for s in (body.get("slices") or {}).get("slices", []) if s.get("flagged")]
    slices = [f"where {s['column']} is {s['value']}: {right_in_100(s['metric'])}" for s in weak]
    sentences.append("No group of rows is clearly worse than the rest." if not weak else
                     f"It is clearly worse for {len(weak)} group(s) of rows (listed below).")
    return {"sentences": sentences, "slices": slices}


def _features(data: Path, split: str) -> np.ndarray:
    x = np.load(data / f"{split}_x.npy")
    cat = data / f"{split}_xcat.npy"
    return np.hstack([x, np.load(cat)]) if cat.exists() else x


__all__ = ["baselines", "explain", "right_in_100", "split_probabilities", "verdict"]
