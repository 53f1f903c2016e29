"""Membership-inference audit: how well can an attacker tell training rows from other rows?

Two attacks score every audited row (higher: "more likely a training row"):

``loss``
    The loss-threshold attack of Yeom et al. (2018): the score is minus the cross-entropy loss
    of the true label, ``log p_y``. It needs only the model's outputs.
``lira``
    Offline LiRA (Carlini et al. 2022, section VI-C): reference models that never trained on
    the audited rows give, per row, the distribution of the logit-scaled confidence
    ``phi = log(p_y / (1 - p_y))`` a model has on that row when it is *out*; a Gaussian is fitted
    to it and the score is the one-sided z statistic ``(phi_target - mu_out) / sigma_out``
    (Carlini et al.'s offline test is ``Phi(z)``, a monotone transform with the same ROC curve;
    z does not saturate at 1 for very exposed rows). With few reference models the per-row
    variance is unreliable, so — as Carlini et al. recommend for small numbers of shadow
    models — one global variance, pooled over every row, is used below
    :data:`PER_ROW_VARIANCE_MODELS` reference models.

For each attack :func:`attack_result` measures the attack's ROC AUC and its true-positive rate
at 0.1 % and 1 % false-positive rate, each with a seeded percentile-bootstrap interval over the
audited rows (members and non-members resampled together), and counts the **exposed** members:
those scored at or above the threshold that flags 1 % of the non-members. Only counts and
shares are kept, never the rows.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
>>> separable = attack_result("loss", np.where(member, 1.0, 0.0) + rng.uniform(0, 0.5, 400),
...                           member, n_resamples=200)
>>> separable.auc.value, round(separable.auc.low, 6), separable.exposed
(1.0, 1.0, 200)
>>> chance = attack_result("loss", rng.normal(size=400), member, n_resamples=200)
>>> chance.auc.low < 0.5 < chance.auc.high
True

References
----------
Yeom, S., Giacomelli, I., Fredrikson, M. and Jha, S. (2018). Privacy Risk in Machine Learning:
Analyzing the Connection to Overfitting. IEEE CSF 2018, 268–282.

Carlini, N., Chien, S., Nasr, M., Song, S., Terzis, A. and Tramèr, F. (2022). Membership
Inference Attacks From First Principles. IEEE S&P 2022, 1897–1914.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import auc as area_under
from sklearn.metrics import roc_curve

from driftloop.config import EvaluateSettings
from driftloop.errors import DataError, UsageError
from driftloop.evaluate.intervals import Interval, percentile_interval, resample_indices
from driftloop.evaluate.slices import slice_labels

_DEFAULTS = EvaluateSettings()
FPRS: tuple[float, ...] = (0.001, 0.01)
"""The false-positive rates at which the true-positive rate is reported."""
EXPOSED_FPR = 0.01
"""Members scored at or above the threshold flagging this share of non-members are exposed."""
PER_ROW_VARIANCE_MODELS = 16
"""From this many reference models on, LiRA fits each row's own variance."""
_EPS = 1e-12


def true_label_probability(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``p_y``: each row's probability of its true class.

    >>> true_label_probability(np.array([[0.9, 0.1], [0.3, 0.7]]), np.array([0, 0])).tolist()
    [0.9, 0.3]
    """
    proba, y = np.asarray(proba, np.float64), np.asarray(y).astype(np.int64)
    if proba.ndim != 2 or len(proba) != len(y):
        raise UsageError(f"probabilities must be N×K with one row per label; got shape "
                         f"{proba.shape} for {len(y)} labels.")
    return proba[np.arange(len(y)), y]


def loss_scores(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The loss attack's scores: ``log p_y`` (minus the cross-entropy loss), Yeom et al. (2018).

    >>> loss_scores(np.array([[0.5, 0.5], [0.1, 0.9]]), np.array([1, 1])).round(3).tolist()
    [-0.693, -0.105]
    """
    return np.log(np.clip(true_label_probability(proba, y), _EPS, 1.0))


def logit_confidence(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log(p_y / (1 - p_y))``, the logit scaling of Carlini et al. (2022), eq. 4.

    ``1 - p_y`` is summed from the other classes so that a confident row keeps its precision.

    >>> logit_confidence(np.array([[0.5, 0.5], [0.1, 0.9]]), np.array([0, 1])).round(3).tolist()
    [0.0, 2.197]
    """
    proba = np.asarray(proba, np.float64)
    p_y = true_label_probability(proba, y)
    rest = proba.sum(axis=1) - p_y
    return np.log(np.clip(p_y, _EPS, None)) - np.log(np.clip(rest, _EPS, None))


def lira_offline_scores(
    target_proba: np.ndarray, y: np.ndarray, reference_probas: Sequence[np.ndarray]
) -> np.ndarray:
    """Offline LiRA scores: ``(phi_target - mu_out) / sigma_out`` per row.

    ``reference_probas`` are the probabilities of reference models none of which trained on
    these rows (at least 2). The variance is global below :data:`PER_ROW_VARIANCE_MODELS`
    models, per row from there on.

    >>> y = np.array([0, 0])
    >>> target = np.array([[0.99, 0.01], [0.6, 0.4]])
    >>> refs = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[0.8, 0.2], [0.5, 0.5]])]
    >>> scores = lira_offline_scores(target, y, refs)
    >>> bool(scores[0] > scores[1])   # row 0 is far more confident than models without it
    True
    """
    if len(reference_probas) < 2:
        raise UsageError(f"LiRA needs at least 2 reference models; got {len(reference_probas)}.")
    phi = logit_confidence(target_proba, y)
    out = np.stack([logit_confidence(p, y) for p in reference_probas])  # R × n
    mu = out.mean(axis=0)
    if len(reference_probas) >= PER_ROW_VARIANCE_MODELS:
        sigma = out.std(axis=0, ddof=1)
    else:
        sigma = np.full(len(phi), float(np.sqrt(np.mean((out - mu) ** 2) * len(out)
                                                / (len(out) - 1))))
    return (phi - mu) / np.maximum(sigma, 1e-6)


@dataclass(frozen=True)
class AttackResult:
    """One attack's success: ROC AUC and TPR at low FPR with intervals, exposed members."""

    attack: str
    auc: Interval
    tpr_at_fpr: dict[str, Interval]  # keyed by the FPR as text, e.g. "0.01"
    exposed: int  # members scored at or above the EXPOSED_FPR threshold
    exposed_share: float  # exposed / members
    members: int
    non_members: int

    @property
    def advantage(self) -> float:
        """AUC − 0.5: how much better than a coin the attack tells members apart."""
        return self.auc.value - 0.5

    def to_json(self) -> dict[str, Any]:
        return {
            "attack": self.attack, "auc": self.auc.to_json(),
            "tpr_at_fpr": {k: v.to_json() for k, v in self.tpr_at_fpr.items()},
            "exposed": self.exposed, "exposed_share": self.exposed_share,
            "exposed_fpr": EXPOSED_FPR, "members": self.members, "non_members": self.non_members,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttackResult:
        return cls(
            attack=data["attack"], auc=Interval(**data["auc"]),
            tpr_at_fpr={k: Interval(**v) for k, v in data["tpr_at_fpr"].items()},
            exposed=int(data["exposed"]), exposed_share=float(data["exposed_share"]),
            members=int(data["members"]), non_members=int(data["non_members"]),
        )


def _roc_stats(scores: np.ndarray, member: np.ndarray) -> np.ndarray:
    """AUC then TPR at each of :data:`FPRS` (NaN when a class is absent)."""
    if member.all() or not member.any():
        return np.full(1 + len(FPRS), np.nan)
    fpr, tpr, _ = roc_curve(member, scores)
    # roc_curve's fpr is non-decreasing: the best TPR whose FPR is within the budget
    at = [float(tpr[np.searchsorted(fpr, a, side="right") - 1]) for a in FPRS]
    return np.array([float(area_under(fpr, tpr)), *at])


def _exposed(scores: np.ndarray, member: np.ndarray) -> int:
    """Members at or above the score that flags at most EXPOSED_FPR of the non-members."""
    fpr, _, thresholds = roc_curve(member, scores)
    threshold = thresholds[np.searchsorted(fpr, EXPOSED_FPR, side="right") - 1]
    return int(np.sum(scores[member] >= threshold)) if np.isfinite(threshold) else 0


def attack_result(
    attack: str,
    scores: np.ndarray,
    member: np.ndarray,
    *,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> AttackResult:
    """Measure an attack from its ``scores`` of rows whose membership ``member`` is known.

    One set of seeded resamples of the rows gives the AUC's and every TPR's interval.

    >>> member = np.array([True, True, False, False])
    >>> attack_result("loss", np.array([0.9, 0.2, 0.5, 0.1]), member, n_resamples=50).auc.value
    0.75
    """
    scores, member = np.asarray(scores, np.float64), np.asarray(member, bool)
    if len(scores) != len(member):
        raise UsageError(f"{len(scores)} scores for {len(member)} membership labels.")
    if not np.isfinite(scores).all():
        raise DataError(f"the {attack} attack gave non-finite scores; the model's outputs hold "
                        "NaN or infinity.")
    if member.all() or not member.any():
        raise DataError("a membership audit needs both members and non-members; got "
                        f"{int(member.sum())} members of {len(member)} rows.")
    point = _roc_stats(scores, member)
    replicates = np.concatenate([
        np.array([_roc_stats(scores[row], member[row]) for row in chunk])
        for chunk in resample_indices(len(scores), n_resamples, seed)
    ])
    intervals = [percentile_interval(point[i], replicates[:, i], confidence)
                 for i in range(len(point))]
    exposed = _exposed(scores, member)
    return AttackResult(
        attack=attack, auc=intervals[0],
        tpr_at_fpr={f"{a:g}": i for a, i in zip(FPRS, intervals[1:], strict=True)},
        exposed=exposed, exposed_share=exposed / int(member.sum()),
        members=int(member.sum()), non_members=int((~member).sum()),
    )


@dataclass(frozen=True)
class PrivacyReport:
    """A membership-inference audit of one model: every attack, overall and per slice."""

    attacks: dict[str, AttackResult]
    slices: list[dict[str, Any]] = field(default_factory=list)  # per class label
    reference_models: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def strongest(self) -> AttackResult:
        """The attack whose AUC interval reaches highest (its point value breaks ties)."""
        return max(self.attacks.values(), key=lambda a: (_upper(a.auc), a.auc.value))

    def to_json(self) -> dict[str, Any]:
        strongest = self.strongest
        return {
            "attacks": {k: a.to_json() for k, a in self.attacks.items()},
            "strongest": strongest.attack, "auc_high": _upper(strongest.auc),
            "slices": [dict(s) for s in self.slices],
            "reference_models": self.reference_models, "settings": dict(self.settings),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrivacyReport:
        """Rebuild from :meth:`to_json` (what the evaluation report stores)."""
        try:
            return cls(
                attacks={k: AttackResult.from_json(a) for k, a in data["attacks"].items()},
                slices=[dict(s) for s in data.get("slices") or []],
                reference_models=int(data.get("reference_models") or 0),
                settings=dict(data.get("settings") or {}),
                warnings=list(data.get("warnings") or []),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(f"privacy audit JSON is malformed (bad field {exc}).") from None

    def summary_lines(self) -> list[str]:
        """Readable lines: one per attack, then the slices an attack does best on."""
        first = next(iter(self.attacks.values()))
        lines = [f"privacy audit: {first.members} training rows vs {first.non_members} rows "
                 f"never trained on · {self.reference_models} reference models"]
        for a in self.attacks.values():
            tprs = " · ".join(f"TPR@{float(k):.1%} FPR {_show(i)}"
                              for k, i in a.tpr_at_fpr.items())
            lines.append(f"  {a.attack:<5} attack AUC {_show(a.auc)} · {tprs} · exposed "
                         f"{a.exposed} of {a.members} members ({a.exposed_share:.1%})")
        ranked = [s for s in self.slices if s.get("auc")]
        if ranked:
            worst = max(ranked, key=lambda s: s["auc"]["value"])
            lines.append(f"  most exposed slice: {worst['column']} = {worst['value']} · "
                         f"{worst['attack']} AUC {_show(Interval(**worst['auc']))}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines


def privacy_summary(privacy: Mapping[str, Any]) -> list[str]:
    """:meth:`PrivacyReport.summary_lines` of a stored ``privacy`` section."""
    return PrivacyReport.from_json(privacy).summary_lines()


def slice_results(
    attack: str,
    scores: np.ndarray,
    member: np.ndarray,
    labels: Sequence[Any],
    *,
    column: str = "label",
    min_count: int = _DEFAULTS.slice_min_count,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> list[dict[str, Any]]:
    """The attack's AUC per slice of ``labels`` (binned like evaluation slices); slices with
    fewer than ``min_count`` members or non-members are reported as too small.

    >>> member = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    >>> labels = np.tile(["a", "b"], 40)
    >>> out = slice_results("loss", member + 0.0, member, labels, min_count=10, n_resamples=50)
    >>> [(s["value"], s["auc"]["value"]) for s in out]
    [('a', 1.0), ('b', 1.0)]
    """
    scores, member = np.asarray(scores, np.float64), np.asarray(member, bool)
    keys = slice_labels(pd.Series(list(labels)))
    out = []
    for value in sorted(set(keys.tolist())):
        rows = keys == value
        n_in, n_out = int((rows & member).sum()), int((rows & ~member).sum())
        entry: dict[str, Any] = {"column": column, "value": str(value), "attack": attack,
                                 "members": n_in, "non_members": n_out, "auc": None,
                                 "too_small": min(n_in, n_out) < min_count}
        if not entry["too_small"]:
            entry["auc"] = attack_result(attack, scores[rows], member[rows],
                                         n_resamples=n_resamples, confidence=confidence,
                                         seed=seed).auc.to_json()
        out.append(entry)
    return out


def audit(
    target_proba: np.ndarray,
    y: np.ndarray,
    member: np.ndarray,
    reference_probas: Sequence[np.ndarray] = (),
    *,
    classes: Sequence[Any] | None = None,
    min_count: int = _DEFAULTS.slice_min_count,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> PrivacyReport:
    """Run the loss attack and (given 2+ reference models) offline LiRA on audited rows.

    Parameters
    ----------
    target_proba
        The audited model's N×K probabilities of the audited rows.
    y
        Their class codes.
    member
        True for rows the model trained on.
    reference_probas
        Probabilities of the same rows from reference models that trained on none of them.
    classes
        Class names, for the per-class slices (the true label is the slice).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 300); member = np.arange(300) < 150
    >>> p = np.where(member, 0.95, 0.7)[:, None] * np.eye(2)[y] + 0.025
    >>> p /= p.sum(1, keepdims=True)
    >>> report = audit(p, y, member, n_resamples=100)
    >>> report.strongest.attack, report.attacks["loss"].auc.value
    ('loss', 1.0)
    """
    boot = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    member = np.asarray(member, bool)
    scores = {"loss": loss_scores(target_proba, y)}
    if len(reference_probas) >= 2:
        scores["lira"] = lira_offline_scores(target_proba, y, reference_probas)
    attacks = {name: attack_result(name, s, member, **boot) for name, s in scores.items()}
    names = list(classes) if classes is not None else None
    labels = [names[int(c)] if names else c for c in np.asarray(y)]
    slices = [entry for name, s in scores.items()
              for entry in slice_results(name, s, member, labels, min_count=min_count, **boot)]
    warnings = []
    n_out = int((~member).sum())
    for a in FPRS:
        if n_out * a < 1:
            warnings.append(f"TPR at {a:.1%} FPR rests on {n_out} non-members (fewer than "
                            f"{int(np.ceil(1 / a))}): it is the share of members scored above "
                            "every non-member")
    return PrivacyReport(attacks, slices, reference_models=len(reference_probas),
                         settings=dict(boot), warnings=warnings)


def _upper(i: Interval) -> float:
    return i.high if i.high is not None else i.value


def _show(i: Interval) -> str:
    band = "" if i.low is None or i.high is None else f" [{i.low:.3f}, {i.high:.3f}]"
    return f"{i.value:.3f}{band}"


__all__ = [
    "EXPOSED_FPR",
    "FPRS",
    "PER_ROW_VARIANCE_MODELS",
    "AttackResult",
    "PrivacyReport",
    "attack_result",
    "audit",
    "lira_offline_scores",
    "logit_confidence",
    "loss_scores",
    "privacy_summary",
    "slice_results",
    "true_label_probability",
]
