"""Point metrics of a model's predictions (scikit-learn does the arithmetic).

Classification takes class codes and a probability matrix; regression takes values on the
original scale.

Examples
--------
>>> import numpy as np
>>> y = np.array([0, 1, 1, 0]); p = np.array([[.9, .1], [.2, .8], [.6, .4], [.7, .3]])
>>> m = classification_metrics(y, p)
>>> m["accuracy"], m["n"]
(0.75, 4)
>>> round(regression_metrics(np.array([1., 2., 3.]), np.array([1., 2., 4.]))["mae"], 4)
0.3333

The same metrics exist as a table of :class:`Metric` records whose ``resampled`` function
computes the metric for many bootstrap resamples at once: it takes a count matrix ``W``
(R resamples × N rows, how often each row was drawn) and returns R values, so a thousand
resamples cost a few matrix products instead of a thousand sklearn calls.

>>> W = np.array([[1, 1, 1, 1], [2, 0, 2, 0]])
>>> METRICS["accuracy"].resampled(W, y, p).tolist()
[0.75, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from sklearn import metrics as skm

from driftloop.errors import UsageError


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC (one-vs-rest), log loss, Brier score."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "n": len(y_true),
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "balanced_accuracy": _balanced_accuracy(y_true, pred),
        "macro_f1": float(
            skm.f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)
        ),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=labels)),
        "brier": float(np.mean(np.sum((proba - np.eye(n_classes)[y_true]) ** 2, axis=1))),
        "majority_class_rate": float(np.bincount(y_true, minlength=n_classes).max() / len(y_true)),
    }
    present = np.unique(y_true)
    if len(present) == n_classes and n_classes >= 2:
        # AUC is undefined when a class is absent from the evaluation rows
        if n_classes == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            )
    return out


def _balanced_accuracy(y_true: np.ndarray, pred: np.ndarray) -> float:
    # sklearn warns when a predicted class is absent from y_true; the mean recall over the
    # classes that are present is the quantity we want, so compute it directly
    recalls = [float(np.mean(pred[y_true == c] == c)) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² on the original scale of the target."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    out = {
        "n": len(y_true),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
    }
    if len(y_true) > 1 and np.ptp(y_true) > 0:  # R² is undefined on a constant target
        out["r2"] = float(skm.r2_score(y_true, y_pred))
    return out


def primary_metric(task: str) -> str:
    """The metric shown first for a task."""
    return "rmse" if task == "regression" else "accuracy"


MetricKind = Literal["classification", "regression"]
Resampled = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One metric: its name, direction, range and its many-resamples-at-once implementation.

    Attributes
    ----------
    resampled
        ``f(W, y_true, outputs) -> values``: ``W`` is an R×N matrix of row counts (weights);
        returns R values, NaN where the metric is undefined for that resample (AUC with one
        class absent, R² of a constant target). ``W`` of ones gives the plain metric.
    greater_is_better
        Accuracy yes, RMSE no; decides which side of overall a slice is worse on.
    bounded
        Values lie in [0, 1]: a slice tolerance is then absolute, otherwise relative.
    """

    name: str
    kind: MetricKind
    greater_is_better: bool
    bounded: bool
    resampled: Resampled

    def __call__(self, y_true: np.ndarray, outputs: np.ndarray) -> float:
        """The metric on all rows once (NaN when undefined)."""
        return float(self.resampled(np.ones((1, len(y_true))), y_true, outputs)[0])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _onehots(y: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eye = np.eye(proba.shape[1])
    return eye[np.asarray(y, dtype=np.int64)], eye[np.asarray(proba).argmax(axis=1)]


def _accuracy(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    correct = (np.asarray(proba).argmax(axis=1) == y).astype(np.float64)
    return _ratio(W @ correct, W.sum(axis=1))


def _resampled_balanced_accuracy(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    truth, pred = _onehots(y, proba)
    count, hits = W @ truth, W @ (truth * pred)
    present = count > 0  # mean recall over the classes present in the resample
    recall = np.divide(hits, count, out=np.zeros_like(hits), where=present)
    return _ratio(recall.sum(axis=1), present.sum(axis=1).astype(np.float64))


def _macro_f1(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    truth, pred = _onehots(y, proba)
    tp, support, predicted = W @ (truth * pred), W @ truth, W @ pred
    den = support + predicted  # F1 = 2 TP / (2 TP + FP + FN); 0 when a class is never seen
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    return f1.mean(axis=1)


def _log_loss(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    picked = np.asarray(proba, dtype=np.float64)[np.arange(len(y)), np.asarray(y, np.int64)]
    return _ratio(W @ -np.log(np.clip(picked, 1e-15, 1.0)), W.sum(axis=1))


def _brier(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    truth, _ = _onehots(y, proba)
    return _ratio(W @ np.sum((proba - truth) ** 2, axis=1), W.sum(axis=1))


def resampled_auc(W: np.ndarray, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` for ``positive`` under each row-count vector of ``W``.

    The Mann–Whitney form with ties counted half, computed on tie groups of the sorted
    scores, so it matches ``sklearn.metrics.roc_auc_score`` with weights.

    Examples
    --------
    >>> resampled_auc(np.ones((1, 4)), np.array([0, 0, 1, 1], bool), np.array([.1, .4, .35, .8]))
    array([0.75])
    """
    order = np.argsort(score, kind="stable")
    ranked = np.asarray(score)[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    weights = np.asarray(W, dtype=np.float64)[:, order]
    pos = np.asarray(positive, dtype=bool)[order]
    w_pos = np.add.reduceat(weights * pos, starts, axis=1)
    w_neg = np.add.reduceat(weights * ~pos, starts, axis=1)
    below = np.cumsum(w_neg, axis=1) - w_neg
    wins = np.sum(w_pos * (below + 0.5 * w_neg), axis=1)
    return _ratio(wins, w_pos.sum(axis=1) * w_neg.sum(axis=1))


def _roc_auc(W: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] == 2:
        return resampled_auc(W, y == 1, proba[:, 1])
    # one-vs-rest, unweighted mean over classes; undefined when a class is absent
    per_class = [resampled_auc(W, y == c, proba[:, c]) for c in range(proba.shape[1])]
    return np.mean(per_class, axis=0)


def _residuals(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=np.float64) - np.asarray(pred, dtype=np.float64)


def _rmse(W: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.sqrt(_ratio(W @ _residuals(y, pred) ** 2, W.sum(axis=1)))


def _mae(W: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return _ratio(W @ np.abs(_residuals(y, pred)), W.sum(axis=1))


def _r2(W: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    centred = np.asarray(y, dtype=np.float64) - np.mean(y)  # shift-invariant, less cancellation
    total = W @ centred**2 - _ratio((W @ centred) ** 2, W.sum(axis=1))
    scale = np.abs(W @ centred**2) * 1e-12
    return 1.0 - np.divide(
        W @ _residuals(y, pred) ** 2, total, out=np.full(len(W), np.nan), where=total > scale
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", True, True, _accuracy),
        Metric("balanced_accuracy", "classification", True, True, _resampled_balanced_accuracy),
        Metric("macro_f1", "classification", True, True, _macro_f1),
        Metric("roc_auc", "classification", True, True, _roc_auc),
        Metric("log_loss", "classification", False, False, _log_loss),
        Metric("brier", "classification", False, False, _brier),
        Metric("rmse", "regression", False, False, _rmse),
        Metric("mae", "regression", False, False, _mae),
        Metric("r2", "regression", True, False, _r2),
    )
}
"""Every metric with an interval, by name."""


def metrics_for(task: str) -> list[Metric]:
    """The metrics reported for a task (``binary``, ``multiclass`` or ``regression``).

    Examples
    --------
    >>> [m.name for m in metrics_for("regression")]
    ['rmse', 'mae', 'r2']
    """
    kind = "regression" if task == "regression" else "classification"
    return [m for m in METRICS.values() if m.kind == kind]


def watched_metric(configured: str | None, task: str, *, setting: str = "metric") -> str:
    """The metric that monitoring or the loop watches on a model of ``task``.

    ``configured`` (the ``monitor.performance_metric`` or ``loop.metric`` setting, named by
    ``setting`` in errors) when set, else the task's primary metric: accuracy for
    classification, RMSE for regression. A metric that the task does not report would never
    be measured, so it is refused with what is allowed instead of silently never firing.

    Examples
    --------
    >>> watched_metric(None, "binary"), watched_metric(None, "regression")
    ('accuracy', 'rmse')
    >>> watched_metric("mae", "regression")
    'mae'
    >>> watched_metric("accuracy", "regression", setting="loop.metric")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: loop.metric = 'accuracy' is not reported for a regression model: use one of rmse, mae, r2, or leave loop.metric unset (null) to watch rmse.
    """  # noqa: E501
    if configured is None:
        return primary_metric(task)
    allowed = [m.name for m in metrics_for(task)]
    if configured not in allowed:
        raise UsageError(
            f"{setting} = {configured!r} is not reported for a {task} model: use one of "
            f"{', '.join(allowed)}, or leave {setting} unset (null) to watch "
            f"{primary_metric(task)}.")
    return configured


class Worse(NamedTuple):
    """How much worse a value is than a reference: ``by`` in the metric's units (positive:
    worse, by the metric's direction) and ``compared``, the number a drop setting is compared
    with: ``by`` itself for metrics bounded in [0, 1], ``by`` relative to the reference for
    unbounded ones (RMSE, log loss), so one drop setting means the same on every scale."""

    by: float
    compared: float


def _direction(metric: str) -> tuple[bool, bool]:
    """(greater_is_better, bounded) of ``metric``; a metric not in :data:`METRICS` is taken
    as a score in [0, 1] where higher is better."""
    known = METRICS.get(metric)
    return (True, True) if known is None else (known.greater_is_better, known.bounded)


def worse_by(metric: str, value: float, reference: float) -> Worse:
    """How much worse ``value`` is than ``reference`` for ``metric`` (see :class:`Worse`).

    The one definition behind the monitor's ``performance_drop`` alert, the loop's metric
    trigger and the dashboard's degraded badge.

    Examples
    --------
    >>> worse_by("accuracy", 0.75, 0.875)            # absolute: accuracy is in [0, 1]
    Worse(by=0.125, compared=0.125)
    >>> worse_by("rmse", 12.0, 10.0)                 # relative: 20 % worse
    Worse(by=2.0, compared=0.2)
    >>> worse_by("rmse", 9.0, 10.0).by < 0           # lower RMSE is better
    True
    >>> worse_by("rmse", 1.0, 0.0)                   # worse than a perfect reference
    Worse(by=1.0, compared=inf)
    """
    greater_is_better, bounded = _direction(metric)
    gap = (reference - value) if greater_is_better else (value - reference)
    if bounded:
        return Worse(gap, gap)
    if reference:
        return Worse(gap, gap / abs(reference))
    return Worse(gap, float("inf") if gap > 0 else 0.0)


def drop_bound(metric: str, reference: float, drop: float) -> float:
    """The value of ``metric`` past which it is more than ``drop`` worse than ``reference``
    (the inverse of :func:`worse_by`: ``worse_by(metric, bound, reference).compared == drop``).

    Examples
    --------
    >>> drop_bound("accuracy", 0.9, 0.05), drop_bound("rmse", 10.0, 0.2)
    (0.85, 12.0)
    """
    greater_is_better, bounded = _direction(metric)
    margin = drop if bounded else drop * abs(reference)
    return round(reference - margin if greater_is_better else reference + margin, 12)


def is_worse(metric: str, value: float, bound: float) -> bool:
    """Whether ``value`` is strictly worse than ``bound`` by the metric's direction.

    Examples
    --------
    >>> is_worse("accuracy", 0.8, 0.85), is_worse("rmse", 12.5, 12.0), is_worse("rmse", 12.0, 12.0)
    (True, True, False)
    """
    return worse_by(metric, value, bound).by > 0


def best_end(metric: str, low: float, high: float) -> float:
    """The end of an interval ``[low, high]`` that is best for ``metric``: when even it is
    worse than a bound, the whole interval is.

    Examples
    --------
    >>> best_end("accuracy", 0.8, 0.9), best_end("rmse", 1.5, 2.5)
    (0.9, 1.5)
    """
    return high if _direction(metric)[0] else low


__all__ = [
    "METRICS",
    "Metric",
    "Worse",
    "best_end",
    "classification_metrics",
    "drop_bound",
    "is_worse",
    "metrics_for",
    "primary_metric",
    "regression_metrics",
    "resampled_auc",
    "watched_metric",
    "worse_by",
]
