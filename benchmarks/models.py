"""Model factories for the benchmarks (importable as ``models:<name>`` with ``benchmarks/`` on
``sys.path`` / ``PYTHONPATH``).

``mlp_32_256_256_1`` is the MLP of the training benchmark (issue 3): numeric features -> 256 ->
256 -> ``n_outputs`` (1 for regression), ReLU, no dropout. Both driftloop's worker and the plain
DDP loop build it through ``driftloop.models.build_model("models:mlp_32_256_256_1", ...)``,
so they train the identical module.

>>> import torch
>>> net = mlp_32_256_256_1({"n_numeric": 32, "cardinalities": []}, 1)
>>> net(torch.zeros(4, 32), torch.zeros(4, 0, dtype=torch.long)).shape
torch.Size([4, 1])
>>> sum(p.numel() for p in net.parameters())
74497
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

HIDDEN = (256, 256)


class BenchMLP(nn.Module):
    """Numeric features only; ``x_cat`` is accepted (the worker passes it) and ignored."""

    def __init__(self, n_numeric: int, n_outputs: int, hidden: tuple[int, ...] = HIDDEN) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_numeric
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x)


def mlp_32_256_256_1(model_inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """The benchmark MLP; ``model_inputs["n_numeric"]`` is 32 on the benchmark's table."""
    if model_inputs.get("cardinalities"):
        raise ValueError("the benchmark MLP takes numeric features only")
    return BenchMLP(int(model_inputs["n_numeric"]), n_outputs)


def mlp_wide(model_inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """A wide teacher for the distillation benchmark: numeric features -> 512 -> 256 -> out.

    >>> sum(p.numel() for p in mlp_wide({"n_numeric": 64}, 10).parameters())
    167178
    """
    return BenchMLP(int(model_inputs["n_numeric"]), n_outputs, hidden=(512, 256))
