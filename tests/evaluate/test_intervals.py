"""Bootstrap intervals: the vectorised metrics agree with sklearn and with a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from driftloop.errors import UsageError
from driftloop.evaluate.calibration import softmax
from driftloop.evaluate.intervals import (
    bootstrap_interval,
    counts_of,
    metric_intervals,
    resample_indices,
)
from driftloop.evaluate.metrics import (
    METRICS,
    classification_metrics,
    metrics_for,
    regression_metrics,
    resampled_auc,
)


def _classification(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    proba = softmax(np.eye(k)[y] * 1.5 + rng.normal(size=(n, k)))
    return y, proba


def _regression(seed: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 10, n)
    return y, y + rng.normal(0, 3, n)


@pytest.mark.parametrize("k", [2, 4])
def test_vectorised_classification_metrics_equal_sklearn(k):
    y, proba = _classification(seed=k, n=700, k=k)
    expected = classification_metrics(y, proba)
    for metric in metrics_for("binary"):
        assert metric(y, proba) == pytest.approx(expected[metric.name], abs=1e-9), metric.name


def test_vectorised_regression_metrics_equal_sklearn():
    y, pred = _regression(seed=0, n=500)
    expected = regression_metrics(y, pred)
    for metric in metrics_for("regression"):
        assert metric(y, pred) == pytest.approx(expected[metric.name], abs=1e-9), metric.name


def test_weighted_auc_equals_sklearn_with_sample_weights_and_ties():
    rng = np.random.default_rng(4)
    score = rng.integers(0, 20, 300) / 20.0  # many ties
    positive = rng.random(300) < 0.3
    weights = rng.integers(0, 4, size=(3, 300)).astype(float)
    got = resampled_auc(weights, positive, score)
    for row, value in zip(weights, got, strict=True):
        assert value == pytest.approx(roc_auc_score(positive, score, sample_weight=row), abs=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_vectorised_equals_a_per_resample_loop(name):
    metric = METRICS[name]
    y, out = _regression(1, 120) if metric.kind == "regression" else _classification(1, 120, 3)
    fast = bootstrap_interval(metric, y, out, n_resamples=150, seed=7)
    slow = bootstrap_interval(lambda a, b: metric(a, b), y, out, n_resamples=150, seed=7)
    assert (fast.value, fast.low, fast.high) == pytest.approx((slow.value, slow.low, slow.high),
                                                              abs=1e-9)


def test_intervals_are_seeded_and_cover_the_textbook_width():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    proba = np.eye(2)[np.where(rng.random(n) < 0.8, y, 1 - y)] * 0.8 + 0.1  # 80% accurate
    a = metric_intervals("binary", y, proba, seed=3)
    b = metric_intervals("binary", y, proba, seed=3)
    c = metric_intervals("binary", y, proba, seed=4)
    assert a == b and a["accuracy"] != c["accuracy"]
    acc = a["accuracy"]
    normal_width = 2 * 1.96 * np.sqrt(acc.value * (1 - acc.value) / n)
    assert acc.high - acc.low == pytest.approx(normal_width, rel=0.15)
    assert acc.low < acc.value < acc.high and not acc.excludes(acc.value)


def test_undefined_metrics_are_left_out_and_rare_classes_get_no_interval():
    # two single-row classes: both are drawn in only ~40% of resamples, so the one-vs-rest
    # AUC is undefined in most of them
    y = np.array([0] * 60 + [1, 2])
    proba = np.tile([0.8, 0.1, 0.1], (62, 1))
    out = metric_intervals("multiclass", y, proba, n_resamples=200, seed=0)
    assert out["roc_auc"].value == 0.5
    assert out["roc_auc"].low is None and out["roc_auc"].high is None
    only_one_class = metric_intervals("binary", np.zeros(10, int), np.tile([0.9, 0.1], (10, 1)),
                                      n_resamples=50)
    assert "roc_auc" not in only_one_class
    constant = metric_intervals("regression", np.ones(5), np.arange(5.0), n_resamples=50)
    assert "r2" not in constant


def test_resampling_in_chunks_counts_every_draw():
    chunks = list(resample_indices(7, 10, seed=0, max_cells=20))
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 2]
    counts = counts_of(np.concatenate(chunks), 7)
    assert counts.sum(axis=1).tolist() == [7.0] * 10


def test_bad_input_is_named():
    with pytest.raises(UsageError, match="same number of rows; got lengths \\[3, 4\\]"):
        bootstrap_interval(METRICS["accuracy"], np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(UsageError, match="zero rows"):
        bootstrap_interval(METRICS["mae"], np.zeros(0), np.zeros(0))
