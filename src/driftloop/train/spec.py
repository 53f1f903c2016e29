"""The training spec: what the launcher writes into the run folder and every rank reads.

The run folder is the only thing launcher and workers share (workers never touch the
database)::

    RUN/spec.json                    this record
    RUN/data/{train,val}_{x,xcat,y}.npy   arrays the ranks memory-map (xcat only for tables)
    RUN/data/{train,val,test}_teacher.npy  a distilled run's teacher outputs (same rows)
    RUN/outputs/weights.safetensors  best weights (rank 0)
    RUN/outputs/history.json         one entry per epoch (rank 0, rewritten each epoch)
    RUN/outputs/result.json          throughput, best epoch, … (rank 0, at the end)
    RUN/outputs/progress.json        steps done, samples/s, last loss (rank 0, twice a second)
    RUN/outputs/error-rank{R}.json   why rank R failed, when it did
    RUN/checkpoints/step-NNNNNNNN/   resumable checkpoints (see driftloop.train.checkpoint)
    RUN/logs/                        the workers' stdout and stderr

Examples
--------
>>> spec = TrainSpec(run_id="r1", task="binary", input_kind="table", model="mlp",
...                  model_inputs={"n_numeric": 2, "cardinalities": []}, n_outputs=2)
>>> TrainSpec.from_json(spec.to_json()) == spec
True
>>> spec.array_files("val")
['val_x.npy', 'val_xcat.npy', 'val_y.npy']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_FILE = "spec.json"
DATA_DIR = "data"
OUTPUTS_DIR = "outputs"
WEIGHTS_FILE = "weights.safetensors"
HISTORY_FILE = "history.json"
RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.json"
LOG_DIR = "logs"


@dataclass(frozen=True)
class TrainSpec:
    """Everything a rank needs to train; plain JSON on disk."""

    run_id: str
    task: str
    input_kind: str
    model: str
    model_inputs: dict[str, Any]
    n_outputs: int
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    reference_batch: int = 64
    warmup_epochs: float = 1.0
    weight_decay: float = 0.0
    patience: int = 5
    seed: int = 0
    threads_per_worker: int = 1
    progress: bool = True
    device: str = "auto"
    accumulate: int = 1
    precision: str = "fp32"
    checkpoint_every: int = 0
    consistency_every: int = 0
    collective_timeout_s: float = 60.0
    dp: dict[str, Any] | None = None  # DP-SGD plan (driftloop.train.privacy.plan_dp); None: off
    # knowledge distillation (driftloop.train.distill): teacher, temperature, alpha; None: off
    distill: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def array_files(self, split: str) -> list[str]:
        """File names of the input arrays then the target of ``split``."""
        inputs = ["x", "xcat"] if self.input_kind == "table" else ["x"]
        return [f"{split}_{name}.npy" for name in [*inputs, "y"]]

    def teacher_file(self, split: str) -> str:
        """File name of the teacher's outputs on ``split`` (a distilled run only): float32
        logits (classification, rows × classes) or standardised outputs (regression, rows),
        row ``i`` for row ``i`` of the split's other arrays.

        >>> TrainSpec("r", "binary", "table", "mlp", {}, 2).teacher_file("train")
        'train_teacher.npy'
        """
        return f"{split}_teacher.npy"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainSpec:
        return cls(**data)

    def write(self, run_dir: Path) -> None:
        write_json_atomic(run_dir / SPEC_FILE, self.to_json())

    @classmethod
    def read(cls, run_dir: Path) -> TrainSpec:
        return cls.from_json(json.loads((run_dir / SPEC_FILE).read_text(encoding="utf-8")))


def write_json_atomic(path: Path, data: Any, durable: bool = True) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one.

    ``durable`` also fsyncs the file before the rename, so it survives a crash of the machine.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, allow_nan=False)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path``, read in 1 MiB chunks.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"hello")
    >>> file_sha256(Path(f.name))[:12]
    '2cf24dba5fb0'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["TrainSpec", "file_sha256", "write_json_atomic"]
