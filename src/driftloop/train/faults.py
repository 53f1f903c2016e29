"""Test-mode hooks that make a rank fail on purpose, and the sample ledger.

They exist so that tests can prove what users rely on: a rank killed with SIGKILL at a chosen
step resumes to bitwise-equal weights; a stalled rank is named within the collective timeout;
a rank whose parameters drift is named by the consistency check; no sample is seen twice or
skipped within an epoch. They are off unless ``DRIFTLOOP_TEST_FAULTS`` holds JSON such as::

    {"kill": {"rank": 1, "step": 20}, "stall": {"rank": 1, "step": 4, "seconds": 30},
     "perturb": {"rank": 1, "step": 5}, "ledger": true}

Steps are optimiser steps since the start of the run. Faults fire only in the first attempt
(``TORCHELASTIC_RESTART_COUNT`` 0), so a restarted group runs clean.

Examples
--------
>>> f = Faults.from_environ({"DRIFTLOOP_TEST_FAULTS": '{"kill": {"rank": 1, "step": 3}}'}, rank=0)
>>> f.kill_at, f.ledger
(None, False)
>>> Faults.from_environ({}, rank=1).active
False
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ENV = "DRIFTLOOP_TEST_FAULTS"


@dataclass(frozen=True)
class Faults:
    """The faults this rank injects in this attempt."""

    kill_at: int | None = None
    stall_at: int | None = None
    stall_seconds: float = 0.0
    perturb_at: int | None = None
    ledger: bool = False

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.kill_at, self.stall_at, self.perturb_at))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], rank: int) -> Faults:
        raw = environ.get(ENV)
        if not raw:
            return cls()
        spec: dict[str, Any] = json.loads(raw)
        first_attempt = environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"

        def at(name: str) -> int | None:
            item = spec.get(name)
            if first_attempt and item and int(item["rank"]) == rank:
                return int(item["step"])
            return None

        return cls(
            kill_at=at("kill"),
            stall_at=at("stall"),
            stall_seconds=float(spec.get("stall", {}).get("seconds", 0.0)),
            perturb_at=at("perturb"),
            ledger=bool(spec.get("ledger", False)),
        )

    def after_step(self, step: int, model: torch.nn.Module) -> None:
        """Fire the faults due after optimiser step ``step``."""
        if step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == self.stall_at:
            time.sleep(self.stall_seconds)
        if step == self.perturb_at:
            with torch.no_grad():
                next(iter(model.parameters())).add_(1e-3)


class Ledger:
    """Append-only record of the sample ids each rank consumed (test mode only)."""

    def __init__(self, run_dir: Path, rank: int) -> None:
        self.path = run_dir / "ledger" / f"rank{rank}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_to(self, epoch: int, step: int) -> None:
        """Forget entries at or after (epoch, step): the resumed run redoes those."""
        if not self.path.exists():
            return
        keep = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if (json.loads(line)["epoch"], json.loads(line)["step"]) < (epoch, step)
        ]
        self.path.write_text("".join(f"{line}\n" for line in keep), encoding="utf-8")

    def record(self, epoch: int, step: int, ids: list[int]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"epoch": epoch, "step": step, "ids": ids}) + "\n")


__all__ = ["ENV", "Faults", "Ledger"]
