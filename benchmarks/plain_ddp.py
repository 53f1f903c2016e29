"""The baseline: a plain, hand-written DDP training loop, as a user would write it (same recipe:
AdamW, linear LR scaling with warmup).

Started by bench_train.py under torchrun with the same arrays, model, optimiser, batch size,
epochs and threads per rank as the driftloop run it is compared with. Two data paths:

* ``--loader slicing``: tensors in memory, a seeded permutation per epoch, one index per batch
  (the fastest loop we know how to write by hand);
* ``--loader dataloader``: ``TensorDataset`` + ``DistributedSampler`` + ``DataLoader``, the
  loop most tutorials show.

Only the training steps are timed (as in driftloop's own samples/s): no validation, no
start-up. Prints one JSON line from rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from driftloop.train.models import build_model
from driftloop.train.scaling import scaled_lr, warmup_factor, warmup_steps_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--loader", choices=["slicing", "dataloader"], default="slicing")
    args = parser.parse_args()
    spec = json.loads((args.run_dir / "spec.json").read_text())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(spec["threads_per_worker"])
    dist.init_process_group("gloo")
    data = args.run_dir / "data"
    x = torch.from_numpy(np.load(data / "train_x.npy"))
    xc = torch.from_numpy(np.load(data / "train_xcat.npy"))
    y = torch.from_numpy(np.load(data / "train_y.npy"))
    torch.manual_seed(spec["seed"])
    model = DistributedDataParallel(
        build_model(spec["model"], spec["model_inputs"], spec["n_outputs"])
    )
    batch = spec["batch_size"]
    lr = scaled_lr(spec["lr"], batch * world, spec["reference_batch"])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=spec["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss()
    steps_per_epoch = -(-(-(-len(y) // world)) // batch)
    warmup = warmup_steps_for(spec["warmup_epochs"], steps_per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_factor(s, warmup))

    if args.loader == "dataloader":
        sampler = DistributedSampler(TensorDataset(x, xc, y), world, rank, seed=spec["seed"])
        loader = DataLoader(TensorDataset(x, xc, y), batch_size=batch, sampler=sampler)

    seconds, samples = 0.0, 0
    for epoch in range(spec["epochs"]):
        t0 = time.perf_counter()
        if args.loader == "dataloader":
            sampler.set_epoch(epoch)
            batches = iter(loader)
        else:
            g = torch.Generator().manual_seed(spec["seed"] * 1000 + epoch)
            shard = torch.randperm(len(y), generator=g)[rank::world]
            batches = (
                (x[i], xc[i], y[i]) for i in shard.split(batch)
            )
        total = torch.zeros(())
        for xb, cb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb, cb), yb)
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.detach()
        seconds += time.perf_counter() - t0
        samples += len(y)
    if rank == 0:
        print(json.dumps({"samples_per_s": samples / seconds, "train_seconds": seconds}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
