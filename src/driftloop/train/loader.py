"""Sharded batches from memory-mapped arrays, without a per-sample ``Dataset``.

Each epoch every rank draws the same seeded permutation of all rows and takes every
``world_size``-th row starting at its rank, so the shards are disjoint and cover every row once.
All ranks run the same number of steps (``steps_per_epoch``): a rank whose shard is one row
shorter gets a last batch one row smaller, never a missing step, so no rank waits on a
collective that never comes. Batches are index slices of the arrays (one fancy-index copy per
array per step), not Python loops over samples.

Examples
--------
>>> import numpy as np
>>> x = np.arange(10, dtype=np.float32).reshape(10, 1); y = np.arange(10)
>>> a = ShardedLoader([x, y], rank=0, world_size=2, batch_size=2, seed=0)
>>> b = ShardedLoader([x, y], rank=1, world_size=2, batch_size=2, seed=0)
>>> a.steps_per_epoch, b.steps_per_epoch
(3, 3)
>>> seen = [int(v) for ld in (a, b) for _, yb in ld.epoch(0) for v in yb]
>>> sorted(seen) == list(range(10))
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch


class ShardedLoader:
    """Yield this rank's batches of ``arrays`` (inputs then target) for one epoch at a time.

    Parameters
    ----------
    arrays
        Arrays with the same first dimension (rows); memory-mapped ``.npy`` files work.
    rank, world_size
        This process's rank and the number of ranks.
    batch_size
        Rows per step on this rank (the per-worker batch).
    seed
        Seed of the per-epoch permutation; the same on every rank.
    """

    def __init__(
        self, arrays: Sequence[np.ndarray], rank: int, world_size: int, batch_size: int, seed: int
    ) -> None:
        rows = {len(a) for a in arrays}
        if len(rows) != 1:
            raise ValueError(f"arrays must have the same number of rows, got {sorted(rows)}")
        self.arrays = list(arrays)
        self.rows = rows.pop()
        self.rank, self.world_size = rank, world_size
        self.batch_size, self.seed = batch_size, seed
        self.rows_per_rank = math.ceil(self.rows / world_size)
        self.steps_per_epoch = steps_for(self.rows, world_size, batch_size)

    def shard(self, epoch: int) -> np.ndarray:
        """Row indices this rank consumes in ``epoch``, in consumption order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
        return order[self.rank :: self.world_size]

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[list[torch.Tensor]]:
        """Batches of ``epoch`` from ``start_step`` on, as tensors (copies, not file views)."""
        for _, batch in self.indexed(epoch, start_step):
            yield batch

    def indexed(
        self, epoch: int, start_step: int = 0
    ) -> Iterator[tuple[np.ndarray, list[torch.Tensor]]]:
        """Like :meth:`epoch`, with the row indices of each batch."""
        shard = self.shard(epoch)
        for step in range(start_step, self.steps_per_epoch):
            index = shard[step * self.batch_size : (step + 1) * self.batch_size]
            yield index, [torch.from_numpy(np.ascontiguousarray(a[index])) for a in self.arrays]


    def poisson_indexed(
        self, start_step: int, generator: torch.Generator, rate: float
    ) -> Iterator[tuple[np.ndarray, list[torch.Tensor]]]:
        """Poisson-sampled batches for DP-SGD, from ``start_step`` to the end of an epoch.

        Each step keeps every row of this rank's fixed shard (every ``world_size``-th row)
        with probability ``rate``, drawn from ``generator`` (whose state the caller
        checkpoints): batch sizes vary and a batch may be empty.

        >>> x = np.arange(10, dtype=np.float32).reshape(10, 1); y = np.arange(10)
        >>> ld = ShardedLoader([x, y], rank=1, world_size=2, batch_size=2, seed=0)
        >>> g = torch.Generator().manual_seed(0)
        >>> [idx.tolist() for idx, _ in ld.poisson_indexed(0, g, 0.4)]
        [[5, 7, 9], [], [1, 5, 7, 9]]
        """
        shard = np.arange(self.rank, self.rows, self.world_size)
        for _ in range(start_step, self.steps_per_epoch):
            keep = (torch.rand(len(shard), generator=generator) < rate).numpy()
            index = shard[keep]
            yield index, [torch.from_numpy(np.ascontiguousarray(a[index])) for a in self.arrays]


def steps_for(rows: int, world_size: int, batch_size: int) -> int:
    """Steps per epoch: every rank runs ``ceil(ceil(rows / world_size) / batch_size)``.

    >>> steps_for(10, 2, 2)
    3
    """
    return math.ceil(math.ceil(rows / world_size) / batch_size)


def eval_shard(rows: int, rank: int, world_size: int) -> slice:
    """Contiguous slice of ``rows`` that this rank evaluates (shards cover every row once).

    >>> [eval_shard(5, r, 2) for r in range(2)]
    [slice(0, 3, None), slice(3, 5, None)]
    """
    per = math.ceil(rows / world_size)
    return slice(min(rank * per, rows), min((rank + 1) * per, rows))


__all__ = ["ShardedLoader", "eval_shard", "steps_for"]
