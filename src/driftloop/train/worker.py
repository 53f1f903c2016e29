"""Training worker: one process per rank, started by ``torch.distributed.run`` (torchrun).

``driftloop train`` prepares the run folder and starts this for you. By hand::

    # one machine, 2 CPU workers (gloo) or 2 GPUs (nccl, one process per GPU)
    torchrun --standalone --nproc-per-node 2 -m driftloop.train.worker --run-dir RUN

    # survive a dying worker: the agent restarts the group, every rank resumes from the
    # newest complete checkpoint in RUN/checkpoints
    torchrun --standalone --nproc-per-node 2 --max-restarts 3 \
        -m driftloop.train.worker --run-dir RUN

    # two nodes with 4 GPUs each, each with its own copy of RUN (driftloop train --nnodes 2
    # and driftloop worker do this for you, see docs/scaling-out.md); --node-rank numbers the
    # ranks from the node, so global rank 0 is on node 0 whatever order the agents join in
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
        --rdzv-endpoint HOST0:29500 --rdzv-id job42 -m driftloop.train.worker --run-dir RUN \\
        --node-rank K

    # no torchrun: a single process, world size 1
    python -m driftloop.train.worker --run-dir RUN

The worker reads ``RUN/spec.json``, memory-maps ``RUN/data/*.npy``, trains with
DistributedDataParallel, checkpoints into ``RUN/checkpoints/`` (node N > 0:
``RUN/checkpoints/node-N/``), and rank 0 (the "master" process) writes ``RUN/outputs/``. It
never touches the database. It uses ``OMP_NUM_THREADS`` threads when set (the launcher sets it
from the cores of the node it runs on), else the spec's ``threads_per_worker``. A spec with a
``dp`` plan trains with DP-SGD instead of DDP (:mod:`driftloop.train.privacy`). A spec with a
``distill`` entry trains a student: each batch also carries the teacher's outputs on the same
rows (``RUN/data/train_teacher.npy``, sharded with the other arrays) and the loss is
:class:`driftloop.train.distill_loss.DistillLoss`; validation (early stopping) stays on the
labels.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from driftloop.models.architectures import build_model
from driftloop.train.checkpoint import (
    Checkpoint,
    complete_checkpoints,
    node_folder,
    write_checkpoint,
)
from driftloop.train.collectives import (
    CollectiveTimeout,
    check_consistency,
    is_timeout,
    name_missing_ranks,
    newest_common_step,
)
from driftloop.train.distill_loss import DistillLoss
from driftloop.train.faults import Faults, Ledger
from driftloop.train.loader import ShardedLoader, eval_shard
from driftloop.train.privacy import DP_KEY, PrivateTraining
from driftloop.train.scaling import scaled_lr, warmup_factor, warmup_steps_for
from driftloop.train.spec import (
    DATA_DIR,
    HISTORY_FILE,
    OUTPUTS_DIR,
    PROGRESS_FILE,
    RESULT_FILE,
    WEIGHTS_FILE,
    TrainSpec,
    write_json_atomic,
)

# loop state that differs between ranks: each rank checkpoints and restores its own
RANK_LOCAL = ("loss_sum", "rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--node-rank", type=int, default=None,
                        help="this node's rank in a multi-node job (ranks are numbered from it)")
    args = parser.parse_args(argv)
    rank = ranks(args.node_rank)[0]
    (args.run_dir / OUTPUTS_DIR / f"error-rank{rank}.json").unlink(missing_ok=True)
    try:
        run(args.run_dir, args.node_rank)
    except BaseException as exc:  # record why this rank died, for the launcher's message
        _write_error(args.run_dir, rank, exc)
        raise
    return 0


def ranks(node_rank: int | None = None, environ: Any = None) -> tuple[int, int, int]:
    """This process's (rank, local rank, world size) from torchrun's environment.

    DDP is on when torchrun set ``RANK``; a plain ``python -m`` run is world size 1. With a
    ``node_rank`` the rank is ``node_rank × LOCAL_WORLD_SIZE + LOCAL_RANK`` instead of the
    agent's: the c10d rendezvous numbers nodes in the order of their host names and process
    ids, so only this keeps rank 0 (outputs, the recorded run) on node 0 and each rank's
    checkpoint files on the node that wrote them, across restarts.

    Examples
    --------
    >>> ranks(environ={})
    (0, 0, 1)
    >>> env = {"RANK": "0", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "4"}
    >>> ranks(1, env)
    (3, 1, 4)
    """
    environ = os.environ if environ is None else environ
    local_rank = int(environ.get("LOCAL_RANK", "0"))
    world_size = int(environ.get("WORLD_SIZE", "1"))
    if node_rank is None:
        return int(environ.get("RANK", "0")), local_rank, world_size
    local_world = int(environ.get("LOCAL_WORLD_SIZE", "1"))
    rank = node_rank * local_world + local_rank
    if world_size % local_world or rank >= world_size:
        raise ValueError(
            f"--node-rank {node_rank} with {local_world} workers per node does not fit a world "
            f"of {world_size}: every node must run the same number of workers"
        )
    return rank, local_rank, world_size


def run(run_dir: Path, node_rank: int | None = None) -> None:
    spec = TrainSpec.read(run_dir)
    rank, local_rank, world_size = ranks(node_rank)
    ddp = world_size > 1
    master = rank == 0
    device = _pick_device(spec.device, local_rank)
    # the node that runs this rank chose the threads (OMP_NUM_THREADS), not the one that
    # prepared the spec
    threads = os.environ.get("OMP_NUM_THREADS") or spec.threads_per_worker
    torch.set_num_threads(max(1, int(threads)))
    if ddp:
        _init_process_group(device, rank, world_size, spec.collective_timeout_s)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    faults = Faults.from_environ(os.environ, rank)

    # same seed on every rank for the weights (DDP also broadcasts rank 0's on wrap) ...
    torch.manual_seed(spec.seed)
    # the launcher wrote spec.model from its operator's own --model: this run may build it
    model = build_model(spec.model, spec.model_inputs, spec.n_outputs,
                        allowed=[spec.model]).to(device)
    # ... then offset by rank so dropout masks differ between ranks
    torch.manual_seed(spec.seed + 1000 * rank)

    # a student's loader also shards the teacher's outputs, so each batch has those of its rows
    train_files = spec.array_files("train") + (
        [spec.teacher_file("train")] if spec.distill is not None else [])
    train = ShardedLoader(_load(run_dir, train_files), rank, world_size, spec.batch_size,
                          spec.seed)
    val = _load(run_dir, spec.array_files("val"))
    accumulate = max(1, spec.accumulate)
    global_batch = spec.batch_size * world_size * accumulate
    lr = scaled_lr(spec.lr, global_batch, spec.reference_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=spec.weight_decay)
    opt_steps_per_epoch = math.ceil(train.steps_per_epoch / accumulate)
    warmup = warmup_steps_for(spec.warmup_epochs, opt_steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s, warmup))
    autocast, scaler = _precision(spec.precision, device)
    loss_fn = _loss_fn(spec.task)
    distill = (None if spec.distill is None else DistillLoss(
        spec.task, spec.distill["temperature"], spec.distill["alpha"]))
    on_gpu = device.type == "cuda"

    def step_loss(out: torch.Tensor, target: torch.Tensor,
                   soft: torch.Tensor | None) -> torch.Tensor:
        if distill is None or soft is None:
            return _batch_loss(loss_fn, out, target)
        return distill(out, soft, target)

    def forward_backward(inputs: list[torch.Tensor], target: torch.Tensor,
                         group: int, soft: torch.Tensor | None = None) -> torch.Tensor:
        """Forward and backward of one micro-batch; returns its (unscaled) mean loss."""
        if autocast is None:
            loss = step_loss(net(*inputs), target, soft)
        else:
            with autocast():
                out = net(*inputs)
            loss = step_loss(out.float(), target, soft)
        scaled = scaler.scale(loss) if scaler.is_enabled() else loss
        (scaled if group == 1 else scaled / group).backward()
        return loss

    loop = _fresh_loop_state()
    node = int(os.environ.get("GROUP_RANK", "0")) if node_rank is None else node_rank
    checkpoints = node_folder(run_dir, node)
    checkpoint = _agreed_checkpoint(checkpoints)
    best_state = None
    if checkpoint is not None:
        best_state = _resume(checkpoint, loop, model, optimizer, schedule, scaler, rank,
                             world_size, lr)
    private = None
    net: nn.Module
    if spec.dp is not None:
        # DP-SGD: per-sample gradients, clipped and noised by opacus' (Distributed)DPOptimizer,
        # which all-reduces them itself, so no DistributedDataParallel (see train.privacy)
        private = PrivateTraining(spec.dp, model, optimizer, rank, world_size, spec.seed)
        if checkpoint is not None:
            _resume_private(private, checkpoint, loop, rank, world_size)
        net, optimizer = private.net, private.optimizer
    else:
        net = DistributedDataParallel(model) if ddp else model
    ledger = Ledger(run_dir, rank) if faults.ledger else None
    if ledger is not None:
        ledger.truncate_to(loop["epoch"], loop["step"])

    costs = {"checkpoint": [], "consistency": []}  # seconds per call, for the benchmark

    def consistency() -> None:
        t = time.perf_counter()
        check_consistency(model, loop["opt_step"])
        costs["consistency"].append(time.perf_counter() - t)

    def save_checkpoint() -> None:
        t = time.perf_counter()
        _write()
        costs["checkpoint"].append(time.perf_counter() - t)

    def _write() -> None:
        write_checkpoint(
            checkpoints, loop["opt_step"], rank, world_size, local_rank=local_rank, model=model,
            optimizer=optimizer, scheduler=schedule, scaler=scaler, best=best_state,
            loop={**{k: v for k, v in loop.items() if k not in RANK_LOCAL},
                  "world_size": world_size},
            rank_state={k: loop[k] for k in RANK_LOCAL},
            barrier=dist.barrier if ddp else _no_op,
            generators=private.generators if private is not None else None,
        )

    step_seconds: list[float] = []
    bar = _ProgressBar(spec.epochs * train.steps_per_epoch, master and spec.progress, run_dir,
                       done=loop["epoch"] * train.steps_per_epoch + loop["step"])
    position: tuple[int, int | None] = (loop["epoch"], loop["step"])
    try:
        while loop["epoch"] < spec.epochs and not loop["stopped"]:
            epoch = loop["epoch"]
            net.train()
            t0 = time.perf_counter()
            loss_sum = torch.tensor(loop["loss_sum"], dtype=torch.float32, device=device)
            t_step = time.perf_counter()
            batches = (train.indexed(epoch, loop["step"]) if private is None
                       else private.batches(train, loop["step"]))
            for step, (index, batch) in enumerate(batches, start=loop["step"]):
                position = (epoch, step)
                if ledger is not None:
                    ledger.record(epoch, step, index.tolist())
                if on_gpu:
                    batch = [t.to(device, non_blocking=True) for t in batch]
                soft = batch.pop() if distill is not None else None  # the teacher's outputs
                *inputs, target = batch
                sync = (step + 1) % accumulate == 0 or step + 1 == train.steps_per_epoch
                group = 1 if accumulate == 1 else _group_size(step, train.steps_per_epoch,
                                                              accumulate)
                if sync or not ddp:
                    loss = forward_backward(inputs, target, group, soft)
                else:
                    # no_sync: gradients of the first K-1 micro-batches stay local, so one
                    # all-reduce serves K micro-batches
                    with net.no_sync():
                        loss = forward_backward(inputs, target, group, soft)
                loss_sum.add_(loss.detach(), alpha=len(target))
                loop["rows"] += len(target)
                bar.advance(len(target) * world_size)
                if not sync:
                    continue
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                if private is not None:
                    private.account(loop)
                loop["opt_step"] += 1
                loop["step"] = step + 1
                now = time.perf_counter()
                step_seconds.append(now - t_step)
                t_step = now
                faults.after_step(loop["opt_step"], model)
                if spec.consistency_every and loop["opt_step"] % spec.consistency_every == 0:
                    consistency()
                if spec.checkpoint_every and loop["opt_step"] % spec.checkpoint_every == 0:
                    loop["loss_sum"] = float(loss_sum)
                    loop["train_seconds"] += time.perf_counter() - t0
                    save_checkpoint()
                    t0 = t_step = time.perf_counter()
            epoch_seconds = time.perf_counter() - t0
            loop["train_seconds"] += epoch_seconds
            loop["samples"] += train.rows
            position = (epoch, None)

            train_loss = _global_mean(loss_sum, loop["rows"], device, ddp)
            val_stats = _validate(model, val, spec.task, loss_fn, rank, world_size, device, ddp)
            if not math.isfinite(train_loss) or not math.isfinite(val_stats["val_loss"]):
                raise FloatingPointError(
                    f"the loss became {train_loss} (validation {val_stats['val_loss']}) in epoch "
                    f"{epoch}; lower --lr or check the data for extreme values"
                )
            if not spec.consistency_every:
                consistency()
            loop["history"].append({
                "epoch": epoch, "train_loss": train_loss, **val_stats,
                "lr": optimizer.param_groups[0]["lr"], "seconds": epoch_seconds,
                "samples_per_s": train.rows / epoch_seconds if epoch_seconds else 0.0,
                # ε spent by the end of this epoch (rank 0's history is the one kept)
                **({"epsilon": private.epsilon()} if private is not None and master else {}),
            })
            bar.describe(epoch, train_loss, val_stats["val_loss"])
            # every rank sees the same all-reduced val_loss, so every rank stops together
            if loop["best_loss"] is None or val_stats["val_loss"] < loop["best_loss"]:
                loop.update(best_loss=val_stats["val_loss"], best_epoch=epoch, stale=0)
                best_state = copy.deepcopy(model.state_dict()) if master else None
            else:
                loop["stale"] += 1
            loop.update(epoch=epoch + 1, step=0, loss_sum=0.0, rows=0,
                        stopped=loop["stale"] >= spec.patience)
            if master:
                write_json_atomic(run_dir / OUTPUTS_DIR / HISTORY_FILE, loop["history"])
            save_checkpoint()
    except Exception as exc:
        if ddp and is_timeout(exc):
            where = _describe_position(position, loop["opt_step"])
            raise CollectiveTimeout(
                f"a collective timed out after {spec.collective_timeout_s:g} s at {where}: "
                f"{name_missing_ranks(rank, world_size, where)}. Raise --collective-timeout "
                "if a step can legitimately take that long."
            ) from exc
        raise
    bar.close()

    if master:
        _finish(run_dir, loop, best_state, world_size, global_batch, lr,
                train.steps_per_epoch, step_seconds, device, spec, costs,
                private.record() if private is not None else None)
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


def _init_process_group(
    device: torch.device, rank: int, world_size: int, timeout_s: float
) -> None:
    # a short timeout: a stalled rank fails the job in a minute, not in half an hour
    timeout = datetime.timedelta(seconds=timeout_s)
    # the store is hosted at MASTER_ADDR, the address of torchrun's rank 0, which is not
    # always driftloop's rank 0 (see ranks()): torchrun's rank decides who hosts it
    agent_rank = int(os.environ.get("RANK", str(rank)))
    store, _, _ = next(dist.rendezvous("env://", agent_rank, world_size, timeout=timeout))
    # torchrun keeps one store across restarts of the group; without a prefix per attempt a
    # restarted rank can read a dead rank's address from the previous attempt and fail to
    # connect (pytorch/pytorch#167288). A multi-node agent gives each attempt a fresh store
    # instead (its nodes count restarts separately, see driftloop.train.torchrun), so the
    # prefix is only for the agent's shared store, where one agent numbers every attempt.
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True):
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        store = dist.PrefixStore(f"driftloop/attempt-{attempt}/", store)
    dist.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo", store=store,
        rank=rank, world_size=world_size, timeout=timeout,
    )


def _agreed_checkpoint(root: Path) -> Checkpoint | None:
    """The newest checkpoint complete in this node's folder and in every other node's."""
    found = complete_checkpoints(root)
    step = newest_common_step([c.step for c in found])
    return next((c for c in found if c.step == step), None)


def _fresh_loop_state() -> dict[str, Any]:
    return {
        "epoch": 0, "step": 0, "opt_step": 0, "loss_sum": 0.0, "rows": 0,
        "history": [], "best_loss": None, "best_epoch": -1, "stale": 0, "stopped": False,
        "train_seconds": 0.0, "samples": 0,
    }


def _resume(
    checkpoint: Checkpoint, loop: dict[str, Any], model: nn.Module,
    optimizer: torch.optim.Optimizer, schedule: Any, scaler: Any, rank: int, world_size: int,
    lr: float,
) -> dict[str, torch.Tensor] | None:
    """Load a checkpoint into the live objects; return the best weights so far."""
    saved = dict(checkpoint.loop)
    saved_world = int(saved.pop("world_size", world_size))
    loop.update(saved)
    model.load_state_dict(checkpoint.model_state())
    optimizer.load_state_dict(checkpoint.optimizer_state())
    if checkpoint.scheduler_state() is not None:
        schedule.load_state_dict(checkpoint.scheduler_state())
    if checkpoint.scaler_state() is not None and scaler.is_enabled():
        scaler.load_state_dict(checkpoint.scaler_state())
    if saved_world != world_size:
        # a different world size shards the epoch differently: the position inside an epoch
        # has no meaning any more, so the interrupted epoch starts again (not bitwise-exact)
        loop.update(step=0, loss_sum=0.0, rows=0)
        schedule.base_lrs = [lr for _ in schedule.base_lrs]
    else:
        checkpoint.restore_rng(rank)
        loop.update(checkpoint.rank_state(rank) or {})
    return checkpoint.best_state() if rank == 0 else None


def _resume_private(
    private: PrivateTraining, checkpoint: Checkpoint, loop: dict[str, Any], rank: int,
    world_size: int,
) -> None:
    """Give DP-SGD back its accountant and this rank's sampler and noise generators."""
    saved_world = int(checkpoint.loop.get("world_size", world_size))
    if saved_world != world_size or not checkpoint.restore_generators(rank, private.generators):
        raise ValueError(
            "this DP-SGD run's checkpoint has no sampler/noise state for rank "
            f"{rank} (it was written with another world size); resume it with the same "
            "number of workers"
        )
    private.restore(loop)


def _group_size(step: int, steps: int, accumulate: int) -> int:
    """Micro-batches in the accumulation group of ``step`` (the last group may be short)."""
    start = (step // accumulate) * accumulate
    return min(accumulate, steps - start)


def _precision(precision: str, device: torch.device) -> tuple[Any, Any]:
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a GPU; use bf16 (or fp32) on CPU")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if dtype is None:
        return None, scaler  # fp32: no autocast context on the hot path

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=dtype)

    return autocast, scaler


def _describe_position(position: tuple[int, int | None], opt_step: int) -> str:
    epoch, step = position
    if step is None:
        return f"the end of epoch {epoch}"
    return f"epoch {epoch}, batch {step} (optimiser step {opt_step})"


def _finish(
    run_dir: Path, loop: dict[str, Any], best_state: dict[str, torch.Tensor] | None,
    world_size: int, global_batch: int, lr: float, steps_per_epoch: int,
    step_seconds: list[float], device: torch.device, spec: TrainSpec,
    costs: dict[str, list[float]], dp_record: dict[str, Any] | None = None,
) -> None:
    if best_state is None:
        raise RuntimeError("no epoch finished, so there are no weights to save")
    _save_weights(run_dir, best_state)
    times = np.array(step_seconds) if step_seconds else np.zeros(1)
    write_json_atomic(
        run_dir / OUTPUTS_DIR / RESULT_FILE,
        {
            "best_epoch": loop["best_epoch"],
            "best_val_loss": loop["best_loss"],
            "epochs_run": len(loop["history"]),
            "stopped_early": len(loop["history"]) < spec.epochs,
            "world_size": world_size,
            "global_batch": global_batch,
            "lr": lr,
            "steps_per_epoch": steps_per_epoch,
            "optimizer_steps": loop["opt_step"],
            "train_seconds": loop["train_seconds"],
            "samples": loop["samples"],
            "samples_per_s": loop["samples"] / loop["train_seconds"]
            if loop["train_seconds"] else 0.0,
            "step_seconds_p50": float(np.percentile(times, 50)),
            "step_seconds_p95": float(np.percentile(times, 95)),
            "device": str(device),
            "threads_per_worker": torch.get_num_threads(),
            "precision": spec.precision,
            "step_seconds_mean": float(times.mean()),
            "checkpoints": len(costs["checkpoint"]),
            "checkpoint_seconds_mean": _mean(costs["checkpoint"]),
            "consistency_checks": len(costs["consistency"]),
            "consistency_seconds_mean": _mean(costs["consistency"]),
            **({DP_KEY: dp_record} if dp_record is not None else {}),
        },
    )


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _no_op() -> None:
    return None


def _pick_device(choice: str, local_rank: int) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _load(run_dir: Path, names: list[str]) -> list[np.ndarray]:
    return [np.load(run_dir / DATA_DIR / name, mmap_mode="r") for name in names]


def _loss_fn(task: str) -> nn.Module:
    return nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()


def _batch_loss(loss_fn: nn.Module, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if len(target) == 0:
        # a rank whose shard is one row short may get an empty last batch; it must still
        # take part in DDP's all-reduce, with zero gradient
        return out.sum() * 0.0
    if isinstance(loss_fn, nn.MSELoss):
        return loss_fn(out.squeeze(-1), target)
    return loss_fn(out, target)


def _global_mean(total: torch.Tensor, rows: int, device: torch.device, ddp: bool) -> float:
    both = torch.stack([total.double(), torch.tensor(float(rows), device=device).double()])
    if ddp:
        dist.all_reduce(both)
    return float(both[0] / both[1])


@torch.no_grad()
def _validate(
    model: nn.Module, arrays: list[np.ndarray], task: str, loss_fn: nn.Module, rank: int,
    world_size: int, device: torch.device, ddp: bool,
) -> dict[str, float]:
    model.eval()
    part = eval_shard(len(arrays[0]), rank, world_size)
    *inputs, target = (torch.from_numpy(np.array(a[part])).to(device) for a in arrays)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, rows, correct
    if len(target):
        out = model(*inputs)
        sums[0] = _batch_loss(loss_fn, out, target).double() * len(target)
        sums[1] = len(target)
        if task != "regression":
            sums[2] = (out.argmax(dim=1) == target).sum()
    if ddp:
        dist.all_reduce(sums)
    stats = {"val_loss": float(sums[0] / sums[1])}
    if task != "regression":
        stats["val_accuracy"] = float(sums[2] / sums[1])
    return stats


def _save_weights(run_dir: Path, state: dict[str, torch.Tensor]) -> None:
    path = run_dir / OUTPUTS_DIR / WEIGHTS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def _write_error(run_dir: Path, rank: int, exc: BaseException) -> None:
    try:
        write_json_atomic(
            run_dir / OUTPUTS_DIR / f"error-rank{rank}.json",
            {"rank": rank, "type": type(exc).__name__, "message": str(exc),
             "traceback": traceback.format_exc()},
        )
    except OSError:
        pass


class _ProgressBar:
    """Rank 0's progress: a bar (samples/s, loss) on a terminal, and ``outputs/progress.json``.

    The file lets ``driftloop train`` draw the bar in the user's process while the workers'
    own output goes to the run's log; it is rewritten at most twice a second.
    """

    def __init__(self, total: int, enabled: bool, run_dir: Path, done: int = 0) -> None:
        self.progress = None
        self.enabled, self.total, self.path = enabled, total, run_dir / OUTPUTS_DIR / PROGRESS_FILE
        self.started, self.done, self.steps, self.written = time.perf_counter(), 0, done, 0.0
        self.text = "starting" if not done else "resumed"
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train[/] {task.description}"),
                BarColumn(),
                TextColumn("{task.fields[rate]:>8.0f} samples/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task(self.text, total=total, completed=done, rate=0.0)
            self.progress.start()

    def advance(self, samples: int) -> None:
        if not self.enabled:
            return
        self.done += samples
        self.steps += 1
        now = time.perf_counter()
        rate = self.done / max(now - self.started, 1e-9)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, rate=rate)
        if now - self.written > 0.5:
            self._write(rate)
            self.written = now

    def describe(self, epoch: int, train_loss: float, val_loss: float) -> None:
        if not self.enabled:
            return
        self.text = f"epoch {epoch + 1} loss {train_loss:.4f} val {val_loss:.4f}"
        if self.progress is not None:
            self.progress.update(self.task, description=self.text)
        self._write(self.done / max(time.perf_counter() - self.started, 1e-9))

    def _write(self, rate: float) -> None:
        # display only: atomic (readers never see half a file) but not fsynced, so the rank
        # does not wait on the disk inside the step loop
        write_json_atomic(
            self.path,
            {"steps": self.steps, "total": self.total, "samples_per_s": rate, "text": self.text},
            durable=False,
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


if __name__ == "__main__":
    sys.exit(main())
