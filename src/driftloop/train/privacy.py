"""DP-SGD for the training engine, with Opacus: plan the noise, refuse what it cannot do, and
the per-rank pieces the worker needs (Poisson sampler, noise generator, accountant).

The launcher calls :func:`plan_dp` once, before anything is recorded: it refuses what DP-SGD
here does not support (gradient accumulation, fp16/bf16, layers such as BatchNorm), and finds
the noise multiplier σ that spends at most the target ε over the planned steps
(``opacus.accountants.utils.get_noise_multiplier``). The plan goes into the run's spec; every
rank builds a :class:`PrivateTraining` from it.

Sampling is Poisson, as the accountants assume: each step every training row is in the batch
with probability ``q = expected global batch / training rows``. Each rank holds a fixed shard
(every ``world_size``-th row) and keeps each of its rows with the same ``q``, which is the same
as sampling the whole set with ``q``; batches therefore vary in size and may be empty.

Noise is added once across ranks with the right standard deviation: opacus'
``DistributedDPOptimizer`` (opacus/optimizers/ddpoptimizer.py, 1.5–1.6) clips each rank's
per-sample gradients and sums them, adds ``N(0, (σ·C)²)`` on rank 0 only (``add_noise``: the
other ranks keep their clipped sum), divides by ``expected_batch_size`` (here the expected
*per-rank* batch, ``q·rows/world_size``), then all-reduces with SUM and divides by
``world_size``. The result is ``(Σ_all ranks clipped + N(0, (σ·C)²)) / (q·rows)``: one draw of
noise on the global sum, as in one-process DP-SGD with the global expected batch.

Examples
--------
>>> from driftloop.config import DPSettings
>>> p = plan_dp(DPSettings(epsilon=8.0, accountant="rdp"), rows=1000, world_size=2,
...             batch_size=50, epochs=2)
>>> p["sample_rate"], p["planned_steps"], p["delta"]
(0.1, 20, 1e-05)
>>> p["noise_multiplier"] > 0
True
>>> try:
...     plan_dp(DPSettings(epsilon=1.0), rows=1000, world_size=2, batch_size=50, epochs=2,
...             accumulate=2)
... except UsageError as exc:
...     print(str(exc)[:68])
differential privacy (--dp-epsilon) cannot be combined with --accumu
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from driftloop.config import DPSettings
from driftloop.errors import UsageError
from driftloop.train.loader import ShardedLoader, steps_for

DP_KEY = "differential_privacy"
"""The key of the DP record in result.json, the run's params and the version's metrics
(:mod:`driftloop.registry.dp` reads it; workers may not import the registry)."""

DEFAULT_DELTA = 1e-5


def default_delta(rows: int) -> float:
    """δ when none is given: ``min(1e-5, 1 / (10 × rows))``, well below one over the rows.

    >>> default_delta(455), default_delta(1_000_000)
    (1e-05, 1e-07)
    """
    return min(DEFAULT_DELTA, 1.0 / (10 * rows))


def plan_dp(
    dp: DPSettings, *, rows: int, world_size: int, batch_size: int, epochs: int,
    accumulate: int = 1, precision: str = "fp32", model: nn.Module | None = None,
) -> dict[str, Any]:
    """The DP plan of a run (σ from the target ε), or a :class:`UsageError` naming what to fix.

    ``batch_size`` is per worker; the expected global batch is ``batch_size × world_size``.
    """
    if dp.epsilon is None:
        raise UsageError("plan_dp needs a target epsilon (train.dp.epsilon / --dp-epsilon).")
    if accumulate > 1:
        raise UsageError(
            f"differential privacy (--dp-epsilon) cannot be combined with --accumulate "
            f"{accumulate}: Poisson-sampled batches are clipped and noised one optimiser step "
            "at a time. Drop --accumulate and raise --batch-size (or --workers) instead."
        )
    if precision != "fp32":
        raise UsageError(
            f"differential privacy (--dp-epsilon) runs in fp32 only, not --precision "
            f"{precision}: per-sample gradients and their clipping are not checked in lower "
            "precision. Use --precision fp32."
        )
    if model is not None:
        check_model(model)
    delta = dp.delta if dp.delta is not None else default_delta(rows)
    if delta >= 1.0 / rows:
        raise UsageError(
            f"--dp-delta {delta:g} is not below 1 / training rows = 1/{rows}: such a δ allows "
            f"leaking whole rows. Use a δ below {1.0 / rows:.2g} (default: "
            f"{default_delta(rows):g})."
        )
    sample_rate = batch_size * world_size / rows
    steps = epochs * steps_for(rows, world_size, batch_size)
    sigma = _noise_multiplier(dp, delta, sample_rate, steps)
    return {
        "target_epsilon": float(dp.epsilon), "delta": float(delta),
        "noise_multiplier": float(sigma), "max_grad_norm": float(dp.max_grad_norm),
        "sample_rate": float(sample_rate), "planned_steps": int(steps),
        "accountant": dp.accountant, "secure_mode": bool(dp.secure_mode),
        "expected_batch_size": float(sample_rate * rows), "rows": int(rows),
    }


def _noise_multiplier(dp: DPSettings, delta: float, sample_rate: float, steps: int) -> float:
    from opacus.accountants.utils import get_noise_multiplier

    try:
        with _quiet_accountant():
            return get_noise_multiplier(
                target_epsilon=dp.epsilon, target_delta=delta, sample_rate=sample_rate,
                steps=steps, accountant=dp.accountant,
            )
    except ValueError as exc:  # "The privacy budget is too low."
        raise UsageError(
            f"--dp-epsilon {dp.epsilon:g} cannot be reached with δ={delta:g} over {steps} steps "
            f"at sample rate {sample_rate:.3g} ({exc}). Raise --dp-epsilon, or train fewer "
            "--epochs or with a smaller --batch-size."
        ) from None


def check_model(model: nn.Module) -> None:
    """Refuse a model with a layer DP-SGD cannot train (e.g. BatchNorm), naming the layer.

    Layers are refused, not replaced: a silently swapped BatchNorm would make the registered
    architecture differ from the one the operator asked for.

    >>> check_model(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
    >>> check_model(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: differential privacy cannot train layer '1' (BatchNorm1d): ...
    """
    from opacus.grad_sample import GradSampleModule
    from opacus.validators import ModuleValidator

    for name, layer in model.named_modules():
        validator = ModuleValidator.VALIDATORS.get(type(layer))
        errors = validator(layer) if validator is not None else []
        if not errors and any(True for _ in layer.buffers(recurse=False)) and any(
                p.requires_grad for p in layer.parameters(recurse=False)):
            errors = GradSampleModule.validate(layer)
        if errors:
            raise UsageError(
                f"differential privacy cannot train layer '{name or type(model).__name__}' "
                f"({type(layer).__name__}): {_first_sentence(str(errors[0]))} Replace it with "
                f"{_replacement(layer)} (opacus.validators.ModuleValidator.fix does this), or "
                "train without --dp-epsilon."
            )


# what opacus' ModuleValidator.fix would put in place of each kind of layer it refuses
_REPLACEMENTS = {"BatchNorm": "nn.GroupNorm or nn.LayerNorm", "GRU": "opacus.layers.DPGRU",
                 "LSTM": "opacus.layers.DPLSTM", "RNN": "opacus.layers.DPRNN",
                 "MultiheadAttention": "opacus.layers.DPMultiheadAttention",
                 "InstanceNorm": "an InstanceNorm without running statistics"}


def _replacement(layer: nn.Module) -> str:
    name = type(layer).__name__
    return next((v for k, v in _REPLACEMENTS.items() if name.startswith(k)),
                "a layer without buffers that opacus supports")


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].strip()
    return head if head.endswith(".") else head + "."


class PrivateTraining:
    """One rank's DP-SGD: the per-sample-gradient model, the DP optimiser, the Poisson
    sampler's and the noise's generators, and the accountant.

    The two generators are dedicated ``torch.Generator`` objects (not the global RNG, which
    dropout uses), seeded from ``(seed, rank, stream)``; their states go into the checkpoint
    (safetensors) and the accountant's history into the loop state (JSON), so a resumed run
    draws the same batches and the same noise as an uninterrupted one. ``secure_mode`` seeds
    them from the OS instead and uses opacus' noise that resists floating-point attacks; such a
    run is not reproducible (still resumable, with the same ε).
    """

    def __init__(
        self, plan: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
        rank: int, world_size: int, seed: int,
    ) -> None:
        from opacus import GradSampleModule
        from opacus.accountants import create_accountant
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel as DPDDP
        from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

        self.plan = plan
        secure = bool(plan.get("secure_mode"))
        self.generators = {name: _generator(seed, rank, stream, secure)
                           for stream, name in enumerate(("sampler", "noise"))}
        ddp = world_size > 1
        # DPDDP only broadcasts rank 0's weights; gradients are all-reduced by the optimiser
        self.net = GradSampleModule(DPDDP(model) if ddp else model, loss_reduction="mean")
        # DistributedDPOptimizer: noise on rank 0 only, then SUM all-reduce / world_size (read
        # in opacus 1.6.0's optimizers/ddpoptimizer.py; tests/train/test_privacy.py measures
        # the std over 2 real ranks), so the global average carries exactly one N(0, (σC)²)
        optimizer_class = DistributedDPOptimizer if ddp else DPOptimizer
        self.optimizer = optimizer_class(
            optimizer, noise_multiplier=plan["noise_multiplier"],
            max_grad_norm=plan["max_grad_norm"],
            # per rank: DistributedDPOptimizer divides by it, then averages over the ranks
            expected_batch_size=plan["expected_batch_size"] / world_size,
            loss_reduction="mean", generator=self.generators["noise"], secure_mode=secure,
        )
        self.accountant = create_accountant(mechanism=plan["accountant"])

    def batches(
        self, loader: ShardedLoader, start_step: int
    ) -> Iterator[tuple[np.ndarray, list[torch.Tensor]]]:
        """This rank's Poisson-sampled batches for the rest of one epoch."""
        return loader.poisson_indexed(start_step, self.generators["sampler"],
                                      self.plan["sample_rate"])

    def account(self, loop: dict[str, Any]) -> None:
        """Count one noised optimiser step; keep the history in the loop state (JSON)."""
        self.accountant.step(noise_multiplier=self.plan["noise_multiplier"],
                             sample_rate=self.plan["sample_rate"])
        loop["dp_history"] = [list(h) for h in self.accountant.history]

    def restore(self, loop: dict[str, Any]) -> None:
        """Take the accountant's history back from a resumed loop state."""
        self.accountant.history = [
            (float(s), float(q), int(n)) for s, q, n in loop.get("dp_history", [])
        ]

    def epsilon(self) -> float:
        """ε spent so far at the plan's δ (0 before the first step)."""
        if not self.accountant.history:
            return 0.0
        with _quiet_accountant():
            return float(self.accountant.get_epsilon(delta=self.plan["delta"]))

    def record(self) -> dict[str, Any]:
        """What the run spent: the plan plus ε spent and the steps actually taken."""
        steps = sum(int(n) for _, _, n in self.accountant.history)
        return {**self.plan, "epsilon": self.epsilon(), "steps": steps}


@contextlib.contextmanager
def _quiet_accountant() -> Iterator[None]:
    """The RDP accountant warns when its best order is the largest one it tries (the bisection
    for σ tries huge σ on purpose); the ε it returns is still a valid upper bound."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
        yield


def _generator(seed: int, rank: int, stream: int, secure: bool) -> torch.Generator:
    if secure:
        value = int.from_bytes(os.urandom(8), "little")
    else:
        value = int(np.random.SeedSequence([seed, rank, stream]).generate_state(1, np.uint64)[0])
    return torch.Generator().manual_seed(value)


__all__ = ["DP_KEY", "PrivateTraining", "check_model", "default_delta", "plan_dp"]
