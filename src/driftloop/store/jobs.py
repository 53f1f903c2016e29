"""The dashboard's background jobs in the store: one row per data check, training or loop
iteration started from the browser, with its progress, its result or its error.

A job's state is here, not in a server's memory, so a reloaded page and every replica show the
same job. At most one job per model is unfinished (``active``), kept by a partial unique index:
a second one is a :class:`ConflictError`.

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> job = store.create_job("check", "credit", {"upload": "ab" * 32}, actor="dashboard")
>>> job.status, job.active
('queued', True)
>>> store.create_job("train", "credit", {}, actor="dashboard")
Traceback (most recent call last):
...
driftloop.errors.ConflictError: credit already has a check job under way (job 1); wait for it or cancel it.
>>> store.update_job(job.id, status="running", progress={"share": 0.5}).progress
{'share': 0.5}
>>> done = store.update_job(job.id, status="succeeded", result={"findings": 0})
>>> done.active, store.latest_job("credit").id
(False, 1)
>>> store.close()
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.errors import ConflictError, NotFoundError
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import record_from
from driftloop.store.tables import JOB_KINDS, JOB_STATUSES, Job

OPEN_STATUSES = ("queued", "running", "cancelling")


@dataclass(frozen=True)
class JobRecord:
    """One background job as stored."""

    id: int
    kind: str
    model_name: str
    status: str
    active: bool
    params: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    actor: str
    pid: int | None
    created_at: datetime
    updated_at: datetime


class JobQueries(StoreCore):
    """The store's job methods (a :class:`~driftloop.store.Store` mixin)."""

    def create_job(self, kind: str, model_name: str, params: Mapping[str, Any], *,
                   actor: str) -> JobRecord:
        """A queued job; :class:`ConflictError` while the model has one unfinished."""
        if kind not in JOB_KINDS:
            raise ValueError(f"a job is one of {JOB_KINDS}, not {kind!r}")
        _require_text("model name", model_name, max_len=128)
        _require_text("actor", actor, max_len=128)

        def work(session: Session) -> JobRecord:
            current = session.scalars(select(Job).where(
                Job.model_name == model_name, Job.active.is_(True))).first()
            if current is not None:
                raise ConflictError(
                    f"{model_name} already has a {current.kind} job under way (job "
                    f"{current.id}); wait for it or cancel it.")
            now = utcnow()
            row = Job(kind=kind, model_name=model_name, status="queued", active=True,
                      params=dict(params), progress={}, result=None, error=None, actor=actor,
                      pid=None, created_at=now, updated_at=now)
            session.add(row)
            session.flush()  # a second request at once collides on the unique index here
            return record_from(JobRecord, row)

        return self.transact(work)

    def get_job(self, job_id: int) -> JobRecord:
        """One job by id (:class:`NotFoundError` when there is none)."""
        with self.session(write=False) as session:
            row = session.get(Job, job_id)
            if row is None:
                raise NotFoundError(f"there is no job {job_id}.")
            return record_from(JobRecord, row)

    def latest_job(self, model_name: str) -> JobRecord | None:
        """The newest job of ``model_name`` (None: none yet)."""
        query = select(Job).where(Job.model_name == model_name).order_by(Job.id.desc()).limit(1)
        with self.session(write=False) as session:
            row = session.scalars(query).first()
            return None if row is None else record_from(JobRecord, row)

    def list_jobs(self, *, limit: int = 20) -> list[JobRecord]:
        """The newest jobs, newest first."""
        query = select(Job).order_by(Job.id.desc()).limit(limit)
        with self.session(write=False) as session:
            return [record_from(JobRecord, row) for row in session.scalars(query)]

    def update_job(self, job_id: int, *, status: str | None = None,
                   progress: Mapping[str, Any] | None = None,
                   result: Mapping[str, Any] | None = None, error: str | None = None,
                   pid: int | None = None) -> JobRecord:
        """Change a job; a finished job (succeeded, failed, cancelled) is no longer active and
        its status no longer changes (a late progress write after a cancel is dropped)."""
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"a job's status is one of {JOB_STATUSES}, not {status!r}")

        def work(session: Session) -> JobRecord:
            row = session.get(Job, job_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"there is no job {job_id}.")
            if row.active:
                if status is not None and not (row.status == "cancelling"
                                               and status == "running"):
                    row.status = status
                    row.active = status in OPEN_STATUSES
                if progress is not None:
                    row.progress = dict(progress)
                if result is not None:
                    row.result = dict(result)
                if error is not None:
                    row.error = error
                if pid is not None:
                    row.pid = pid
                row.updated_at = utcnow()
            return record_from(JobRecord, row)

        return self.transact(work)


__all__ = ["OPEN_STATUSES", "JobQueries", "JobRecord"]
