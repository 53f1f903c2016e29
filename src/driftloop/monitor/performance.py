"""Performance without labels (confidence-based, CBPE) and realised performance with labels.

**Estimated.** When the model's probabilities are calibrated, each row's true label is a draw
from its predicted distribution, so a window's accuracy, macro F1 and ROC AUC are random
variables whose distribution follows from the probabilities alone (Poisson–binomial for
accuracy). :func:`estimate_performance` draws ``simulations`` label vectors from the calibrated
probabilities, computes each metric on every draw with the same vectorised metric code as
evaluation, and reports the mean with the central ``confidence`` band. The band is the sampling
spread of the window's metric given the model is calibrated; it does not include calibration
error, which is why the reference window (the validation split) should show estimate ≈ realised
before the estimate is trusted (NannyML's CBPE; Guo et al. 2017 on calibration).

**Realised.** :func:`realised_performance` computes the metrics on the rows whose feedback
label arrived, with seeded bootstrap intervals (:mod:`driftloop.evaluate.intervals`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p1 = rng.uniform(0, 1, 2000)
>>> proba = np.column_stack([1 - p1, p1])
>>> est = estimate_performance(proba, seed=0)
>>> round(est["accuracy"]["value"], 2), est["accuracy"]["low"] < 0.75 < est["accuracy"]["high"]
(0.75, True)
>>> y = (rng.uniform(0, 1, 2000) < p1).astype(int)      # labels drawn as calibration promises
>>> real = realised_performance(y, proba, n_resamples=200, seed=0)
>>> abs(real["accuracy"]["value"] - est["accuracy"]["value"]) < 0.03, real["labelled"]
(True, 2000)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftloop.evaluate.intervals import metric_intervals
from driftloop.evaluate.metrics import METRICS

ESTIMATED_METRICS = ("accuracy", "macro_f1", "roc_auc")
_ROWS_PER_CHUNK = 2_000_000  # simulated labels held at once (16 MB of int64)
_LABEL_METRICS = frozenset({"accuracy", "balanced_accuracy", "macro_f1"})  # of the label only


def estimate_performance(
    proba: np.ndarray,
    *,
    simulations: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    metrics: tuple[str, ...] = ESTIMATED_METRICS,
    calibrated: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
) -> dict[str, dict[str, float | None]]:
    """Expected metrics of a window from its calibrated class probabilities (N×K), with bands.

    Returns ``{metric: {"value", "low", "high"}}``; a metric undefined on most draws (ROC AUC
    when one class is almost never drawn) is left out. An empty window gives ``{}``.

    ``proba`` are the probabilities the model served: their scores rank rows for ROC AUC and
    their argmax is the served label. ``calibrated`` (default: ``proba`` themselves) are the
    probabilities the true labels are drawn from, and ``predicted`` (default: the argmax of
    ``proba``) the labels the model served, which accuracy and macro F1 score:
    :class:`~driftloop.monitor.estimator.PerformanceEstimator` passes its recalibrated
    probabilities and the served labels.

    Examples
    --------
    >>> est = estimate_performance(np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), seed=1)
    >>> round(est["accuracy"]["value"], 4)                 # (0.9 + 0.8 + 0.5) / 3
    0.7333
    >>> est = estimate_performance(np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), seed=1,
    ...                            calibrated=np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]]))
    >>> round(est["accuracy"]["value"], 4)                 # (0.7 + 0.6 + 0.5) / 3
    0.6
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) == 0:
        return {}
    calibrated = proba if calibrated is None else np.asarray(calibrated, dtype=np.float64)
    served = proba.argmax(axis=1) if predicted is None else np.asarray(predicted, np.int64)
    # label metrics read the served label as the argmax of its one-hot row
    onehot = np.eye(proba.shape[1])[served]
    draws = _draw_labels(calibrated, simulations, seed)
    out: dict[str, dict[str, float | None]] = {}
    ones = np.ones((1, len(proba)))
    for name in metrics:
        metric = METRICS[name]
        outputs = onehot if name in _LABEL_METRICS else proba
        values = np.array([metric.resampled(ones, y, outputs)[0] for y in draws])
        values = values[np.isfinite(values)]
        if len(values) < simulations / 2:
            continue
        tail = (1 - confidence) / 2
        # accuracy's expectation is exact (the mean calibrated probability of the served
        # label); the others are simulated
        value = (float(calibrated[np.arange(len(served)), served].mean()) if name == "accuracy"
                 else float(values.mean()))
        out[name] = {
            "value": value,
            "low": float(np.quantile(values, tail)),
            "high": float(np.quantile(values, 1 - tail)),
        }
    return out


def realised_performance(
    y_true: np.ndarray,
    outputs: np.ndarray,
    *,
    task: str = "binary",
    n_resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics on labelled rows with bootstrap intervals, and how many rows were labelled.

    Examples
    --------
    >>> out = realised_performance(np.array([0, 1, 1, 0]),
    ...                            np.array([[.8, .2], [.3, .7], [.6, .4], [.9, .1]]),
    ...                            n_resamples=50)
    >>> out["labelled"], out["accuracy"]["value"]
    (4, 0.75)
    """
    y_true = np.asarray(y_true)
    out: dict[str, Any] = {"labelled": int(len(y_true))}
    if len(y_true) == 0:
        return out
    intervals = metric_intervals(task, y_true, np.asarray(outputs), n_resamples=n_resamples,
                                 confidence=confidence, seed=seed)
    for name, interval in intervals.items():
        out[name] = {"value": interval.value, "low": interval.low, "high": interval.high}
    return out


def _draw_labels(proba: np.ndarray, simulations: int, seed: int) -> np.ndarray:
    """``simulations`` label vectors, each row's label drawn from its probabilities."""
    rng = np.random.default_rng(seed)
    cumulative = np.cumulative_sum(proba / proba.sum(axis=1, keepdims=True), axis=1)
    cumulative[:, -1] = 1.0
    draws = np.empty((simulations, len(proba)), dtype=np.int64)
    per_chunk = max(1, _ROWS_PER_CHUNK // len(proba))
    for start in range(0, simulations, per_chunk):
        stop = min(simulations, start + per_chunk)
        u = rng.uniform(size=(stop - start, len(proba), 1))
        draws[start:stop] = (u > cumulative[None, :, :]).sum(axis=2)
    return draws


__all__ = ["ESTIMATED_METRICS", "estimate_performance", "realised_performance"]
