"""The teacher of a distilled run: its checks against the student's data, and its outputs.

:func:`driftloop.train.distill.distill` loads the teacher version and hands a :class:`Teacher`
to the launcher, which (in its own process, before any rank starts) checks that the data it
prepared for the student is the teacher's exactly (same rows in the same splits, same
preprocessing), then writes the teacher's outputs on every prepared row into the run folder
(``RUN/data/{split}_teacher.npy``, :meth:`driftloop.train.spec.TrainSpec.teacher_file`). The
ranks memory-map them beside the other arrays and never load the teacher.

Why precompute rather than run the teacher inside the workers: its forward pass then runs once
per row, not once per row per epoch on every rank, and the ranks need neither the teacher's
weights nor its factory; the outputs are a run-folder input like the data, so a resumed run
(``--resume``) reads the very same numbers and stays exact. ``benchmarks/bench_distill.py``
measures what the precompute costs.

Examples
--------
>>> import numpy as np, torch
>>> from safetensors.torch import save
>>> from driftloop.models.architectures import build_model
>>> from driftloop.models.bundle import ModelBundle
>>> from driftloop.models.loaded import LoadedModel
>>> _ = torch.manual_seed(0)
>>> inputs = {"n_numeric": 3, "cardinalities": []}
>>> b = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs=inputs,
...                 n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
...                 target_encoder={"task": "binary", "classes": [0, 1]})
>>> weights = save(build_model("mlp", inputs, 2).state_dict())
>>> t = Teacher("churn:1", 7, LoadedModel(b, weights), temperature=2.0, alpha=0.5,
...             size_bytes=len(weights))
>>> t.outputs([np.zeros((5, 3), np.float32), np.zeros((5, 0), np.int64)]).shape
(5, 2)
>>> t.params
8898
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from driftloop.errors import UsageError
from driftloop.models.loaded import LoadedModel

_BATCH = 8192  # rows per teacher forward pass: bounded memory on any split size


@dataclass(frozen=True)
class Teacher:
    """A loaded teacher version and the distillation settings.

    Parameters
    ----------
    ref
        ``NAME:VERSION`` of the teacher (recorded with the student).
    version_id
        The teacher version's id: the student's lineage parent.
    model
        The teacher, loaded (weights verified).
    temperature, alpha
        See :class:`driftloop.train.distill_loss.DistillLoss`.
    size_bytes
        Size of the teacher's safetensors weights.
    """

    ref: str
    version_id: int
    model: LoadedModel
    temperature: float
    alpha: float
    size_bytes: int

    @property
    def params(self) -> int:
        """Number of parameters of the teacher."""
        return sum(p.numel() for p in self.model.module.parameters())

    def check_data(self, prepared: Any) -> None:
        """Refuse data that is not the teacher's: other rows in a split, other preprocessing,
        another task or other classes (then the student gate could not pair the test rows)."""
        bundle = self.model.bundle
        for split in ("train", "val", "test"):
            if prepared.fingerprints.get(split) != bundle.fingerprints.get(split):
                raise UsageError(
                    f"DATA is not the data teacher {self.ref} was trained on: its {split} split "
                    f"(fingerprint {str(prepared.fingerprints.get(split))[:12]}) differs from "
                    f"the teacher's ({str(bundle.fingerprints.get(split))[:12]}). Distil on the "
                    "teacher's training data (same file, same rows)."
                )
        same = (prepared.task == bundle.task and list(prepared.classes) == list(bundle.classes)
                and prepared.preprocessor == bundle.preprocessor
                and dict(prepared.target_encoder) == dict(bundle.target_encoder))
        if not same:
            raise UsageError(
                f"DATA prepares differently from teacher {self.ref}'s training data (task, "
                "classes or preprocessing differ); distil on the teacher's training data."
            )

    @torch.inference_mode()
    def outputs(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """The teacher's raw outputs for preprocessed ``inputs`` (the arrays of one split
        without the target): float32 logits, rows × classes, uncalibrated (the temperature
        of distillation softens them, not the teacher's calibration); or rows (regression,
        standardised)."""
        module = self.model.module
        module.eval()
        rows = len(inputs[0])
        parts = []
        for start in range(0, rows, _BATCH):
            # np.array copies: torch refuses the read-only views of memory-mapped files
            batch = [torch.from_numpy(np.array(a[start:start + _BATCH])) for a in inputs]
            out = module(*batch).float()
            parts.append((out.squeeze(-1) if self.model.task == "regression" else out).numpy())
        if not parts:
            width = () if self.model.task == "regression" else (self.model.bundle.n_outputs,)
            return np.zeros((0, *width), np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def spec_entry(self) -> dict[str, Any]:
        """What the run's spec records (``TrainSpec.distill``); the ranks read temperature
        and alpha, the launcher the rest when it registers the student."""
        return {"teacher": self.ref, "teacher_id": self.version_id,
                "teacher_model": self.model.bundle.model, "teacher_params": self.params,
                "teacher_bytes": self.size_bytes, "temperature": self.temperature,
                "alpha": self.alpha, "teacher_outputs": "precomputed"}


__all__ = ["Teacher"]
