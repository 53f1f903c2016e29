"""A model factory for the robustness tests: logistic regression on the table's inputs (the
built-in MLP with no hidden layer), whose worst L-infinity perturbation is known in closed form
(registered under ``security.model_factories``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from driftloop.models.architectures import TabularMLP


def make_linear(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """The factory ``linear_model:make_linear``: logits linear in the numeric features."""
    return TabularMLP(int(inputs["n_numeric"]), list(inputs.get("cardinalities", [])),
                      n_outputs, hidden=())
