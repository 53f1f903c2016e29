"""Confidence sequences: an interval for a bounded mean that stays valid however often it is read.

A rollout looks at its evidence after every batch of labelled rows and stops the moment the
evidence is conclusive. A fixed-sample interval (the bootstrap of :mod:`driftloop.evaluate.paired`)
read that way is wrong far more often than its confidence says — peeking inflates the error
rate without bound. A *confidence sequence* is a sequence of intervals that contains the true
mean at every step simultaneously with probability ≥ ``confidence``, so a decision may be taken
at any data-dependent time (Howard et al. 2021).

This module implements the predictable plug-in empirical-Bernstein sequence of Waudby-Smith and
Ramdas (2023, Theorem 2) for observations in a known range ``[low, high]``. Empirical Bernstein
rather than Hoeffding because a paired comparison of correctness is mostly zeros (both models
right or both wrong): its variance is small and the Bernstein width shrinks with it, often by
several times. Written here rather than taken from ``confseq`` because that package needs a C++
build and implements the same closed form; ours is a few vectorised sums whose state is JSON, so
the store can keep a rollout's evidence between replicas and restarts.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> seq = MeanSequence.start(low=-1.0, high=1.0, confidence=0.95)
>>> seq = seq.update(rng.choice([-1.0, 0.0, 1.0], size=3000, p=[0.05, 0.80, 0.15]))
>>> seq.rows, round(seq.mean, 3)
(3000, 0.105)
>>> 0.0 < seq.low < 0.1 < seq.high
True
>>> MeanSequence.from_json(seq.to_json()) == seq
True

References
----------
Waudby-Smith, I. and Ramdas, A. (2023). Estimating means of bounded random variables by betting.
Journal of the Royal Statistical Society B 86(1).
Howard, S. R., Ramdas, A., McAuliffe, J. and Sekhon, J. (2021). Time-uniform, nonparametric,
nonasymptotic confidence sequences. Annals of Statistics 49(2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from driftloop.errors import UsageError

#: The largest bet; Waudby-Smith and Ramdas suggest 1/2 or 3/4 (ψ_E needs λ < 1).
MAX_BET = 0.5


@dataclass(frozen=True)
class MeanSequence:
    """The running state of an empirical-Bernstein confidence sequence for a bounded mean.

    ``low``/``high`` are the current interval in the observations' own units (the running
    intersection of every interval so far, which keeps the same guarantee); ``rows`` is how
    many observations it rests on. The remaining fields are the sums the next update needs,
    on the [0, 1] scale.
    """

    range_low: float
    range_high: float
    confidence: float
    rows: int = 0
    low: float = -math.inf
    high: float = math.inf
    sum_x: float = 0.0
    sum_squared_residual: float = 0.0
    sum_bet: float = 0.0
    sum_bet_x: float = 0.0
    sum_penalty: float = 0.0

    @classmethod
    def start(cls, *, low: float, high: float, confidence: float) -> MeanSequence:
        """An empty sequence for observations in ``[low, high]`` at ``confidence``.

        >>> MeanSequence.start(low=0, high=1, confidence=0.9).rows
        0
        """
        if not high > low:
            raise UsageError(f"a confidence sequence needs low < high, got [{low}, {high}]")
        if not 0.0 < confidence < 1.0:
            raise UsageError(f"confidence must be between 0 and 1, got {confidence}")
        return cls(range_low=float(low), range_high=float(high), confidence=float(confidence),
                   low=float(low), high=float(high))

    @property
    def mean(self) -> float:
        """The bet-weighted mean the interval is centred on (observations' units)."""
        if self.sum_bet == 0.0:
            return (self.range_low + self.range_high) / 2
        return self._unscale(self.sum_bet_x / self.sum_bet)

    def update(self, observations: Any) -> MeanSequence:
        """The sequence after ``observations`` (in order), as a new record.

        Raises :class:`UsageError` naming the first value outside the declared range — a
        value outside it would void the guarantee silently.
        """
        x = np.asarray(observations, dtype=np.float64).ravel()
        if x.size == 0:
            return self
        bad = ~((x >= self.range_low) & (x <= self.range_high))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise UsageError(
                f"observation {first} is {float(x[first])}, outside the declared range "
                f"[{self.range_low}, {self.range_high}]")
        return self._absorb((x - self.range_low) / (self.range_high - self.range_low))

    def _absorb(self, x: np.ndarray) -> MeanSequence:
        log_term = math.log(2.0 / (1.0 - self.confidence))
        t = self.rows + np.arange(1, x.size + 1, dtype=np.float64)      # 1-based step numbers
        # μ̂_t and σ̂²_t are regularised running estimates (prior 1/2 and 1/4 as one pseudo-row).
        mu = (0.5 + self.sum_x + np.cumsum(x)) / (t + 1.0)
        mu_before = np.concatenate([[(0.5 + self.sum_x) / (self.rows + 1.0)], mu[:-1]])
        squared = (x - mu) ** 2
        sq_before = self.sum_squared_residual + np.concatenate([[0.0], np.cumsum(squared)[:-1]])
        var_before = (0.25 + sq_before) / t                             # σ̂²_{t-1}
        bet = np.minimum(np.sqrt(2.0 * log_term / (var_before * t * np.log1p(t))), MAX_BET)
        v = 4.0 * (x - mu_before) ** 2
        psi = (-np.log1p(-bet) - bet) / 4.0
        # Per-step sums give the running intersection, so an early tight interval is not lost;
        # their last elements are the sums the next update starts from.
        cum_bet = self.sum_bet + np.cumsum(bet)
        cum_bet_x = self.sum_bet_x + np.cumsum(bet * x)
        cum_penalty = self.sum_penalty + np.cumsum(v * psi)
        centres = cum_bet_x / cum_bet
        halves = (log_term + cum_penalty) / cum_bet
        return replace(
            self, rows=self.rows + int(x.size),
            low=max(self.low, self._unscale(float(np.max(centres - halves)))),
            high=min(self.high, self._unscale(float(np.min(centres + halves)))),
            sum_x=self.sum_x + float(x.sum()),
            sum_squared_residual=self.sum_squared_residual + float(squared.sum()),
            sum_bet=float(cum_bet[-1]), sum_bet_x=float(cum_bet_x[-1]),
            sum_penalty=float(cum_penalty[-1]))

    def _unscale(self, value: float) -> float:
        return self.range_low + value * (self.range_high - self.range_low)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (infinite bounds never occur: a started sequence spans its range)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeanSequence:
        """The record :meth:`to_json` wrote."""
        return cls(**{k: (int(v) if k == "rows" else float(v)) for k, v in data.items()})
