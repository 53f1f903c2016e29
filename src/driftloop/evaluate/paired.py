"""Paired comparison of two models on the same rows: the difference of a metric and its interval.

An evaluation report keeps, per evaluated row, what a paired test needs (:class:`RowOutcomes`):
whether the prediction was right (classification, one bit a row) or its residual (regression,
a float32 a row), with a hash of the targets so two reports can prove they scored the same rows
in the same order. :func:`paired_difference` compares two such records by a **paired
bootstrap**: row indices are drawn with replacement once per resample and both models' metric
is computed on the same draw, so the interval of the difference reflects only the rows on which
the two disagree — the shared difficulty of the holdout cancels out.

Why a paired bootstrap rather than McNemar's exact test: McNemar tests accuracy only and only
"no difference", while the holder gate compares any of :data:`PAIRED_METRICS` (accuracy, RMSE,
MAE) and its ``non_inferior`` policy needs an interval of the difference to set against a
margin. The bootstrap gives both from one procedure, seeded and vectorised like the report's
own intervals (:mod:`driftloop.evaluate.intervals`). Its known weakness — optimism when only a
handful of rows disagree — is why the gate asks for a minimum holdout and decides on the
two-sided ``confidence`` interval (a one-sided test at (1 + confidence) / 2).

Stored size is bounded: correctness is bit-packed (1M rows ≈ 170 kB of base64); residuals keep
at most :data:`ROW_LIMITS` rows, a subsample chosen by a fixed hash of the row number, so every
report on the same data keeps the same rows whatever the model or the numpy version.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 400)
>>> holder = np.where(rng.random(400) < 0.80, y, 1 - y)   # right on ~80% of the rows
>>> better = np.where(rng.random(400) < 0.5, y, holder)   # fixes about half of its mistakes
>>> a = RowOutcomes.from_predictions("binary", y, np.eye(2)[better])
>>> b = RowOutcomes.from_predictions("binary", y, np.eye(2)[holder])
>>> a.aligned_with(b) is None
True
>>> c = paired_difference("accuracy", a, b, n_resamples=1000, seed=0)
>>> round(c.candidate, 4), round(c.holder, 4), round(c.difference, 4)
(0.9025, 0.8, 0.1025)
>>> round(c.low, 4), round(c.high, 4), c.rows
(0.0725, 0.135, 400)
>>> RowOutcomes.from_json(a.to_json()) == a
True

References
----------
Efron, B. and Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 16 (two-sample
and paired problems). Chapman & Hall.
Dietterich, T. G. (1998). Approximate statistical tests for comparing supervised classification
learning algorithms. Neural Computation 10(7).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from driftloop.errors import UsageError
from driftloop.evaluate.intervals import percentile_interval, resample_indices

Kind = Literal["correct", "residual"]

ROW_LIMITS: dict[str, int] = {"correct": 1_000_000, "residual": 100_000}
"""Rows kept per report: bits are cheap (1M rows ≈ 170 kB base64); a float32 residual a row
is 4 bytes (100k rows ≈ 530 kB base64). Past the limit a hashed subsample of that many rows is
kept — far more than a paired test needs to see a real difference."""

_ENCODINGS = {"correct": "packbits-base64", "residual": "float32-le-base64"}
_SAMPLE = "splitmix64-lowest"  # how a subsample's rows are chosen (see _kept_rows)


@dataclass(frozen=True, eq=False)
class RowOutcomes:
    """Per-row outcomes of one model on one dataset, as an evaluation report stores them.

    Attributes
    ----------
    kind
        ``"correct"`` (classification: prediction right, bool) or ``"residual"`` (regression:
        prediction − target, float32).
    values
        One value per kept row, in row order.
    rows
        Rows evaluated; ``len(values)`` is smaller only when a subsample was kept.
    targets_sha256
        sha256 of every evaluated target (class codes as int64, values as float64), in order:
        two records with the same hash and row count scored the same rows.
    """

    kind: Kind
    values: np.ndarray
    rows: int
    targets_sha256: str

    @property
    def kept(self) -> int:
        """Rows whose outcome is kept (all of them unless past :data:`ROW_LIMITS`)."""
        return int(len(self.values))

    @classmethod
    def from_predictions(
        cls, task: str, y_true: np.ndarray, outputs: np.ndarray, *, limit: int | None = None
    ) -> RowOutcomes:
        """Outcomes of ``outputs`` (N×K probabilities, or N predicted values) against ``y_true``.

        >>> r = RowOutcomes.from_predictions("regression", np.zeros(5), np.arange(5.0), limit=3)
        >>> r.rows, r.kept, r.values.tolist()
        (5, 3, [1.0, 3.0, 4.0])
        """
        y_true, outputs = np.asarray(y_true), np.asarray(outputs)
        if task == "regression":
            target = np.ascontiguousarray(y_true, dtype="<f8").ravel()
            kind: Kind = "residual"
            values = (np.asarray(outputs, dtype=np.float64).ravel() - target).astype(np.float32)
        else:
            target = np.ascontiguousarray(y_true, dtype="<i8").ravel()
            kind = "correct"
            values = outputs.argmax(axis=1) == target
        rows = len(target)
        keep = _kept_rows(rows, ROW_LIMITS[kind] if limit is None else limit)
        if keep is not None:
            values = values[keep]
        return cls(kind, values, rows, hashlib.sha256(target.tobytes()).hexdigest())

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: bit-packed correctness or little-endian float32 residuals, base64."""
        if self.kind == "correct":
            raw = np.packbits(np.asarray(self.values, dtype=bool)).tobytes()
        else:
            raw = np.asarray(self.values, dtype="<f4").tobytes()
        return {
            "kind": self.kind, "rows": self.rows, "kept": self.kept,
            "sample": None if self.kept == self.rows else _SAMPLE,
            "targets_sha256": self.targets_sha256, "encoding": _ENCODINGS[self.kind],
            "data": base64.b64encode(raw).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RowOutcomes:
        """Decode :meth:`to_json` output; a malformed record is a :class:`UsageError`."""
        try:
            kind, kept, raw = data["kind"], int(data["kept"]), base64.b64decode(data["data"])
            if kind == "correct":
                values = np.unpackbits(np.frombuffer(raw, np.uint8), count=kept).astype(bool)
            elif kind == "residual":
                values = np.frombuffer(raw, "<f4").astype(np.float32)
            else:
                raise ValueError(f"kind {kind!r}")
            if len(values) != kept:
                raise ValueError(f"{len(values)} values for {kept} kept rows")
            return cls(kind, values, int(data["rows"]), str(data["targets_sha256"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"per-row outcomes of an evaluation report are malformed ({exc}); "
                             "evaluate the version again.") from None

    def aligned_with(self, other: RowOutcomes) -> str | None:
        """None when ``other`` scored the same rows (same targets, same kept rows), else why not.

        >>> y = np.array([0, 1, 1]); p = np.eye(2)[[0, 1, 0]]
        >>> a = RowOutcomes.from_predictions("binary", y, p)
        >>> a.aligned_with(RowOutcomes.from_predictions("binary", y[::-1], p))
        'the targets differ (sha256 ccb1ac866b7d vs 2dab308cb068)'
        """
        if self.kind != other.kind:
            return f"one holds {self.kind} and the other {other.kind} outcomes"
        if self.rows != other.rows:
            return f"{self.rows} vs {other.rows} rows were evaluated"
        if self.targets_sha256 != other.targets_sha256:
            return (f"the targets differ (sha256 {self.targets_sha256[:12]} vs "
                    f"{other.targets_sha256[:12]})")
        if self.kept != other.kept:
            return f"{self.kept} vs {other.kept} rows were kept"
        return None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RowOutcomes) and self.kind == other.kind
                and self.rows == other.rows and self.targets_sha256 == other.targets_sha256
                and np.array_equal(self.values, other.values))

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: not hashable


@dataclass(frozen=True)
class PairedMetric:
    """A metric computable from per-row outcomes: ``finish(mean of per_row(values))``."""

    name: str
    kind: Kind
    greater_is_better: bool
    bounded: bool
    per_row: Callable[[np.ndarray], np.ndarray]
    finish: Callable[[np.ndarray], np.ndarray]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


PAIRED_METRICS: dict[str, PairedMetric] = {
    m.name: m
    for m in (
        PairedMetric("accuracy", "correct", True, True, lambda v: v.astype(np.float64),
                     _identity),
        PairedMetric("rmse", "residual", False, False,
                     lambda v: np.square(v.astype(np.float64)), np.sqrt),
        PairedMetric("mae", "residual", False, False, lambda v: np.abs(v.astype(np.float64)),
                     _identity),
    )
}
"""The metrics a paired comparison can compute from :class:`RowOutcomes`, by name."""


@dataclass(frozen=True)
class PairedComparison:
    """Candidate against holder on the same rows.

    ``difference`` is the candidate's improvement — candidate − holder for a metric where
    greater is better, holder − candidate for an error metric — so positive always means the
    candidate is better; ``low``/``high`` bound it with ``confidence`` (paired bootstrap,
    percentile method).
    """

    metric: str
    candidate: float
    holder: float
    difference: float
    low: float
    high: float
    confidence: float
    rows: int
    disagreements: int  # rows where the two outcomes differ
    resamples: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "candidate": self.candidate, "holder": self.holder,
            "difference": self.difference, "interval": [self.low, self.high],
            "confidence": self.confidence, "rows": self.rows,
            "disagreements": self.disagreements, "resamples": self.resamples, "seed": self.seed,
            "difference_means": "candidate better when positive",
        }


def paired_difference(
    metric: str,
    candidate: RowOutcomes,
    holder: RowOutcomes,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """The candidate's improvement over the holder in ``metric`` and its paired interval.

    Parameters
    ----------
    metric
        A name in :data:`PAIRED_METRICS` matching the outcomes' kind.
    candidate, holder
        Outcomes on the same rows (:meth:`RowOutcomes.aligned_with` is None).
    confidence, n_resamples, seed
        Coverage of the two-sided interval, bootstrap resamples, and the seed of the draws.

    Examples
    --------
    Identical predictions have no difference and no doubt about it:

    >>> r = RowOutcomes.from_predictions("regression", np.arange(300.0), np.arange(300.0) + 1)
    >>> c = paired_difference("rmse", r, r)
    >>> c.difference, c.low, c.high, c.disagreements
    (0.0, 0.0, 0.0, 0)
    """
    found = PAIRED_METRICS.get(metric)
    if found is None:
        raise UsageError(f"a paired comparison cannot compute {metric!r} from per-row outcomes; "
                         f"it computes {', '.join(PAIRED_METRICS)}.")
    for role, outcomes in (("candidate", candidate), ("holder", holder)):
        if outcomes.kind != found.kind:
            raise UsageError(f"{metric} needs {found.kind} outcomes; the {role}'s are "
                             f"{outcomes.kind}.")
    why = candidate.aligned_with(holder)
    if why is not None:
        raise UsageError(f"candidate and holder were not scored on the same rows: {why}.")
    a, b = found.per_row(candidate.values), found.per_row(holder.values)
    sign = 1.0 if found.greater_is_better else -1.0
    value_a, value_b = float(found.finish(a.mean())), float(found.finish(b.mean()))
    diffs = []
    for indices in resample_indices(len(a), n_resamples, seed):
        diffs.append(sign * (found.finish(a[indices].mean(axis=1))
                             - found.finish(b[indices].mean(axis=1))))
    difference = sign * (value_a - value_b) + 0.0  # + 0.0: no "-0.0" when they are equal
    interval = percentile_interval(difference, np.concatenate(diffs), confidence)
    assert interval.low is not None and interval.high is not None  # no NaN from a mean
    return PairedComparison(
        metric=metric, candidate=value_a, holder=value_b, difference=difference,
        low=interval.low + 0.0, high=interval.high + 0.0, confidence=confidence, rows=len(a),
        disagreements=int(np.count_nonzero(candidate.values != holder.values)),
        resamples=n_resamples, seed=seed,
    )


def _kept_rows(rows: int, limit: int) -> np.ndarray | None:
    """The rows a subsample keeps (None: every row): the ``limit`` rows whose splitmix64 hash
    of the row number is lowest — fixed arithmetic, the same for every model and numpy."""
    if rows <= limit:
        return None
    with np.errstate(over="ignore"):
        z = np.arange(rows, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return np.sort(np.argpartition(z, limit - 1)[:limit])


__all__ = [
    "PAIRED_METRICS",
    "ROW_LIMITS",
    "PairedComparison",
    "PairedMetric",
    "RowOutcomes",
    "paired_difference",
]
