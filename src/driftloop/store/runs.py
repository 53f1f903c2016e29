"""Training runs: what was asked, where the files are, how each epoch and the run went.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     run = store.create_run("churn", {"lr": 0.01}, 2, "runs/1", {"torch": "2.4"}, None)
...     store.add_run_metrics(run.id, 1, {"loss": 0.5})
...     store.finish_run(run.id, "succeeded", duration_s=3.0).status
'succeeded'
"""

from __future__ import annotations

import copy
import hashlib
import math
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.errors import NotFoundError, UsageError
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import RUN_STATUSES, RunRecord, record_from
from driftloop.store.tables import Run, RunMetric


class RunQueries(StoreCore):
    """Runs and their per-epoch metrics (a :class:`Store` mixin)."""

    def create_run(
        self,
        model_name: str,
        params: Mapping[str, Any],
        world_size: int,
        run_dir: str,
        package_versions: Mapping[str, Any],
        git_commit: str | None,
        run_id: str | None = None,
    ) -> RunRecord:
        """Record a new run with status ``"running"`` and ``run_id`` (default: a fresh uuid4 hex).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("churn", {"epochs": 3}, 1, "runs/x", {}, None)
        ...     len(run.id), run.status, run.finished_at
        (32, 'running', None)
        """
        _require_text("model_name", model_name, max_len=128)
        if world_size < 1:
            raise UsageError(f"world_size must be 1 or more, got {world_size}.")
        run_id = run_id or uuid.uuid4().hex

        def work(session: Session) -> RunRecord:
            row = Run(
                id=run_id,
                model_name=model_name,
                status="running",
                params=copy.deepcopy(dict(params)),
                world_size=world_size,
                package_versions=copy.deepcopy(dict(package_versions)),
                git_commit=git_commit,
                run_dir=str(run_dir),
            )
            session.add(row)
            session.flush()
            self._emit(session, "run_started", f"run:{run_id}", {
                "model_name": model_name, "world_size": world_size, "git_commit": git_commit,
            })
            return record_from(RunRecord, row)

        return self.transact(work)

    def add_run_metrics(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record the metrics of one epoch (a metric recorded again is overwritten).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 1, "runs/x", {}, None)
        ...     store.add_run_metrics(run.id, 0, {"loss": 0.9, "val_loss": 1.0})
        ...     store.add_run_metrics(run.id, 1, {"loss": 0.5})
        ...     store.run_metrics(run.id)
        [{'epoch': 0, 'loss': 0.9, 'val_loss': 1.0}, {'epoch': 1, 'loss': 0.5}]
        """
        values = {name: _finite_metric(name, value, epoch) for name, value in metrics.items()}
        with self.session() as session:
            _get_run(session, run_id)
            for name, value in values.items():
                session.merge(RunMetric(run_id=run_id, epoch=epoch, name=name, value=value))

    def finish_run(
        self,
        run_id: str,
        status: str,
        duration_s: float | None = None,
        samples_per_s: float | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Mark a running run ``"succeeded"`` or ``"failed"`` and record how it went.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 1, "runs/x", {}, None)
        ...     done = store.finish_run(run.id, "failed", error="rank 1 crashed")
        ...     done.status, done.error, done.finished_at is not None
        ('failed', 'rank 1 crashed', True)
        """
        if status not in RUN_STATUSES[1:]:
            raise UsageError(f"a run finishes as 'succeeded' or 'failed', not '{status}'.")

        def work(session: Session) -> RunRecord:
            row = _get_run(session, run_id)
            if row.status != "running":
                raise UsageError(
                    f"run '{run_id}' already finished as '{row.status}'; start a new run."
                )
            row.status = status
            row.finished_at = utcnow()
            row.duration_s = duration_s
            row.samples_per_s = samples_per_s
            row.error = error
            session.flush()
            action = "run_finished" if status == "succeeded" else "run_failed"
            # the error text may quote data (a cell value): the audit keeps only its hash, so
            # erasing the run's text later leaves the chain intact and still checkable
            self._emit(session, action, f"run:{run_id}", {
                "model_name": row.model_name, "duration_s": duration_s,
                "samples_per_s": samples_per_s,
                "error_sha256": None if error is None else hashlib.sha256(
                    error.encode("utf-8")).hexdigest(),
            })
            return record_from(RunRecord, row)

        return self.transact(work)

    def resume_run(self, run_id: str, world_size: int) -> RunRecord:
        """Mark a failed (stopped) run ``"running"`` again, for ``driftloop train --resume``.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 2, "runs/x", {}, None)
        ...     _ = store.finish_run(run.id, "failed", error="interrupted")
        ...     again = store.resume_run(run.id, world_size=1)
        ...     again.status, again.error, again.world_size
        ('running', None, 1)
        """
        def work(session: Session) -> RunRecord:
            row = _get_run(session, run_id)
            if row.status == "succeeded":
                raise UsageError(
                    f"run '{run_id}' already succeeded; there is nothing to resume."
                )
            row.status = "running"
            row.finished_at = None
            row.error = None
            row.world_size = world_size
            session.flush()
            self._emit(session, "run_resumed", f"run:{run_id}",
                       {"model_name": row.model_name, "world_size": world_size})
            return record_from(RunRecord, row)

        return self.transact(work)

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run ``run_id``.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.get_run("nope")
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: no run 'nope'. No runs are recorded yet.
        """
        with self.session(write=False) as session:
            return record_from(RunRecord, _get_run(session, run_id))

    def run_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """Return one dict per epoch, ``{"epoch": n, name: value, ...}``, by epoch.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.run_metrics(store.create_run("m", {}, 1, "runs/x", {}, None).id)
        []
        """
        with self.session(write=False) as session:
            _get_run(session, run_id)
            rows = session.scalars(
                select(RunMetric)
                .where(RunMetric.run_id == run_id)
                .order_by(RunMetric.epoch, RunMetric.name)
            )
            epochs: dict[int, dict[str, Any]] = {}
            for row in rows:
                epochs.setdefault(row.epoch, {"epoch": row.epoch})[row.name] = row.value
            return list(epochs.values())


def _finite_metric(name: str, value: float, epoch: int) -> float:
    number = float(value)
    if math.isnan(number):
        raise UsageError(
            f"metric '{name}' at epoch {epoch} is NaN; record only numbers (stop the run and "
            "record the error with finish_run instead)."
        )
    return number


def _get_run(session: Session, run_id: str) -> Run:
    row = session.get(Run, run_id)
    if row is not None:
        return row
    recent = session.scalars(select(Run.id).order_by(Run.started_at.desc()).limit(5)).all()
    hint = f"Recent runs: {', '.join(recent)}." if recent else "No runs are recorded yet."
    raise NotFoundError(f"no run '{run_id}'. {hint}")


__all__ = ["RunQueries"]
