"""Seeded bootstrap confidence intervals (percentile method) for any metric.

Rows are drawn with replacement ``resamples`` times from one seeded generator; the interval is
the central ``confidence`` share of the metric over the resamples. A metric given as a
:class:`~driftloop.evaluate.metrics.Metric` is computed for a whole chunk of resamples at once
from a count matrix (how often each row was drawn); any other function is called once per
resample. Both paths see the same draws, so they give the same interval.

Examples
--------
>>> import numpy as np
>>> from driftloop.evaluate.metrics import METRICS
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 400)
>>> proba = np.column_stack([1 - y * 0.7 - 0.15, y * 0.7 + 0.15])
>>> proba[:60] = proba[:60, ::-1]                    # 60 confident mistakes: accuracy 0.85
>>> acc = bootstrap_interval(METRICS["accuracy"], y, proba, n_resamples=200, seed=1)
>>> acc.value, round(acc.low, 3), round(acc.high, 3)
(0.85, 0.807, 0.883)
>>> slow = bootstrap_interval(lambda a, b: float(np.mean(b.argmax(1) == a)), y, proba,
...                           n_resamples=200, seed=1)
>>> (slow.low, slow.high) == (acc.low, acc.high)
True

References
----------
Efron, B. and Tibshirani, R. (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from driftloop.config import EvaluateSettings
from driftloop.errors import UsageError
from driftloop.evaluate.metrics import Metric, metrics_for

_DEFAULTS = EvaluateSettings()
_CELLS_PER_CHUNK = 2_000_000  # resamples × rows held in memory at once (16 MB of float64)
MIN_DEFINED_SHARE = 0.5  # fewer defined resamples than this share: no interval


@dataclass(frozen=True)
class Interval:
    """A point value and its bootstrap interval (``low``/``high`` None when undefined)."""

    value: float
    low: float | None
    high: float | None
    confidence: float

    def excludes(self, other: float) -> bool:
        """True when ``other`` lies outside [low, high].

        >>> Interval(0.8, 0.7, 0.9, 0.95).excludes(0.95)
        True
        """
        if self.low is None or self.high is None:
            return False
        return not self.low <= other <= self.high

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def resample_indices(
    n: int, n_resamples: int, seed: int, *, max_cells: int = _CELLS_PER_CHUNK
) -> Iterator[np.ndarray]:
    """Yield R×n arrays of row indices drawn with replacement, ``n_resamples`` rows in all.

    Examples
    --------
    >>> [chunk.shape for chunk in resample_indices(5, 7, seed=0, max_cells=15)]
    [(3, 5), (3, 5), (1, 5)]
    """
    if n < 1:
        raise UsageError(f"cannot bootstrap zero rows (n={n}). Evaluate on at least one row.")
    if n_resamples < 1:
        raise UsageError(f"n_resamples must be 1 or more. Got {n_resamples}.")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, max_cells // n)
    for start in range(0, n_resamples, per_chunk):
        yield rng.integers(0, n, size=(min(per_chunk, n_resamples - start), n))


def counts_of(indices: np.ndarray, n: int) -> np.ndarray:
    """Turn R×n drawn row indices into an R×n float matrix of how often each row was drawn.

    Examples
    --------
    >>> counts_of(np.array([[0, 0, 2], [1, 2, 2]]), 3).tolist()
    [[2.0, 0.0, 1.0], [0.0, 1.0, 2.0]]
    """
    r = len(indices)
    flat = (np.arange(r)[:, None] * n + indices).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float64)


def percentile_interval(value: float, replicates: np.ndarray, confidence: float) -> Interval:
    """The central ``confidence`` share of ``replicates`` (NaN replicates are left out).

    When fewer than half the resamples give a defined value, there is no interval.

    Examples
    --------
    >>> i = percentile_interval(0.5, np.linspace(0, 1, 101), 0.9)
    >>> round(i.low, 6), round(i.high, 6)
    (0.05, 0.95)
    >>> percentile_interval(0.5, np.array([np.nan, np.nan, 1.0]), 0.9).low is None
    True
    """
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1 (exclusive). Got {confidence}.")
    finite = replicates[np.isfinite(replicates)]
    if len(finite) < MIN_DEFINED_SHARE * len(replicates) or len(finite) == 0:
        return Interval(float(value), None, None, confidence)
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return Interval(float(value), float(low), float(high), confidence)


def bootstrap_interval(
    statistic: Metric | Callable[..., float],
    *arrays: np.ndarray,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> Interval:
    """Bootstrap interval of ``statistic(*arrays)``; arrays are resampled by row together.

    Parameters
    ----------
    statistic
        A :class:`~driftloop.evaluate.metrics.Metric` (vectorised over resamples) or any
        function of the arrays returning a float.
    arrays
        Arrays of equal length (first axis = rows), e.g. ``y_true, proba``.
    n_resamples, confidence, seed
        Number of resamples, coverage, and the seed of the draws.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = _common_length(arrays)
    value = float(statistic(*arrays))
    chunks = []
    for indices in resample_indices(n, n_resamples, seed):
        if isinstance(statistic, Metric):
            chunks.append(statistic.resampled(counts_of(indices, n), *arrays))
        else:
            chunks.append(
                np.array([statistic(*(a[row] for a in arrays)) for row in indices], np.float64)
            )
    return percentile_interval(value, np.concatenate(chunks), confidence)


def metric_intervals(
    task: str,
    y_true: np.ndarray,
    outputs: np.ndarray,
    *,
    metrics: Sequence[Metric] | None = None,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> dict[str, Interval]:
    """Intervals of every metric of ``task`` (or of ``metrics``), from one set of resamples.

    Metrics undefined on the given rows (ROC AUC with a class absent, R² of a constant
    target) are left out. ``outputs`` are probabilities (N×K) or predicted values (N).

    Examples
    --------
    >>> y = np.array([0., 1., 2., 3., 4., 5.]); pred = y + np.array([.5, -.5, 0, 1, 0, 0])
    >>> out = metric_intervals("regression", y, pred, n_resamples=100, seed=0)
    >>> sorted(out), round(out["mae"].value, 4)
    (['mae', 'r2', 'rmse'], 0.3333)
    """
    chosen = list(metrics) if metrics is not None else metrics_for(task)
    y_true, outputs = np.asarray(y_true), np.asarray(outputs)
    n = _common_length((y_true, outputs))
    values = {m.name: m(y_true, outputs) for m in chosen}
    defined = [m for m in chosen if np.isfinite(values[m.name])]
    chunks: dict[str, list[np.ndarray]] = {m.name: [] for m in defined}
    for indices in resample_indices(n, n_resamples, seed):
        counts = counts_of(indices, n)
        for m in defined:
            chunks[m.name].append(m.resampled(counts, y_true, outputs))
    return {
        m.name: percentile_interval(values[m.name], np.concatenate(chunks[m.name]), confidence)
        for m in defined
    }


def share_interval(count: int, total: int, confidence: float = _DEFAULTS.confidence
                   ) -> Interval:
    """The Wilson score interval of the share ``count / total`` (scipy's ``binomtest``).

    For a share of rows (how many differ, how many fail) Wilson's interval keeps its coverage
    with few rows and shares near 0 or 1, where a bootstrap of 0/1 values collapses to a point.
    ``total`` 0: no interval.

    Examples
    --------
    >>> i = share_interval(3, 3)
    >>> i.value, round(i.low, 3), i.high
    (1.0, 0.439, 1.0)
    >>> share_interval(0, 0).low is None
    True
    """
    from scipy.stats import binomtest

    if count < 0 or total < 0 or count > total:
        raise UsageError(f"a share needs 0 <= count <= total; got {count} of {total}.")
    if total == 0:
        return Interval(float("nan"), None, None, confidence)
    ci = binomtest(count, total).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(count / total, float(ci.low), float(ci.high), confidence)


def _common_length(arrays: Sequence[np.ndarray]) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise UsageError(
            f"arrays must have the same number of rows; got lengths {sorted(lengths)}."
        )
    return lengths.pop()


__all__ = [
    "Interval",
    "bootstrap_interval",
    "counts_of",
    "metric_intervals",
    "percentile_interval",
    "resample_indices",
    "share_interval",
]
