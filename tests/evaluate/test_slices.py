"""Slices: a slice made deliberately worse is flagged and named; tiny slices are not ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataError
from driftloop.evaluate.slices import MISSING, evaluate_slices, slice_labels


def _classification(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "region": rng.choice(["north", "south", "east", "west"], n),
        "age": rng.uniform(18, 90, n),
        "vip": rng.random(n) < 0.5,
    })
    frame.loc[:4, "region"] = "island"  # 5 rows: too small to rank
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.9  # 90% accurate everywhere ...
    south = (frame["region"] == "south").to_numpy()
    right[south] = rng.random(south.sum()) < 0.7  # ... except the south: 70%
    right[:5] = False  # the tiny slice is always wrong
    pred = np.where(right, y, 1 - y)
    proba = np.eye(2)[pred] * 0.8 + 0.1
    return frame, y, proba


def test_a_deliberately_worse_slice_is_flagged_and_named_worst():
    frame, y, proba = _classification()
    report = evaluate_slices(frame, ["region", "age", "vip"], y, proba, "binary",
                             n_resamples=300, seed=0)
    assert report.metric == "accuracy" and report.tolerance_kind == "absolute"
    assert [(s.column, s.value) for s in report.flagged] == [("region", "south")]
    worst = report.worst
    assert (worst.column, worst.value) == ("region", "south")
    assert worst.gap < -0.1 and worst.interval.high < report.overall
    others = [s for s in report.slices if not s.too_small and s.value != "south"]
    assert others and not any(s.flagged for s in others)


def test_tiny_slices_are_reported_as_too_small_not_ranked():
    frame, y, proba = _classification()
    report = evaluate_slices(frame, ["region"], y, proba, "binary", n_resamples=100)
    island = next(s for s in report.slices if s.value == "island")
    assert island.too_small and island.count == 5 and island.interval is None
    assert not island.flagged and report.worst.value != "island"
    assert report.to_json()["slices"][1]["too_small"] is True  # sorted: east, island, ...


def test_numeric_columns_are_cut_into_quantile_bins_with_a_missing_slice():
    values = pd.Series(np.r_[np.arange(100.0), [np.nan] * 7])
    labels = slice_labels(values, n_bins=5)
    counts = pd.Series(labels).value_counts()
    assert counts[MISSING] == 7
    assert sorted(counts.drop(MISSING).tolist()) == [20, 20, 20, 20, 20]
    assert "[0, 19.8)" in counts.index and "[79.2, 99]" in counts.index
    # a numeric column with few values is sliced per value
    assert set(slice_labels(pd.Series([1, 2, 2, 1, 3]))) == {"1", "2", "3"}


def test_regression_slices_use_a_relative_tolerance_on_rmse():
    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame({"shop": rng.choice(["a", "b", "c"], n)})
    y = rng.normal(1000, 100, n)
    noise = np.where(frame["shop"] == "c", 60.0, 20.0)
    pred = y + rng.normal(0, 1, n) * noise
    report = evaluate_slices(frame, ["shop"], y, pred, "regression", n_resamples=200)
    assert report.metric == "rmse" and not report.greater_is_better
    assert report.tolerance_kind == "relative"
    assert [s.value for s in report.flagged] == ["c"] and report.worst.value == "c"
    assert report.worst.gap > 0


def test_slice_errors_name_the_column():
    frame, y, proba = _classification(n=100)
    with pytest.raises(DataError, match="slice column 'city' not found"):
        evaluate_slices(frame, ["city"], y, proba, "binary")
    with pytest.raises(DataError, match="slice metric 'rmse' is not one of accuracy"):
        evaluate_slices(frame, ["region"], y, proba, "binary", metric="rmse")
