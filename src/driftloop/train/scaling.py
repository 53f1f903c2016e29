"""Learning-rate scaling for data-parallel training (Goyal et al. 2017).

With a global batch ``k`` times the reference batch, the learning rate is multiplied by ``k``
(the linear scaling rule) and reached gradually over a warmup, because the large rate is
unstable in the first steps while the weights are still random.

Examples
--------
>>> scaled_lr(1e-3, global_batch=256, reference_batch=64)
0.004
>>> [round(warmup_factor(s, warmup_steps=4), 2) for s in range(6)]
[0.25, 0.5, 0.75, 1.0, 1.0, 1.0]

References
----------
Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
"""

from __future__ import annotations

import math


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int) -> float:
    """Learning rate for ``global_batch`` given ``base_lr`` tuned at ``reference_batch``."""
    if global_batch < 1 or reference_batch < 1:
        raise ValueError(
            f"batch sizes must be >= 1, got global_batch={global_batch}, "
            f"reference_batch={reference_batch}"
        )
    return base_lr * global_batch / reference_batch


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the scaled rate at optimiser ``step`` (0-based): linear from 1/W up to 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def warmup_steps_for(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Number of warmup optimiser steps for a warmup given in (possibly fractional) epochs."""
    return int(math.ceil(warmup_epochs * steps_per_epoch))


__all__ = ["scaled_lr", "warmup_factor", "warmup_steps_for"]
