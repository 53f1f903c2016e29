"""A deliberately tiny student for the distillation tests: a linear layer on the first numeric
feature only, so it is clearly worse than any teacher that reads every feature."""

from __future__ import annotations

from typing import Any

import torch


class OneFeature(torch.nn.Module):
    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, n_outputs)

    def forward(self, x: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x[:, :1])


def one_feature(inputs: dict[str, Any], n_outputs: int) -> torch.nn.Module:
    return OneFeature(n_outputs)
