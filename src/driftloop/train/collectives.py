"""What the ranks check about each other: who did not arrive, and who drifted apart.

Both work with 1 process too (no process group): then there is nobody to wait for and
nothing to compare, and they return at once.

Examples
--------
>>> import torch
>>> model = torch.nn.Linear(3, 1)
>>> parameter_checksum(model).shape
torch.Size([4])
>>> check_consistency(model, step=0) is None   # world size 1: nothing to compare
True
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

WAIT_PREFIX = "driftloop/waiting/"


class CollectiveTimeout(RuntimeError):
    """A collective did not complete within the timeout because rank(s) did not arrive."""


class RanksDiverged(RuntimeError):
    """The ranks' parameters are no longer identical."""


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that timed out (gloo and nccl phrase it differently)."""
    text = str(exc).lower()
    return "timed out" in text or "timeout" in text or type(exc).__name__ == "DistBackendError"


def name_missing_ranks(rank: int, world_size: int, where: str, grace_s: float = 2.0) -> str:
    """After a timeout: publish where this rank waited, wait ``grace_s`` for the others to do
    the same, and return a message naming the ranks that never arrived.

    Uses the rendezvous store that torchrun already runs, so it works across nodes.
    """
    store = dist.distributed_c10d._get_default_store()  # the c10d store of the default group
    store.set(f"{WAIT_PREFIX}{rank}", where)
    deadline = time.monotonic() + grace_s
    keys = [f"{WAIT_PREFIX}{r}" for r in range(world_size)]
    while time.monotonic() < deadline and not all(store.check([k]) for k in keys):
        time.sleep(0.1)
    waiting = {r: store.get(k).decode() for r, k in enumerate(keys) if store.check([k])}
    missing = [r for r in range(world_size) if r not in waiting]
    there = "; ".join(f"rank {r} waited at {w}" for r, w in sorted(waiting.items()))
    if missing:
        ranks = ", ".join(str(r) for r in missing)
        return f"rank(s) {ranks} did not arrive at the collective ({there})"
    return f"every rank reached a collective but they did not match ({there})"


def newest_common_step(steps: list[int], slots: int = 8) -> int | None:
    """The newest of ``steps`` (this rank's complete checkpoints) that every rank has, or None.

    Ranks on different nodes read different checkpoint folders; a node that died while the
    others sealed step S has S-1 as its newest. Each rank all-gathers its newest ``slots``
    steps (int64, -1 padded) and all agree on the same answer. Without a process group (or
    with world size 1) it is simply the newest of ``steps``.

    Examples
    --------
    >>> newest_common_step([18, 15]), newest_common_step([])
    (18, None)
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return max(steps) if steps else None
    newest = sorted(steps, reverse=True)[:slots]
    mine = torch.full((slots,), -1, dtype=torch.int64)
    mine[: len(newest)] = torch.tensor(newest, dtype=torch.int64)
    if dist.get_backend() == "nccl":
        mine = mine.cuda()
    gathered = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    common = set.intersection(*({int(s) for s in g.tolist() if s >= 0} for g in gathered))
    return max(common) if common else None


def parameter_checksum(model: torch.nn.Module) -> torch.Tensor:
    """Sum and sum of squares of every parameter tensor, in float64 (2 numbers per tensor)."""
    parts = []
    for p in model.parameters():
        values = p.detach().double()
        parts += [values.sum(), (values * values).sum()]
    return torch.stack(parts)


def check_consistency(model: torch.nn.Module, step: int) -> None:
    """Raise :class:`RanksDiverged` naming the ranks whose parameters differ from rank 0's.

    DDP keeps replicas bitwise identical (same averaged gradients, same optimiser), so any
    difference at all means something outside DDP changed one replica.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    mine = parameter_checksum(model)
    if next(model.parameters()).is_cuda:
        mine = mine.cuda()
    gathered = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    diverged = [r for r, other in enumerate(gathered) if not torch.equal(other, gathered[0])]
    if diverged:
        ranks = ", ".join(str(r) for r in diverged)
        raise RanksDiverged(
            f"rank(s) {ranks} diverged from rank 0 at optimiser step {step}: their parameters "
            "differ (checksums of sum and sum of squares). Something outside DDP changed a "
            "replica; the run was stopped rather than continue with inconsistent models."
        )
    return None


__all__ = [
    "CollectiveTimeout",
    "RanksDiverged",
    "check_consistency",
    "is_timeout",
    "name_missing_ranks",
    "newest_common_step",
    "parameter_checksum",
]
