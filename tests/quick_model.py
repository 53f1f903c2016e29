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
