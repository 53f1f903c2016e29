"""The differential-privacy record of a model version, as training stored it.

A version trained with DP-SGD (``driftloop train --dp-epsilon``) carries one entry
``metrics["differential_privacy"]`` written by the launcher from rank 0's accountant (the
run's params hold the plan under the same key). :func:`dp_record` is the one reader of it, so
the model card, governance reports and privacy audits read the same facts the same way.

Examples
--------
>>> from types import SimpleNamespace
>>> v = SimpleNamespace(metrics={"accuracy": 0.9, "differential_privacy": {
...     "epsilon": 2.7, "target_epsilon": 3.0, "delta": 1e-5, "noise_multiplier": 1.1,
...     "max_grad_norm": 1.0, "sample_rate": 0.08, "steps": 30, "planned_steps": 39,
...     "accountant": "prv", "secure_mode": False}})
>>> record = dp_record(v)
>>> record.epsilon, record.within_target, record.label()
(2.7, True, '(ε = 2.7, δ = 1e-05)-DP (prv accountant)')
>>> dp_record(SimpleNamespace(metrics={"accuracy": 0.9})) is None
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DP_KEY = "differential_privacy"  # = driftloop.train.privacy.DP_KEY, which writes it


@dataclass(frozen=True)
class DPRecord:
    """What DP-SGD spent and with which mechanism (one version)."""

    epsilon: float  # spent, from the accountant's history (early stopping spends less)
    target_epsilon: float
    delta: float
    noise_multiplier: float  # σ: noise std is σ × max_grad_norm on the summed clipped gradients
    max_grad_norm: float  # C, the per-sample clipping bound
    sample_rate: float  # q, Poisson inclusion probability of a row per step
    steps: int  # optimiser steps taken
    planned_steps: int
    accountant: str  # "prv" or "rdp" (opacus)
    secure_mode: bool = False

    @property
    def within_target(self) -> bool:
        return self.epsilon <= self.target_epsilon

    def label(self) -> str:
        return f"(ε = {self.epsilon:.3g}, δ = {self.delta:.3g})-DP ({self.accountant} accountant)"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def dp_record(version: Any) -> DPRecord | None:
    """The DP record of ``version`` (a :class:`~driftloop.store.VersionRecord`), or None when
    it was trained without differential privacy."""
    raw = (getattr(version, "metrics", None) or {}).get(DP_KEY)
    if not isinstance(raw, dict):
        return None
    fields = DPRecord.__dataclass_fields__
    return DPRecord(**{k: v for k, v in raw.items() if k in fields})


def card_items(version: Any) -> list[tuple[str, str | None]]:
    """The model card's "Differential privacy" items (Training data section)."""
    record = dp_record(version)
    if record is None:
        return [("Differential privacy", "not used (standard training, no formal guarantee)")]
    return [
        ("Differential privacy", f"DP-SGD (Opacus), {record.label()}; target ε "
         f"{record.target_epsilon:g} over {record.planned_steps} planned steps, "
         f"{record.steps} taken"),
        ("DP-SGD mechanism", f"noise multiplier σ = {record.noise_multiplier:.4g}, per-sample "
         f"clipping norm C = {record.max_grad_norm:g}, Poisson sample rate q = "
         f"{record.sample_rate:.4g}"),
        ("DP scope", "the guarantee covers the training rows; choosing the best epoch on the "
         "validation split and the test metrics are outside it unless those splits are public"),
    ]


__all__ = ["DP_KEY", "DPRecord", "card_items", "dp_record"]
