"""Training worker: one process per rank, started by ``torch.distributed.run`` (torchrun).

``driftloop train`` prepares the run folder and starts this for you. By hand::

    # one machine, 2 CPU workers (gloo) or 2 GPUs (nccl, one process per GPU)
    torchrun --standalone --nproc-per-node 2 -m driftloop.train.worker --run-dir RUN

    # two nodes with 4 GPUs each; RUN on storage both nodes see (see docs/scaling-out.md)
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \
        --rdzv-endpoint HOST0:29500 --rdzv-id job42 -m driftloop.train.worker --run-dir RUN

    # no torchrun: a single process, world size 1
    python -m driftloop.train.worker --run-dir RUN

The worker reads ``RUN/spec.json``, memory-maps ``RUN/data/*.npy``, trains with
DistributedDataParallel, and rank 0 (the "master" process) writes ``RUN/outputs/``.
It never touches the database.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from driftloop.train.loader import ShardedLoader, eval_shard
from driftloop.train.models import build_model
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    try:
        run(args.run_dir)
    except BaseException as exc:  # record why this rank died, for the launcher's message
        _write_error(args.run_dir, rank, exc)
        raise
    return 0


def run(run_dir: Path) -> None:
    spec = TrainSpec.read(run_dir)
    # DDP is on when torchrun set RANK; a plain `python -m` run is world size 1
    ddp = "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    master = rank == 0
    device = _pick_device(spec.device, local_rank)
    torch.set_num_threads(max(1, spec.threads_per_worker))
    if ddp:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")

    # same seed on every rank for the weights (DDP also broadcasts rank 0's on wrap) ...
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, spec.model_inputs, spec.n_outputs).to(device)
    # ... then offset by rank so dropout masks differ between ranks
    torch.manual_seed(spec.seed + 1000 * rank)
    net: nn.Module = DistributedDataParallel(model) if ddp else model

    train = ShardedLoader(
        _load(run_dir, spec.array_files("train")), rank, world_size, spec.batch_size, spec.seed
    )
    val = _load(run_dir, spec.array_files("val"))
    global_batch = spec.batch_size * world_size
    lr = scaled_lr(spec.lr, global_batch, spec.reference_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=spec.weight_decay)
    warmup = warmup_steps_for(spec.warmup_epochs, train.steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s, warmup))
    loss_fn = _loss_fn(spec.task)

    history: list[dict[str, float]] = []
    best_state, best_loss, best_epoch, stale = None, math.inf, -1, 0
    train_seconds, samples = 0.0, 0
    bar = _ProgressBar(spec.epochs * train.steps_per_epoch, master and spec.progress, run_dir)
    for epoch in range(spec.epochs):
        net.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)  # summed on device: no sync per step
        rows = 0
        for batch in train.epoch(epoch):
            *inputs, target = (t.to(device, non_blocking=True) for t in batch)
            optimizer.zero_grad(set_to_none=True)
            out = net(*inputs)
            loss = _batch_loss(loss_fn, out, target)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(target)
            rows += len(target)
            bar.advance(len(target) * world_size)
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        samples += train.rows

        train_loss = _global_mean(loss_sum, rows, device, ddp)
        val_stats = _validate(model, val, spec.task, loss_fn, rank, world_size, device, ddp)
        if not math.isfinite(train_loss) or not math.isfinite(val_stats["val_loss"]):
            raise FloatingPointError(
                f"the loss became {train_loss} (validation {val_stats['val_loss']}) in epoch "
                f"{epoch}; lower --lr or check the data for extreme values"
            )
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            **val_stats,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": epoch_seconds,
            "samples_per_s": train.rows / epoch_seconds,
        }
        history.append(record)
        bar.describe(epoch, train_loss, val_stats["val_loss"])
        # every rank sees the same all-reduced val_loss, so every rank stops at the same epoch
        if val_stats["val_loss"] < best_loss:
            best_loss, best_epoch, stale = val_stats["val_loss"], epoch, 0
            if master:
                best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if master:
            write_json_atomic(run_dir / OUTPUTS_DIR / HISTORY_FILE, history)
        if stale >= spec.patience:
            break
    bar.close()

    if master:
        assert best_state is not None
        _save_weights(run_dir, best_state)
        write_json_atomic(
            run_dir / OUTPUTS_DIR / RESULT_FILE,
            {
                "best_epoch": best_epoch,
                "best_val_loss": best_loss,
                "epochs_run": len(history),
                "stopped_early": len(history) < spec.epochs,
                "world_size": world_size,
                "global_batch": global_batch,
                "lr": lr,
                "steps_per_epoch": train.steps_per_epoch,
                "train_seconds": train_seconds,
                "samples": samples,
                "samples_per_s": samples / train_seconds if train_seconds else 0.0,
                "device": str(device),
            },
        )
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


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
    model: nn.Module,
    arrays: list[np.ndarray],
    task: str,
    loss_fn: nn.Module,
    rank: int,
    world_size: int,
    device: torch.device,
    ddp: bool,
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
            {
                "rank": rank,
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            },
        )
    except OSError:
        pass


class _ProgressBar:
    """Rank 0's progress: a bar (samples/s, loss) on a terminal, and ``outputs/progress.json``.

    The file lets ``driftloop train`` draw the bar in the user's process while the workers'
    own output goes to the run's log; it is rewritten at most twice a second.
    """

    def __init__(self, total: int, enabled: bool, run_dir: Path) -> None:
        self.progress = None
        self.enabled, self.total, self.path = enabled, total, run_dir / OUTPUTS_DIR / PROGRESS_FILE
        self.started, self.done, self.steps, self.written = time.perf_counter(), 0, 0, 0.0
        self.text = "starting"
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
            self.task = self.progress.add_task("epoch 0", total=total, rate=0.0)
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
        write_json_atomic(
            self.path,
            {"steps": self.steps, "total": self.total, "samples_per_s": rate, "text": self.text},
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


if __name__ == "__main__":
    sys.exit(main())
