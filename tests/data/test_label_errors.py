"""Label errors: cross-validated probabilities + confident learning on real, flipped labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris

from driftloop.data.label_errors import find_label_errors


def _flip(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), round(share * len(y)), replace=False)
    classes = np.unique(y)
    noisy = y.copy()
    shift = rng.integers(1, len(classes), len(flipped))
    noisy[flipped] = classes[(np.searchsorted(classes, y[flipped]) + shift) % len(classes)]
    return noisy, flipped


def test_breast_cancer_with_5_percent_flipped_labels():
    frame = load_breast_cancer(as_frame=True).frame
    y, flipped = _flip(frame.pop("target").to_numpy().copy(), 0.05, seed=1)
    issues = find_label_errors(frame, dict.fromkeys(frame.columns, "numeric"), y, seed=0)
    hits = len(set(issues.rows.tolist()) & set(flipped.tolist()))
    assert hits / len(flipped) >= 0.6 and hits / issues.count >= 0.6
    assert issues.rate == issues.count / len(frame) and issues.folds == 5
    assert np.all(np.diff(issues.scores) >= 0)  # most suspicious (lowest confidence) first


def test_categorical_features_and_sampling_map_back_to_table_rows():
    frame = load_iris(as_frame=True).frame
    y, flipped = _flip(frame.pop("target").to_numpy().copy(), 0.05, seed=2)
    frame["petal_size"] = pd.cut(frame["petal length (cm)"], 4, labels=["s", "m", "l", "xl"])
    frame["petal_size"] = frame["petal_size"].astype(str)
    kinds = {**dict.fromkeys(frame.columns[:4], "numeric"), "petal_size": "categorical"}
    issues = find_label_errors(frame, kinds, y, max_rows=120, seed=0)
    assert issues.checked_rows == 120
    assert set(issues.rows.tolist()) <= set(range(150))
    assert len(set(issues.rows.tolist()) & set(flipped.tolist())) >= 3


def test_a_class_with_one_row_cannot_be_cross_validated():
    frame = pd.DataFrame({"x": np.arange(30.0)})
    y = np.r_[np.zeros(29, int), 1]
    assert find_label_errors(frame, {"x": "numeric"}, y) is None
