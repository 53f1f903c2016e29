"""The workbench's background jobs: a row in the store, done by a worker process.

:func:`start_job` records a queued job (one unfinished job per model; a second is a 409) and
starts ``python -m driftloop.ui.job_worker JOB SETTINGS`` in its own session, so the request
returns at once and a slow training never blocks the server. The worker keeps the row up to date
(progress, then the result or the error as the CLI would say it); the page polls the row, so a
reload, or another replica reading the same store, shows the same job. :func:`cancel_job` marks
the row; the worker sees it and stops its process group.

The worker reads the server's settings from a JSON file beside the job (mode 0600: it may hold
the store URL), since it must use the same store and home as the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.errors import ConflictError
from driftloop.http import Refused
from driftloop.registry import Registry
from driftloop.store.jobs import JobRecord


def jobs_folder(settings: Settings) -> Path:
    """Where the jobs' settings files and logs are kept."""
    return Path(settings.home) / "jobs"


def start_job(registry: Registry, settings: Settings, kind: str, model: str,
              params: dict[str, Any], actor: str) -> JobRecord:
    """Record and start a job; :class:`Refused` 409 while ``model`` has one unfinished."""
    try:
        job = registry.store.create_job(kind, model, params, actor=actor)
    except ConflictError as exc:
        raise Refused(409, "job_running", str(exc)) from None
    registry.audit.append(actor, f"job_{kind}", f"model:{model}",
                          {"job": job.id, **_audited(params)})
    folder = jobs_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{job.id}.settings.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(settings.model_dump(mode="json"), out)
    with open(folder / f"{job.id}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftloop.ui.job_worker", str(job.id), str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # reaped by a thread of the server, so a finished worker leaves no zombie behind
    threading.Thread(target=proc.wait, name=f"job-{job.id}", daemon=True).start()
    return registry.store.update_job(job.id, pid=proc.pid)


def cancel_job(registry: Registry, job_id: int, actor: str) -> JobRecord:
    """Ask the worker of an unfinished job to stop (409 when it already ended)."""
    job = registry.store.get_job(job_id)
    if not job.active:
        raise Refused(409, "job_ended", f"job {job_id} already ended ({job.status}).")
    registry.audit.append(actor, "job_cancel", f"model:{job.model_name}", {"job": job_id})
    return registry.store.update_job(job_id, status="cancelling")


def job_view(job: JobRecord | None) -> dict[str, Any] | None:
    """A job as the page reads it."""
    if job is None:
        return None
    body = asdict(job)
    body["created_at"] = job.created_at.isoformat()
    body["updated_at"] = job.updated_at.isoformat()
    body.pop("pid")
    return body


def _audited(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k in ("upload", "target", "exclude")}


__all__ = ["cancel_job", "job_view", "jobs_folder", "start_job"]
