"""Attacking a seeded sample of the rows (evaluate.robustness_max_rows) finds what all do."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import save

from driftloop.config import EvaluateSettings
from driftloop.evaluate.robustness import robustness_lines, robustness_section
from driftloop.models import LoadedModel, ModelBundle, build_model


def _fragile_model_and_rows(rows: int):
    torch.manual_seed(0)
    inputs = {"n_numeric": 4, "cardinalities": []}
    bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs=inputs,
                         n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
                         target_encoder={"task": "binary", "classes": [0, 1]})
    model = LoadedModel(bundle, save(build_model("mlp", inputs, 2).state_dict()))
    x = np.random.default_rng(1).normal(size=(rows, 4)).astype(np.float32)
    y = model.predict_arrays(x).argmax(1)  # right on every clean row; many sit near the border
    return model, x, y


def test_a_sampled_attack_finds_the_same_drop_as_attacking_every_row():
    model, x, y = _fragile_model_and_rows(3000)
    common = {"robustness_epsilon": [0.5], "resamples": 300}
    full = robustness_section(model, x, None, y, EvaluateSettings(
        robustness_max_rows=3000, **common))
    sampled = robustness_section(model, x, None, y, EvaluateSettings(
        robustness_max_rows=1000, **common))
    assert "sampled_from" not in full and full["rows"] == 3000
    assert sampled["rows"] == 1000 and sampled["sampled_from"] == 3000
    f, s = full["results"][0]["drop"], sampled["results"][0]["drop"]
    assert f["low"] > 0.05 and s["low"] > 0.05  # both find a real drop, by interval
    assert s["low"] <= f["value"] <= s["high"]  # the sample's interval holds the full value
    assert s["high"] - s["low"] > f["high"] - f["low"]  # only the interval widened
    assert "a seeded sample of 1000 of 3000 rows" in robustness_lines(sampled)[0]
