"""Checkpoints that resume a run exactly: model, optimiser, LR schedule, scaler, position, RNG.

Layout, one folder per checkpoint under ``RUN/checkpoints/`` (one node; "rank 0" below is the
node's local rank 0 when there are several, see the end)::

    step-00000120/
        model.safetensors        weights (rank 0; DDP replicas are identical)
        best.safetensors         best weights so far, when there are any (rank 0)
        optimizer.safetensors    optimiser tensors (rank 0)
        state.json               optimiser scalars, LR schedule, scaler, loop state (rank 0)
        rng-rank{R}.safetensors  torch CPU/CUDA RNG state of rank R, and of its dedicated
                                 generators (DP-SGD's sampler and noise) (every rank)
        rng-rank{R}.json         numpy and python RNG state, and rank R's own loop state
                                 (e.g. its partial epoch loss) (every rank)
        manifest.json            sha256 of every file above; written last (rank 0)

Every rank writes into ``step-….tmp``; after a barrier rank 0 hashes the files, writes the
manifest and renames the folder into place, so a checkpoint either exists complete or not at
all. Loading verifies the manifest's hashes and falls back to the previous checkpoint when the
newest is torn or corrupt. The newest ``keep`` (2) checkpoints are kept.

Several nodes: every node keeps its own checkpoint folder (:func:`node_folder`; node 0's is
``RUN/checkpoints/``, node N's ``RUN/checkpoints/node-N/``, so run folders on one shared file
system do not collide). On each node its local rank 0 creates the ``.tmp`` folder, writes the
model, optimiser and state files (replicas are identical) and seals the node's manifest over
the files of that node's ranks; ``best.safetensors`` stays with global rank 0. A node that dies
between the barriers can leave step S sealed on one node and not on another, so a resumed
group loads the newest step complete on *every* node (the ranks agree on it with
:func:`driftloop.train.collectives.newest_common_step`); keeping 2 guarantees one exists.

Nothing is pickled: tensors go to safetensors, everything else to JSON.

Examples
--------
>>> import torch, tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.AdamW(model.parameters())
>>> model(torch.ones(1, 2)).sum().backward(); opt.step()
>>> write_checkpoint(root, 7, 0, 1, model=model, optimizer=opt, loop={"epoch": 0, "step": 7})
>>> ckpt = latest_checkpoint(root)
>>> ckpt.step, ckpt.loop
(7, {'epoch': 0, 'step': 7})
>>> restored = torch.optim.AdamW(model.parameters())
>>> restored.load_state_dict(ckpt.optimizer_state())
>>> saved, live = restored.state_dict()["state"][0], opt.state_dict()["state"][0]
>>> torch.equal(saved["exp_avg"], live["exp_avg"])
True
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from driftloop.train.spec import file_sha256

PREFIX = "step-"
MANIFEST = "manifest.json"
KEEP = 2
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    """A complete, verified checkpoint on disk."""

    path: Path
    step: int
    loop: dict[str, Any]

    def model_state(self) -> dict[str, torch.Tensor]:
        return load_file(str(self.path / "model.safetensors"))

    def best_state(self) -> dict[str, torch.Tensor] | None:
        path = self.path / "best.safetensors"
        return load_file(str(path)) if path.exists() else None

    def optimizer_state(self) -> dict[str, Any]:
        """The optimiser's ``state_dict`` rebuilt from safetensors + JSON."""
        meta = self._state()["optimizer"]
        tensors = load_file(str(self.path / "optimizer.safetensors"))
        state: dict[int, dict[str, Any]] = {}
        for key, tensor in tensors.items():
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = tensor
        for pid, scalars in meta["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        return {"state": state, "param_groups": meta["param_groups"]}

    def scheduler_state(self) -> dict[str, Any] | None:
        return self._state().get("scheduler")

    def scaler_state(self) -> dict[str, Any] | None:
        return self._state().get("scaler")

    def restore_rng(self, rank: int) -> bool:
        """Restore this rank's RNG states; False when the checkpoint has none for ``rank``
        (it was written with a different world size)."""
        tensors_path = self.path / f"rng-rank{rank}.safetensors"
        if not tensors_path.exists():
            return False
        tensors = load_file(str(tensors_path))
        torch.set_rng_state(tensors["torch"])
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda/")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        other = json.loads((self.path / f"rng-rank{rank}.json").read_text(encoding="utf-8"))
        np.random.set_state(tuple(other["numpy"]))  # type: ignore[arg-type]
        version, internal, gauss = other["python"]
        random.setstate((version, tuple(internal), gauss))
        return True

    def restore_generators(self, rank: int, generators: dict[str, torch.Generator]) -> bool:
        """Set each of ``generators`` to the state ``rank`` saved under its name; False when
        the checkpoint has none for ``rank`` or lacks one of them."""
        path = self.path / f"rng-rank{rank}.safetensors"
        if not path.exists():
            return False
        tensors = load_file(str(path))
        if any(f"generator/{name}" not in tensors for name in generators):
            return False
        for name, generator in generators.items():
            generator.set_state(tensors[f"generator/{name}"])
        return True

    def rank_state(self, rank: int) -> dict[str, Any] | None:
        """The per-rank state ``rank`` saved (None when the checkpoint has none for it)."""
        path = self.path / f"rng-rank{rank}.json"
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8")).get("rank_state")

    def _state(self) -> dict[str, Any]:
        return json.loads((self.path / "state.json").read_text(encoding="utf-8"))


def write_checkpoint(
    root: Path,
    step: int,
    rank: int,
    world_size: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loop: dict[str, Any],
    scheduler: Any = None,
    scaler: Any = None,
    best: dict[str, torch.Tensor] | None = None,
    rank_state: dict[str, Any] | None = None,
    barrier: Callable[[], None] = lambda: None,
    keep: int = KEEP,
    local_rank: int | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> None:
    """Write checkpoint ``step`` into ``root``, this node's folder; every rank calls this
    (``barrier`` synchronises them all). ``local_rank`` (default: ``rank``, one node) 0 is the
    rank that writes and seals its node's folder. ``generators`` (this rank's own, by name) are
    saved with its RNG state; :meth:`Checkpoint.restore_generators` sets them back."""
    leader = (rank if local_rank is None else local_rank) == 0
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f"{PREFIX}{step:08d}.tmp"
    if leader:
        shutil.rmtree(tmp, ignore_errors=True)  # left by an attempt that died mid-write
        tmp.mkdir(parents=True)
    barrier()
    _write_rng(tmp, rank, rank_state, generators or {})
    if leader:
        save_file(_cpu(model.state_dict()), str(tmp / "model.safetensors"))
        if best is not None:
            save_file(_cpu(best), str(tmp / "best.safetensors"))
        tensors, meta = _split_optimizer(optimizer.state_dict())
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {
            "optimizer": meta,
            "scheduler": _jsonable(scheduler.state_dict()) if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
            "loop": loop,
            "step": step,
            "world_size": world_size,
        }
        (tmp / "state.json").write_text(json.dumps(state, allow_nan=False), encoding="utf-8")
    barrier()
    if leader:
        _seal(tmp, final)
        _prune(root, keep)
    barrier()


def node_folder(run_dir: Path, node_rank: int) -> Path:
    """The checkpoint folder of node ``node_rank`` in ``run_dir``.

    Examples
    --------
    >>> from pathlib import Path
    >>> node_folder(Path("RUN"), 0).as_posix(), node_folder(Path("RUN"), 1).as_posix()
    ('RUN/checkpoints', 'RUN/checkpoints/node-1')
    """
    root = run_dir / CHECKPOINT_DIR
    return root if node_rank == 0 else root / f"node-{node_rank}"


def complete_checkpoints(root: Path) -> list[Checkpoint]:
    """Every checkpoint in ``root`` whose files match their manifest, newest first."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob(f"{PREFIX}*"), reverse=True):
        if path.suffix == ".tmp" or not path.is_dir():
            continue
        checkpoint = _verified(path)
        if checkpoint is not None:
            found.append(checkpoint)
    return found


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest complete checkpoint whose files match their manifest, or None."""
    found = complete_checkpoints(root)
    return found[0] if found else None


def _verified(path: Path) -> Checkpoint | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        for name, digest in manifest["files"].items():
            if file_sha256(path / name) != digest:
                return None
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return None
    return Checkpoint(path=path, step=int(state["step"]), loop=state["loop"])


def _seal(tmp: Path, final: Path) -> None:
    files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    manifest = tmp / MANIFEST
    with open(manifest, "w", encoding="utf-8") as fh:
        json.dump({"files": files}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    for name in files:
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():  # same step written by an earlier attempt: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _prune(root: Path, keep: int) -> None:
    complete = sorted(p for p in root.glob(f"{PREFIX}*") if p.suffix != ".tmp")
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _write_rng(
    folder: Path, rank: int, rank_state: dict[str, Any] | None,
    generators: dict[str, torch.Generator],
) -> None:
    tensors = {"torch": torch.get_rng_state()}
    tensors.update({f"generator/{name}": g.get_state() for name, g in generators.items()})
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{i:03d}"] = state
    save_file(tensors, str(folder / f"rng-rank{rank}.safetensors"))
    np_state = np.random.get_state()
    other = {
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": list(random.getstate()),
        "rank_state": rank_state,
    }
    (folder / f"rng-rank{rank}.json").write_text(json.dumps(other), encoding="utf-8")


def _split_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state/{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"scalars": scalars, "param_groups": _jsonable(state_dict["param_groups"])}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else value.tolist()
    if callable(value):  # e.g. LambdaLR's lambdas: rebuilt from the spec, not stored
        return None
    return value


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


__all__ = [
    "CHECKPOINT_DIR",
    "Checkpoint",
    "complete_checkpoints",
    "latest_checkpoint",
    "node_folder",
    "write_checkpoint",
]
