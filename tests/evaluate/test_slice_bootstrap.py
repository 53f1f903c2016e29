"""A slice's accuracy interval drawn as Binomial counts is the row bootstrap's interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.evaluate.intervals import bootstrap_interval
from driftloop.evaluate.metrics import METRICS
from driftloop.evaluate.slices import _slice_interval, evaluate_slices


@pytest.mark.parametrize("n,accuracy", [(30, 0.7), (400, 0.93), (5000, 0.6)])
def test_binomial_interval_matches_the_row_bootstrap(n, accuracy):
    rng = np.random.default_rng(n)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    proba = np.eye(2)[np.where(right, y, 1 - y)] * 0.8 + 0.1
    rows = bootstrap_interval(METRICS["accuracy"], y, proba, n_resamples=4000, seed=0)
    counts = _slice_interval(METRICS["accuracy"], y, proba, 4000, 0.95, 0)
    assert counts.value == rows.value
    half = max(1.0 / n, 2 * np.sqrt(rows.value * (1 - rows.value) / n) * 0.1)  # MC error
    assert counts.low == pytest.approx(rows.low, abs=half)
    assert counts.high == pytest.approx(rows.high, abs=half)


def test_the_worse_slice_is_flagged_as_with_the_row_bootstrap():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"city": rng.choice(["Oslo", "Rome", "Lima"], 3000),
                          "age": rng.uniform(18, 80, 3000)})
    y = rng.integers(0, 2, 3000)
    lima = (frame["city"] == "Lima").to_numpy()
    wrong = rng.random(3000) < np.where(lima, 0.2, 0.05)
    proba = np.eye(2)[np.where(wrong, 1 - y, y)] * 0.8 + 0.1
    report = evaluate_slices(frame, ["city", "age"], y, proba, "binary")
    assert [(s.column, s.value) for s in report.flagged] == [("city", "Lima")]
    for s in report.slices:  # every interval close to the row bootstrap's
        rows = (frame[s.column] == s.value).to_numpy() if s.column == "city" else None
        if rows is None:
            continue
        reference = bootstrap_interval(METRICS["accuracy"], y[rows], proba[rows], seed=0)
        assert s.interval.low == pytest.approx(reference.low, abs=0.01)
        assert s.interval.high == pytest.approx(reference.high, abs=0.01)
        assert s.interval.excludes(report.overall) == reference.excludes(report.overall)


@pytest.mark.parametrize("name", ["rmse", "mae"])
@pytest.mark.parametrize("n", [30, 2500])
def test_regression_slice_interval_is_the_row_bootstrap_on_the_same_draws(name, n):
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    pred = y + rng.normal(0, 0.5, n) * (1 + (np.arange(n) % 3))
    rows = bootstrap_interval(METRICS[name], y, pred, n_resamples=1000, seed=4)
    means = _slice_interval(METRICS[name], y, pred, 1000, 0.95, 4)
    assert means.value == rows.value
    assert means.low == pytest.approx(rows.low, rel=1e-9)
    assert means.high == pytest.approx(rows.high, rel=1e-9)
