"""The worker process of one workbench job: ``python -m driftloop.ui.job_worker JOB SETTINGS``.

:mod:`driftloop.ui.jobs` starts it in its own session. It runs the job's work with the public
functions the CLI uses (:func:`driftloop.check_data`, :func:`driftloop.train`), writes progress
to the job's row twice a second, and ends the row with the result, or with the error as the CLI
says it (a :class:`DriftloopError`'s message; anything else is named by its type, never a
traceback). When the row says ``cancelling`` it marks the job cancelled and stops its process
group (the training ranks with it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.errors import DriftloopError
from driftloop.registry import Registry
from driftloop.train.spec import OUTPUTS_DIR, PROGRESS_FILE
from driftloop.ui.explain import baselines, split_probabilities
from driftloop.ui.workbench import read_upload

POLL_S = 0.5
_EPOCH = re.compile(r"epoch (\d+) loss ([0-9.]+) val ([0-9.]+)")


def main(argv: list[str] | None = None) -> int:
    job_id, config = (argv or sys.argv[1:])[:2]
    settings = Settings.load(overrides=json.loads(Path(config).read_text(encoding="utf-8")),
                             environ={}, cwd=Path.cwd())
    registry = Registry.open(settings)
    job = registry.store.update_job(int(job_id), status="running", pid=os.getpid())
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = WORK[job.kind](settings, registry, job)
        except DriftloopError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - said in one line, as the CLI would
            outcome["error"] = f"the job failed: {type(exc).__name__}: {exc}"

    thread = threading.Thread(target=work, daemon=True)
    started, seq0 = time.monotonic(), _last_seq(registry)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_S)
        current = registry.store.get_job(job.id)
        if current.status == "cancelling":
            registry.store.update_job(job.id, status="cancelled",
                                      error="cancelled from the dashboard")
            registry.store.close()
            os.killpg(os.getpgid(0), signal.SIGTERM)
        if job.kind == "train" and thread.is_alive():
            progress = _train_progress(registry, job, seq0, time.monotonic() - started)
            if progress:
                registry.store.update_job(job.id, progress=progress)
    if "error" in outcome:
        registry.store.update_job(job.id, status="failed", error=outcome["error"])
        return 1
    registry.store.update_job(job.id, status="succeeded", result=outcome["result"])
    return 0


def run_check(settings: Settings, registry: Registry, job: Any) -> dict[str, Any]:
    """The data check of the upload against the chosen target, with the excluded columns."""
    import driftloop as dl

    folder = Path(settings.home) / "uploads"
    frame = read_upload(folder, job.params["upload"])
    report = dl.check_data(frame, target=job.params["target"], settings=settings)
    return report.to_json()


def run_train(settings: Settings, registry: Registry, job: Any) -> dict[str, Any]:
    """Train on the upload without the excluded columns (kept as its own content-addressed
    CSV, the run's source), registering the model under the job's name."""
    import driftloop as dl

    params = job.params
    folder = Path(settings.home) / "uploads"
    frame = read_upload(folder, params["upload"]).drop(columns=list(params.get("exclude", [])))
    data = io.BytesIO()
    frame.to_csv(data, index=False)
    sha = hashlib.sha256(data.getvalue()).hexdigest()
    path = folder / f"{sha}.csv"
    if not path.exists():
        partial = folder / f".partial-{sha}"
        partial.write_bytes(data.getvalue())
        os.replace(partial, path)
    result = dl.train(str(path), target=params["target"], name=job.model_name,
                      epochs=settings.ui.train_epochs, workers=settings.ui.train_workers,
                      allow_pii=list(params.get("allow_pii", [])), settings=settings,
                      progress=True)
    done = {"version": result.version, "metrics": result.metrics, "run_id": result.run_id,
            "epochs_run": result.epochs_run, "baselines": []}
    if params.get("task") in ("binary", "multiclass"):
        probs = split_probabilities(registry, job.model_name, result.version, result.run_dir)
        done["baselines"] = baselines(result.run_dir, probs, seed=settings.train.seed)
    return done


def run_loop(settings: Settings, registry: Registry, job: Any) -> dict[str, Any]:
    """One loop iteration (``driftloop loop run-once``), with its story step by step."""
    from driftloop.loop.runner import run_once

    story: list[str] = []
    outcome = run_once(job.model_name, settings=settings, registry=registry,
                       say=lambda step, message: story.append(f"{step}: {message}"))
    return {**outcome.to_json(), "story": story}


WORK = {"check": run_check, "train": run_train, "loop": run_loop}


def _last_seq(registry: Registry) -> int:
    last = registry.audit.entries(limit=1)
    return last[0].seq if last else 0


def _train_progress(registry: Registry, job: Any, seq0: int, elapsed: float
                    ) -> dict[str, Any] | None:
    """Epoch, loss, share done and time left, from the run's progress file (rank 0's)."""
    started = [e for e in registry.audit.entries(action="run_started", limit=20)
               if e.seq > seq0 and e.details.get("model_name") == job.model_name]
    if not started:
        return {"stage": "preparing the data", "share": 0.0, "elapsed_s": elapsed}
    run = registry.store.get_run(started[-1].subject.removeprefix("run:"))
    try:
        state = json.loads((Path(run.run_dir) / OUTPUTS_DIR / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return {"stage": "starting the training", "share": 0.0, "elapsed_s": elapsed,
                "run_id": run.id}
    share = state["steps"] / max(state["total"], 1)
    found = _EPOCH.search(state.get("text", ""))
    left = elapsed * (1 - share) / share if share > 0 else None
    return {"stage": "training", "share": round(share, 4), "steps": state["steps"],
            "total": state["total"], "epoch": int(found.group(1)) if found else 0,
            "epochs": job.params.get("epochs"), "loss": float(found.group(2)) if found else None,
            "val_loss": float(found.group(3)) if found else None, "elapsed_s": elapsed,
            "left_s": left, "run_id": run.id}


if __name__ == "__main__":
    sys.exit(main())
