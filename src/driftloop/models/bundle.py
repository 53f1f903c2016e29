"""The model bundle: everything besides the weights that is needed to use a version.

A bundle is JSON (stored as a content-addressed artifact next to the safetensors weights):
the model's architecture reference and inputs, the task and classes, the schema, and the
preprocessing and target-encoding state fitted on the training split, so that evaluation and
serving apply exactly the transform training applied, and the temperature that calibrates the
probabilities (fitted on the validation split).

Examples
--------
>>> b = ModelBundle(task="binary", input_kind="table", model="mlp",
...                 model_inputs={"n_numeric": 2, "cardinalities": []}, n_outputs=2,
...                 classes=["no", "yes"], schema=None, preprocessor=None,
...                 target_encoder={"task": "binary"})
>>> ModelBundle.from_json(b.to_json()) == b
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class ModelBundle:
    """Architecture, task, schema and preprocessing state of one model version."""

    task: str
    input_kind: str
    model: str
    model_inputs: dict[str, Any]
    n_outputs: int
    classes: list[Any]
    schema: dict[str, Any] | None
    preprocessor: dict[str, Any] | None
    target_encoder: dict[str, Any]
    fingerprints: dict[str, str] = field(default_factory=dict)
    format: int = BUNDLE_FORMAT
    # TemperatureScaler.to_json() fitted on the validation split; None: not calibrated (bundles
    # written before calibration existed load with None)
    calibration: dict[str, Any] | None = None
    # driftloop.features.spec.FeatureUse.to_json() of each feature view the version was trained
    # with (None: trained on a plain table); serving looks these columns up by entity key
    feature_views: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelBundle:
        return cls(**data)


__all__ = ["BUNDLE_FORMAT", "ModelBundle"]
