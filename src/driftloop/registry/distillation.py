"""The distillation record of a student version, as training stored it.

A version trained by ``driftloop distill`` carries one entry ``metrics["distillation"]``
(written by the launcher with :func:`student_record`; the run's params hold the plan under the
same key), and its lineage parent is the teacher version. :func:`distill_record` is the one
reader of it, so the model card and the ``student`` gate read the same facts the same way.

Examples
--------
>>> from types import SimpleNamespace
>>> from safetensors.torch import save
>>> import torch
>>> weights = save({"w": torch.zeros(4, 8), "b": torch.zeros(4)})
>>> entry = {"teacher": "churn:3", "teacher_id": 7, "teacher_model": "mlp",
...          "teacher_params": 3600, "teacher_bytes": 14480, "temperature": 2.0, "alpha": 0.5,
...          "teacher_outputs": "precomputed", "precompute_seconds": 0.01}
>>> stored = student_record(entry, "mlp-small", weights)
>>> stored["student_params"], stored["param_ratio"]
(36, 100.0)
>>> record = distill_record(SimpleNamespace(metrics={"accuracy": 0.9, "distillation": stored}))
>>> record.label()
'Distilled from churn:3 (T=2, alpha=0.5)'
>>> distill_record(SimpleNamespace(metrics={"accuracy": 0.9})) is None
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from safetensors.torch import load as load_safetensors

DISTILL_KEY = "distillation"


@dataclass(frozen=True)
class DistillRecord:
    """How one student was distilled, and how it compares in size with its teacher."""

    teacher: str  # NAME:VERSION
    teacher_id: int  # the teacher version's id (= the student's parent_id)
    temperature: float
    alpha: float
    student_model: str
    teacher_model: str
    student_params: int
    teacher_params: int
    student_bytes: int
    teacher_bytes: int
    param_ratio: float  # teacher params / student params
    teacher_outputs: str = "precomputed"
    precompute_seconds: float | None = None

    def label(self) -> str:
        return f"Distilled from {self.teacher} (T={self.temperature:g}, alpha={self.alpha:g})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def student_record(entry: dict[str, Any], student_model: str, weights: bytes) -> dict[str, Any]:
    """The ``metrics["distillation"]`` entry of a student: the spec's distillation ``entry``
    plus the student's architecture, parameter count and size, and the parameter ratio."""
    params = _parameter_count(weights)
    return {**entry, "student_model": student_model, "student_params": params,
            "student_bytes": len(weights),
            "param_ratio": round(int(entry["teacher_params"]) / max(params, 1), 4)}


def _parameter_count(weights: bytes) -> int:
    """Elements of every tensor in safetensors ``weights``."""
    return sum(t.numel() for t in load_safetensors(weights).values())


def distill_record(version: Any) -> DistillRecord | None:
    """The distillation record of ``version`` (a :class:`~driftloop.store.VersionRecord`), or
    None when it was not distilled."""
    raw = (getattr(version, "metrics", None) or {}).get(DISTILL_KEY)
    if not isinstance(raw, dict):
        return None
    fields = DistillRecord.__dataclass_fields__
    return DistillRecord(**{k: v for k, v in raw.items() if k in fields})


def card_items(version: Any) -> list[tuple[str, str | None]]:
    """The model card's distillation item (Model details), empty when not distilled."""
    record = distill_record(version)
    if record is None:
        return []
    return [("Distillation", f"{record.label()}; student {record.student_model} with "
             f"{record.student_params:,} parameters ({record.student_bytes:,} bytes) vs teacher "
             f"{record.teacher_model} with {record.teacher_params:,} ({record.teacher_bytes:,} "
             f"bytes), {record.param_ratio:g}x fewer parameters")]


__all__ = ["DISTILL_KEY", "DistillRecord", "card_items", "distill_record", "student_record"]
