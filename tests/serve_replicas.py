"""Real ``driftloop serve`` processes for the replica tests: started on loopback ports with a
shared store (``DRIFTLOOP_STORE_URL``) and home (artifacts), stopped with SIGTERM (a graceful
uvicorn shutdown, which flushes the prediction log)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from pg_server import free_port


def table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small two-feature table with target ``label``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows).round(1),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    frame["label"] = np.where(frame["age"] + rng.normal(0, 3, rows) > 40, "yes", "no")
    return frame


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any ``DRIFTLOOP_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(settings)
    return env


def counter(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus counter on ``url``/metrics (0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{wanted}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@dataclass
class Replica:
    """One ``driftloop serve`` process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served_version(self, model: str) -> int | None:
        """The version ``/v2/health/ready`` says this replica serves."""
        return httpx.get(f"{self.url}/v2/health/ready", timeout=5.0).json()["models"].get(model)

    def wait_ready(self, timeout_s: float = 120.0) -> Replica:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"driftloop serve {self.name} exited with "
                                   f"{self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"driftloop serve {self.name} not ready in {timeout_s} s: "
                                   f"{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_replica(name: str, folder: Path, env: dict[str, str],
                  args: Sequence[str] = ()) -> Replica:
    """``python -m driftloop serve --port P ARGS`` with ``env`` (not yet ready)."""
    port = free_port()
    log = folder / f"serve-{name}.log"
    command = [sys.executable, "-m", "driftloop", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**env, "DRIFTLOOP_SERVE__INSTANCE": name},
                                   stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    return Replica(name, port, process, log)
