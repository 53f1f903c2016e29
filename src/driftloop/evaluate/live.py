"""The live comparison of a rollout: candidate against holder on the same served rows.

Every served row of a rollout is answered by both versions (one on the request path, the other
off it), so every comparison is *paired*. Each check is a confidence sequence
(:class:`~driftloop.evaluate.sequential.MeanSequence`), valid however often a replica reads it,
and the rollout's ``confidence`` is split evenly over the checks (Bonferroni), so the decision
as a whole is wrong with probability at most ``1 - confidence`` whenever it is taken:

- **labels** (once ``min_labels`` rows are labelled): per-row correctness difference
  ``candidate right - holder right`` in [-1, 1], in the order the labels arrived;
- **estimate** (label-free, while labels are fewer): the difference of the two calibrated
  confidences (the confidence-based performance estimate, CBPE, of each version) in [-1, 1];
- **agreement** (label-free): the share of rows both versions answer alike. Whatever the
  labels, ``candidate accuracy <= 1 - holder accuracy + agreement`` (a row both get right is a
  row they agree on), so the agreement's upper bound with the holder's estimated accuracy
  bounds the candidate's accuracy from above without trusting the candidate's own calibration;
- **errors**: the share of rows the candidate failed (raised, timed out);
- **latency**: the share of rows the candidate took longer than ``max_p99_ms`` for; its lower
  bound above 1 % means the candidate's p99 is above the bound.

The verdict is ``rollback`` when any check shows the candidate worse (errors or latency above
their bounds, or accuracy below the holder's by more than ``margin``), ``promote`` when the
deciding check shows it non-inferior (or better, by policy) and nothing shows it worse, and
``continue`` otherwise.

Examples
--------
>>> import numpy as np
>>> from driftloop.config import RolloutSettings
>>> from driftloop.store import RolloutEvidence
>>> rng = np.random.default_rng(0)
>>> n = 2000
>>> truth = rng.integers(0, 2, n)
>>> holder = np.where(rng.random(n) < 0.9, truth, 1 - truth)       # 90 % right
>>> noise = rng.integers(0, 2, n)                                  # a model that guesses
>>> ev = RolloutEvidence(rows=n, stage=["shadow"] * n, answered_by=[1] * n,
...     holder_output=holder.tolist(), candidate_output=noise.tolist(),
...     holder_confidence=[0.9] * n, candidate_confidence=[0.55] * n,
...     holder_ms=[2.0] * n, candidate_ms=[2.0] * n, candidate_error=[None] * n,
...     labels=[None] * n, label_order=[])
>>> result = compare_live(ev, RolloutSettings())
>>> result.verdict, result.basis
('rollback', 'estimate')
>>> result.agreement.high < 0.6
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.config import RolloutSettings
from driftloop.evaluate.sequential import MeanSequence
from driftloop.store import RolloutEvidence

CHECKS = 5  # labels, estimate, agreement, errors, latency: the confidence is split over them
SLOW_SHARE = 0.01  # p99 above a bound <=> more than 1 % of rows slower than it


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence-sequence bounds, on ``rows`` rows."""

    mean: float
    low: float
    high: float
    rows: int

    @classmethod
    def of(cls, values: Any, low: float, high: float, confidence: float) -> Interval:
        """The confidence sequence of ``values`` (in order) in ``[low, high]``.

        >>> Interval.of([], 0, 1, 0.95)
        Interval(mean=nan, low=0.0, high=1.0, rows=0)
        """
        x = np.asarray(values, dtype=np.float64)
        seq = MeanSequence.start(low=low, high=high, confidence=confidence).update(x)
        mean = float(x.mean()) if x.size else float("nan")
        return cls(mean, seq.low, seq.high, seq.rows)

    def to_json(self) -> dict[str, Any]:
        return {"mean": None if self.mean != self.mean else round(self.mean, 6),
                "low": round(self.low, 6), "high": round(self.high, 6), "rows": self.rows}


@dataclass(frozen=True)
class LiveComparison:
    """What the evidence says now: every check's interval, latencies, and the verdict."""

    rows: int
    labelled: int
    verdict: str  # promote | rollback | continue
    basis: str  # the check the verdict rests on: labels | estimate | agreement | errors | ...
    reason: str
    accuracy_difference: Interval  # candidate - holder, labelled rows
    estimate_difference: Interval  # candidate - holder calibrated confidence
    holder_estimate: Interval
    candidate_estimate: Interval
    agreement: Interval
    candidate_accuracy_bound: float  # upper bound from agreement and the holder's estimate
    error_rate: Interval
    slow_share: Interval
    latency_ms: dict[str, dict[str, float | None]]
    holder_accuracy: float | None  # on labelled rows (point, for display)
    candidate_accuracy: float | None
    prediction_shift: float | None  # total variation between the two versions' predictions

    def to_json(self) -> dict[str, Any]:
        """JSON for the store, the audit log and the dashboard."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.to_json() if isinstance(value, Interval) else value
        return out


def _percentiles(values: list[float | None]) -> dict[str, float | None]:
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not x.size:
        return {"p50": None, "p99": None}
    return {"p50": round(float(np.percentile(x, 50)), 3),
            "p99": round(float(np.percentile(x, 99)), 3)}


def _shift(holder: list[Any], candidate: list[Any]) -> float | None:
    """Total variation distance between the two versions' predicted-class frequencies."""
    if not holder:
        return None
    keys = {json_key(v) for v in holder} | {json_key(v) for v in candidate}
    h = {k: 0 for k in keys}
    c = {k: 0 for k in keys}
    for v in holder:
        h[json_key(v)] += 1
    for v in candidate:
        c[json_key(v)] += 1
    return round(0.5 * sum(abs(h[k] / len(holder) - c[k] / len(candidate)) for k in keys), 6)


def json_key(value: Any) -> str:
    """A label as comparable text (``1`` and ``"1"`` stay distinct, like the store's JSON).

    >>> json_key(1), json_key("1")
    ('i:1', 's:1')
    """
    return f"{type(value).__name__[0]}:{value}"


def compare_live(evidence: RolloutEvidence, policy: RolloutSettings) -> LiveComparison:
    """Compare candidate and holder on a rollout's evidence under ``policy``."""
    each = 1.0 - (1.0 - policy.confidence) / CHECKS
    failed = np.array([e is not None for e in evidence.candidate_error], dtype=bool)
    ok = np.flatnonzero(~failed)
    hold_out = [evidence.holder_output[i] for i in ok]
    cand_out = [evidence.candidate_output[i] for i in ok]
    agree = [json_key(a) == json_key(b) for a, b in zip(hold_out, cand_out, strict=True)]
    hold_conf = np.array([evidence.holder_confidence[i] or 0.0 for i in ok])
    cand_conf = np.array([evidence.candidate_confidence[i] or 0.0 for i in ok])
    ordered = [i for i in evidence.label_order if not failed[i]]
    right_h = np.array([json_key(evidence.holder_output[i]) == json_key(evidence.labels[i])
                        for i in ordered], dtype=np.float64)
    right_c = np.array([json_key(evidence.candidate_output[i]) == json_key(evidence.labels[i])
                        for i in ordered], dtype=np.float64)
    slow = [(ms or 0.0) > policy.max_p99_ms for ms in evidence.candidate_ms]

    accuracy = Interval.of(right_c - right_h, -1.0, 1.0, each)
    estimate = Interval.of(cand_conf - hold_conf, -1.0, 1.0, each)
    holder_estimate = Interval.of(hold_conf, 0.0, 1.0, each)
    agreement = Interval.of(np.asarray(agree, dtype=np.float64), 0.0, 1.0, each)
    errors = Interval.of(failed.astype(np.float64), 0.0, 1.0, each)
    slowness = Interval.of(np.asarray(slow, dtype=np.float64), 0.0, 1.0, each)
    # the holder's own estimate enters at the same split confidence as the others
    bound = min(1.0, 1.0 - holder_estimate.low + agreement.high)
    verdict, basis, reason = _verdict(policy, len(ordered), accuracy, estimate, holder_estimate,
                                      bound, errors, slowness)
    return LiveComparison(
        rows=evidence.rows, labelled=len(ordered), verdict=verdict, basis=basis, reason=reason,
        accuracy_difference=accuracy, estimate_difference=estimate,
        holder_estimate=holder_estimate,
        candidate_estimate=Interval.of(cand_conf, 0.0, 1.0, each), agreement=agreement,
        candidate_accuracy_bound=round(bound, 6), error_rate=errors, slow_share=slowness,
        latency_ms={"holder": _percentiles(evidence.holder_ms),
                    "candidate": _percentiles(evidence.candidate_ms)},
        holder_accuracy=float(right_h.mean()) if right_h.size else None,
        candidate_accuracy=float(right_c.mean()) if right_c.size else None,
        prediction_shift=_shift(hold_out, cand_out))


def _verdict(policy: RolloutSettings, labelled: int, accuracy: Interval, estimate: Interval,
             holder_estimate: Interval, bound: float, errors: Interval, slowness: Interval
             ) -> tuple[str, str, str]:
    """``(verdict, basis, reason)``: rollback on any evidence of harm, promote on the deciding
    check, otherwise continue."""
    margin = policy.margin
    if errors.low > policy.max_error_rate:
        return ("rollback", "errors", f"the candidate failed {errors.mean:.1%} of rows (lower "
                f"bound {errors.low:.1%} > {policy.max_error_rate:.1%})")
    if slowness.low > SLOW_SHARE:
        return ("rollback", "latency", f"{slowness.mean:.1%} of the candidate's rows took longer "
                f"than {policy.max_p99_ms:g} ms (lower bound {slowness.low:.1%} > 1 %): its p99 "
                "is over the bound")
    by_labels = labelled >= policy.min_labels
    if by_labels and accuracy.high < -margin:
        return ("rollback", "labels", f"on {labelled} labelled rows the candidate is worse: "
                f"accuracy difference {accuracy.mean:+.3f} [{accuracy.low:+.3f}, "
                f"{accuracy.high:+.3f}], below -{margin:g}")
    if not by_labels and policy.use_estimate:
        if estimate.high < -margin:
            return ("rollback", "estimate", f"the label-free estimate is worse: confidence "
                    f"difference {estimate.mean:+.3f} [{estimate.low:+.3f}, "
                    f"{estimate.high:+.3f}], below -{margin:g}")
        if holder_estimate.rows and bound < holder_estimate.low - margin:
            return ("rollback", "agreement", f"the versions agree too rarely: the candidate's "
                    f"accuracy is at most {bound:.3f}, below the holder's "
                    f"{holder_estimate.low:.3f} - {margin:g}")
    floor = 0.0 if policy.policy == "better" else -margin
    deciding = accuracy if by_labels else estimate
    if (by_labels or policy.use_estimate) and deciding.rows and deciding.low > floor:
        what = "labels" if by_labels else "estimate"
        return ("promote", what, f"the candidate is {policy.policy.replace('_', '-')} on the "
                f"{what}: difference {deciding.mean:+.3f} [{deciding.low:+.3f}, "
                f"{deciding.high:+.3f}] > {floor:+g}")
    return ("continue", "labels" if by_labels else "estimate",
            f"undecided: {labelled} labelled rows, estimate difference "
            f"[{estimate.low:+.3f}, {estimate.high:+.3f}]")


__all__ = ["CHECKS", "Interval", "LiveComparison", "compare_live", "json_key"]
