"""A tabular MLP trained in-process in a second (no ranks), for CLI tests that need a version."""

from __future__ import annotations

from typing import Any

import pandas as pd


def quick_version(frame: pd.DataFrame, *, steps: int = 100,
                  calibration: dict[str, Any] | None = None,
                  seed: int = 0) -> tuple[Any, bytes, Any]:
    """Prepare ``frame`` (target ``label``), train a small MLP with Adam for ``steps`` full-batch
    steps from initial weights drawn with ``seed``; returns ``(prepared, weights, bundle)``
    ready for ``Registry.register``."""
    import torch
    from safetensors.torch import save

    from driftloop.data import prepare
    from driftloop.models.architectures import build_model
    from driftloop.registry import ModelBundle

    prepared = prepare(frame, "label", seed=0)
    torch.manual_seed(seed)
    module = build_model("mlp", prepared.model_inputs, prepared.n_classes)
    train = prepared.splits["train"]
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        out = module(torch.from_numpy(train.x), torch.from_numpy(train.x_cat))
        torch.nn.functional.cross_entropy(out, torch.from_numpy(train.y)).backward()
        optimiser.step()
    extra = {} if calibration is None else {"calibration": calibration}
    bundle = ModelBundle(
        task=prepared.task, input_kind="table", model="mlp", model_inputs=prepared.model_inputs,
        n_outputs=prepared.n_classes, classes=prepared.classes,
        schema=prepared.schema.to_json(), preprocessor=prepared.preprocessor,
        target_encoder=prepared.target_encoder, fingerprints=prepared.fingerprints, **extra,
    )
    return prepared, save(module.eval().state_dict()), bundle


def register_quick(registry: Any, frame: pd.DataFrame, name: str, *, with_profile: bool = True,
                   steps: int = 50) -> Any:
    """Register a quickly trained model of ``frame`` (target ``label``) in ``registry`` and,
    unless ``with_profile`` is False, store its reference profile as training would
    (train-split features, model outputs); returns the version."""
    from driftloop.monitor.profile import build_reference, output_columns
    from driftloop.monitor.reference import store_reference
    from driftloop.registry import LoadedModel

    prepared, weights, bundle = quick_version(frame, steps=steps)
    train = prepared.splits["train"]
    version = registry.register(name, run_id=None, bundle=bundle, weights=weights, metrics={},
                                actor="test", reason="quick test model")
    if not with_profile:
        return version
    rows = frame.iloc[train.rows].drop(columns="label")
    outputs = LoadedModel(bundle, weights).predict_arrays(train.x, train.x_cat)
    columns, names = output_columns(prepared.task, prepared.classes, outputs)
    profile = build_reference(rows, outputs=columns, output_names=names)
    dataset = registry.store.upsert_dataset(prepared.fingerprints["train"], "train", len(rows),
                                            None)
    store_reference(registry, version, profile, dataset_id=dataset.id, run_id=None)
    return version
