"""The baseline: a plain, hand-written DDP training loop, as a user would write it (same recipe:
AdamW, linear LR scaling with warmup; MSE for regression, cross-entropy otherwise).

Started by bench_train.py under torchrun with the same arrays, model, optimiser, batch size,
epochs and threads per rank as the driftloop run it is compared with::

    OMP_NUM_THREADS=<spec threads_per_worker> python -m torch.distributed.run --standalone \
        --nproc-per-node 2 benchmarks/plain_ddp.py --run-dir RUN --loader slicing

Two data paths:

* ``--loader slicing``: tensors in memory (the whole ``train_*.npy`` read up front), the same
  seeded permutation per epoch as driftloop's loader, one index per batch (the fastest loop we
  know how to write by hand);
* ``--loader dataloader``: ``TensorDataset`` + ``DistributedSampler`` + ``DataLoader``, the
  loop most tutorials show (per-sample indexing and collation).

Both run the same number of optimiser steps per epoch as driftloop
(``ceil(ceil(rows / world) / batch)``) on every rank, so no rank waits on an all-reduce that
never comes when the rows do not divide evenly.

Only the training steps are timed (as in driftloop's own samples/s): no validation, no
start-up, no data loading before the first epoch. Each optimiser step is timed the way
driftloop's worker times it: ``perf_counter`` from the end of the previous step (or the start of
the epoch, so the first step carries the epoch's permutation) to the end of ``schedule.step()``,
on rank 0, training steps only; p50/p95/mean are ``numpy.percentile`` / ``mean`` over all steps.

With one process (``--nproc-per-node 1``) the model is not wrapped in DDP and no process group
is made, as driftloop's worker does at world size 1 (DDP there would only add overhead).

Prints one JSON line from rank 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from driftloop.models.architectures import build_model
from driftloop.train.scaling import scaled_lr, warmup_factor, warmup_steps_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--loader", choices=["slicing", "dataloader"], default="slicing")
    args = parser.parse_args()
    if "RANK" not in os.environ:
        sys.exit("plain_ddp.py: start me under torchrun (python -m torch.distributed.run ...)")
    spec = json.loads((args.run_dir / "spec.json").read_text())
    if spec.get("input_kind") != "table":
        sys.exit(f"plain_ddp.py: only table runs are supported, got {spec.get('input_kind')!r}")
    unsupported = {
        k: spec[k] for k, plain in (("accumulate", 1), ("precision", "fp32"))
        if spec.get(k, plain) != plain
    }
    if unsupported:
        sys.exit(f"plain_ddp.py: the baseline runs accumulate=1 in fp32 only, not {unsupported}")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    threads = max(1, int(spec["threads_per_worker"]))
    if os.environ.get("OMP_NUM_THREADS") != str(threads) and rank == 0:
        print(
            f"plain_ddp.py: warning: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')!r}, "
            f"the spec's threads_per_worker is {threads}",
            file=sys.stderr,
        )
    torch.set_num_threads(threads)
    ddp = world > 1
    if ddp:
        dist.init_process_group("gloo")

    data = args.run_dir / "data"
    x = torch.from_numpy(np.load(data / "train_x.npy"))
    xc = torch.from_numpy(np.load(data / "train_xcat.npy"))
    y = torch.from_numpy(np.load(data / "train_y.npy"))
    rows = len(y)

    torch.manual_seed(spec["seed"])
    model = build_model(spec["model"], spec["model_inputs"], spec["n_outputs"],
                        allowed=[spec["model"]])  # the benchmark trusts its own model
    if ddp:
        model = DistributedDataParallel(model)
    torch.manual_seed(spec["seed"] + 1000 * rank)  # dropout masks differ between ranks
    batch = int(spec["batch_size"])
    lr = scaled_lr(spec["lr"], batch * world, spec["reference_batch"])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=spec["weight_decay"])
    regression = spec["task"] == "regression"
    loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(math.ceil(rows / world) / batch)
    warmup = warmup_steps_for(spec["warmup_epochs"], steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_factor(s, warmup))

    if args.loader == "dataloader":
        dataset = TensorDataset(x, xc, y)
        # pads the shorter shard by wrapping around, so every rank runs steps_per_epoch steps
        sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=spec["seed"])
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler)

    seconds, samples, last_loss, epoch_seconds = 0.0, 0, float("nan"), []
    step_seconds: list[float] = []
    for epoch in range(spec["epochs"]):
        model.train()
        t0 = t_step = time.perf_counter()
        if args.loader == "dataloader":
            sampler.set_epoch(epoch)
            batches = iter(loader)
        else:
            # the same permutation and shard as driftloop's loader: identical batches
            order = np.random.default_rng([spec["seed"], epoch]).permutation(rows)
            shard = torch.from_numpy(order[rank::world])
            batches = (
                (x[i], xc[i], y[i])
                for i in (shard[s * batch : (s + 1) * batch] for s in range(steps_per_epoch))
            )
        total, steps = torch.zeros(()), 0
        for xb, cb, yb in batches:
            opt.zero_grad(set_to_none=True)
            out = model(xb, cb)
            # an empty last batch (shard one row short) still joins the all-reduce
            if not len(yb):
                loss = out.sum() * 0.0
            else:
                loss = loss_fn(out.squeeze(-1), yb) if regression else loss_fn(out, yb)
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.detach()
            steps += 1
            now = time.perf_counter()
            step_seconds.append(now - t_step)
            t_step = now
        epoch_seconds.append(time.perf_counter() - t0)
        seconds += epoch_seconds[-1]
        samples += rows
        last_loss = float(total) / max(steps, 1)
    if rank == 0:
        times = np.array(step_seconds)
        print(json.dumps({
            "samples_per_s": samples / seconds,
            "step_seconds_p50": float(np.percentile(times, 50)),
            "step_seconds_p95": float(np.percentile(times, 95)),
            "step_seconds_mean": float(times.mean()),
            "optimizer_steps": len(step_seconds),
            "train_seconds": seconds,
            "epoch_seconds": epoch_seconds,
            "train_rows": rows,
            "loader": args.loader,
            "epochs": spec["epochs"],
            "steps_per_epoch": steps_per_epoch,
            "world_size": world,
            "threads_per_worker": threads,
            "last_epoch_mean_loss": last_loss,
        }), flush=True)
    if ddp:
        # without a barrier, a gloo rank that tears down while its peer is still in the last
        # collective aborts ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
