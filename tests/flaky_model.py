"""A model factory for rollout tests: the built-in MLP that raises on some inputs and stalls
on others, as a broken candidate would (registered under ``security.model_factories``)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from driftloop.models.architectures import make_mlp

RAISE_ABOVE = 1.0  # standardised first feature: about one row in six
STALL_ABOVE = 1.5  # standardised second feature: about one row in fifteen
STALL_S = 0.4


class Flaky(nn.Module):
    """``inner`` answers; a batch holding a row past a threshold raises or stalls."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        if bool((x[:, 0] > RAISE_ABOVE).any()):
            raise RuntimeError("flaky candidate: cannot score this row")
        if bool((x[:, 1] > STALL_ABOVE).any()):
            time.sleep(STALL_S)
        return self.inner(x, x_cat)


def make_flaky(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """The factory ``flaky_model:make_flaky``."""
    return Flaky(make_mlp(inputs, n_outputs))
