"""A model version loaded for inference: bundle + verified safetensors weights.

Examples
--------
>>> import torch, numpy as np
>>> from safetensors.torch import save
>>> from driftloop.models.architectures import build_model
>>> from driftloop.models.bundle import ModelBundle
>>> _ = torch.manual_seed(0)
>>> inputs = {"n_numeric": 2, "cardinalities": []}
>>> weights = save(build_model("mlp", inputs, 2).state_dict())
>>> b = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs=inputs,
...                 n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
...                 target_encoder={"task": "binary", "classes": [0, 1]})
>>> m = LoadedModel(b, weights)
>>> m.predict_arrays(np.zeros((3, 2), np.float32), np.zeros((3, 0), np.int64)).shape
(3, 2)

A bundle with a fitted temperature calibrates every probability the model produces:

>>> import dataclasses
>>> hot = LoadedModel(dataclasses.replace(b, calibration={"kind": "temperature",
...                                                        "temperature": 1e6}), weights)
>>> hot.predict_arrays(np.ones((1, 2), np.float32)).round(3).tolist()
[[0.5, 0.5]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load as load_safetensors

from driftloop.data.prepare import apply_preprocessing
from driftloop.data.preprocess import TargetEncoder
from driftloop.models.architectures import build_model
from driftloop.models.bundle import ModelBundle
from driftloop.models.temperature import TemperatureScaler

if TYPE_CHECKING:
    from driftloop.store import ArtifactStore, VersionRecord


class LoadedModel:
    """Build the architecture named in ``bundle`` and load ``weights`` (safetensors bytes).

    ``allowed_factories``: module prefixes of user factories the bundle may name (a built-in
    model needs none); any other factory is refused before it is imported.
    """

    def __init__(self, bundle: ModelBundle, weights: bytes, *,
                 allowed_factories: Sequence[str] = ()) -> None:
        self.bundle = bundle
        self.module = build_model(bundle.model, bundle.model_inputs, bundle.n_outputs,
                                  allowed=allowed_factories)
        self.module.load_state_dict(load_safetensors(weights), strict=True)
        self.module.eval()
        self.temperature = (
            TemperatureScaler.from_json(bundle.calibration).temperature_
            if bundle.calibration is not None and bundle.task != "regression"
            else 1.0
        )

    @classmethod
    def from_artifacts(cls, artifacts: ArtifactStore, record: VersionRecord, *,
                       allowed_factories: Sequence[str] = ()) -> LoadedModel:
        """Load a stored version: its bundle and weights, each verified against its sha256.

        ``record`` is anything with ``bundle_sha256`` and ``weights_sha256`` (a
        :class:`~driftloop.store.VersionRecord`).

        >>> import torch, types
        >>> from safetensors.torch import save
        >>> from driftloop.store import ArtifactStore
        >>> inputs = {"n_numeric": 2, "cardinalities": []}
        >>> b = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs=inputs,
        ...                 n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
        ...                 target_encoder={"task": "binary", "classes": [0, 1]})
        >>> artifacts = ArtifactStore("memory://loaded-doc")
        >>> weights = save(build_model("mlp", inputs, 2).state_dict())
        >>> record = types.SimpleNamespace(bundle_sha256=artifacts.put_json(b.to_json()),
        ...                                weights_sha256=artifacts.put_bytes(weights))
        >>> LoadedModel.from_artifacts(artifacts, record).task
        'binary'
        """
        bundle = ModelBundle.from_json(artifacts.get_json(record.bundle_sha256))
        return cls(bundle, artifacts.get_bytes(record.weights_sha256),
                   allowed_factories=allowed_factories)

    @property
    def task(self) -> str:
        return self.bundle.task

    @torch.no_grad()
    def predict_arrays(
        self,
        x: np.ndarray,
        x_cat: np.ndarray | None = None,
        batch_size: int = 8192,
        *,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Probabilities (classification, N×K) or standardised outputs (regression, N) of
        already-preprocessed arrays; probabilities are temperature-scaled unless
        ``calibrated=False`` (or the bundle holds no temperature)."""
        temperature = self.temperature if calibrated else 1.0
        outs = []
        for start in range(0, len(x), batch_size):
            part = slice(start, start + batch_size)
            inputs = [torch.from_numpy(np.array(x[part], dtype=np.float32))]
            if self.bundle.input_kind == "table":
                cat = np.zeros((len(x[part]), 0), np.int64) if x_cat is None else x_cat[part]
                inputs.append(torch.from_numpy(np.array(cat, dtype=np.int64)))
            out = self.module(*inputs)
            if self.task == "regression":
                outs.append(out.squeeze(-1).double().numpy())
            else:
                outs.append(torch.softmax(out.double() / temperature, dim=1).numpy())
        if not outs:
            shape = (0,) if self.task == "regression" else (0, self.bundle.n_outputs)
            return np.zeros(shape)
        return np.concatenate(outs)

    def predict_raw(self, data: Any, *, calibrated: bool = True) -> np.ndarray:
        """Outputs for raw rows (a DataFrame of feature columns, or an image/sequence array),
        preprocessed with the state fitted at training time."""
        if self.bundle.preprocessor is None:
            x, x_cat = np.asarray(data, dtype=np.float32), None
        else:
            x, x_cat = apply_preprocessing(self.bundle.preprocessor, data)
        return self.predict_arrays(x, x_cat, calibrated=calibrated)

    def predict(self, data: Any) -> np.ndarray:
        """Predicted labels (classification) or values on the target's scale (regression)."""
        outputs = self.predict_raw(data)
        if self.task == "regression":
            return self.to_original_scale(outputs)
        return self._encoder().inverse_transform(outputs.argmax(axis=1))

    def to_original_scale(self, outputs: np.ndarray) -> np.ndarray:
        """Regression outputs on the target's original scale (identity for classification)."""
        if self.task != "regression":
            return outputs
        encoder = self._encoder()
        return np.asarray(outputs, dtype=np.float64) * encoder.std_ + encoder.mean_

    def _encoder(self) -> TargetEncoder:
        return TargetEncoder.from_json(self.bundle.target_encoder)


__all__ = ["LoadedModel"]
