"""`driftloop loop watch`: a failing iteration is reported and the next one runs; SIGTERM stops
it cleanly between iterations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from driftloop.registry import ModelBundle, Registry


def _model_without_alias(settings) -> None:
    bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
                         n_outputs=2, classes=["no", "yes"], schema=None, preprocessor=None,
                         target_encoder={"task": "binary"})
    Registry.open(settings).register("churn", run_id=None, bundle=bundle, weights=b"w",
                                     metrics={}, actor="test", reason="test")


def test_watch_survives_failing_iterations_and_stops_on_sigterm(dl_settings) -> None:
    _model_without_alias(dl_settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = dl_settings.home
    env["DRIFTLOOP_STORE_URL"] = dl_settings.store_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "loop", "watch", "--model", "churn",
         "--interval", "1s"], cwd=Path(dl_settings.home), env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline and seen.count("failed") < 2:
        line = proc.stdout.readline()
        seen += line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    seen += out
    assert proc.returncode == 0, err
    assert seen.count("iteration") >= 2 and "has no 'production' alias" in " ".join(seen.split())
    assert "stopped after" in seen


def test_run_once_on_an_unknown_model_exits_2(dl_settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = dl_settings.home
    env["DRIFTLOOP_STORE_URL"] = dl_settings.store_url
    done = subprocess.run([sys.executable, "-m", "driftloop", "loop", "run-once", "--model",
                           "nobody"], cwd=str(Path(dl_settings.home).parent), env=env,
                          capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "nobody" in done.stderr and "Traceback" not in done.stderr
