"""The store: runs, datasets, model versions and the audit table behind one small API.

Every method is one transaction and returns frozen records from :mod:`driftloop.store.records`.

Examples
--------
>>> store = Store.open("sqlite://")
>>> ds = store.upsert_dataset("ab" * 32, "data.csv", rows=100, columns=None)
>>> run = store.create_run("churn", {"lr": 0.01}, 2, "runs/1", {"torch": "2.4"}, None)
>>> store.link_run_dataset(run.id, "train", ds.fingerprint)
>>> store.add_run_metrics(run.id, 1, {"loss": 0.5})
>>> store.finish_run(run.id, "succeeded", duration_s=3.0).status
'succeeded'
>>> v = store.add_version("churn", run.id, "binary", "tabular", "a" * 64, "b" * 64,
...                       {"auc": 0.91}, 1234)
>>> (v.model_name, v.version), store.get_version("churn").version
(('churn', 1), 1)
>>> store.close()
"""

from __future__ import annotations

import copy
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from driftloop.errors import ConfigError, DriftloopError, NotFoundError, UsageError
from driftloop.store import migrate
from driftloop.store.engine import READ_ONLY, make_engine, safe_url
from driftloop.store.records import (
    DATASET_ROLES,
    REPORT_KINDS,
    RUN_STATUSES,
    DatasetRecord,
    ReportRecord,
    RunRecord,
    VersionRecord,
    record_from,
)
from driftloop.store.tables import (
    Dataset,
    ModelVersion,
    Report,
    Run,
    RunDataset,
    RunMetric,
    utcnow,
)

T = TypeVar("T")
AuditHook = Callable[[Session, VersionRecord], object]
"""Called inside :meth:`Store.add_version`'s transaction, e.g. to append an audit entry."""

_ATTEMPTS = 8
_LIST_AT_MOST = 20


class Store:
    """Database of runs, datasets, model versions and audit entries at any SQLAlchemy URL.

    Parameters
    ----------
    url
        ``sqlite:///path/to/driftloop.db`` (the folder is created), ``sqlite://`` (in memory),
        ``postgresql+psycopg://user@host/db``, ...

    Notes
    -----
    ``Store(url)`` connects without migrating; :meth:`Store.open` also brings the schema to
    head. Close with :meth:`close` or use the store as a context manager.

    Examples
    --------
    >>> with Store.open("sqlite://") as store:
    ...     store.schema_revision() == Store.head_revision()
    True
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        self._reader = self._engine.execution_options(**{READ_ONLY: True})

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` and migrate it to head (idempotent, safe across processes).

        Examples
        --------
        >>> store = Store.open("sqlite://")
        >>> store.model_names()
        []
        >>> store.close()
        """
        store = cls(url)
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and tests; prefer the methods)."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def upgrade(self) -> None:
        """Migrate the schema to head; see :func:`driftloop.store.migrate.upgrade`."""
        try:
            migrate.upgrade(self._engine)
        except sa_exc.OperationalError as exc:
            raise ConfigError(
                f"cannot open the store {safe_url(self.url)}: {exc.orig}. Check the store URL "
                "(DRIFTLOOP_STORE_URL) and that the database is reachable and writable."
            ) from None

    def schema_revision(self) -> str | None:
        """Return the schema revision of the database, or None if it was never migrated.

        Examples
        --------
        >>> store = Store("sqlite://")
        >>> store.schema_revision() is None
        True
        >>> store.upgrade()
        >>> store.schema_revision()
        '0002'
        >>> store.close()
        """
        return migrate.current_revision(self._engine)

    @staticmethod
    def head_revision() -> str:
        """Return the newest schema revision this driftloop knows."""
        return migrate.head_revision()

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """Open a session inside a transaction: commit on success, roll back on error.

        Parameters
        ----------
        write
            False for a read-only session, which never waits for another process's write.

        Examples
        --------
        >>> from sqlalchemy import select, func
        >>> from driftloop.store.tables import Run
        >>> with Store.open("sqlite://") as store, store.session(write=False) as s:
        ...     s.scalar(select(func.count()).select_from(Run))
        0
        """
        bind = self._engine if write else self._reader
        with Session(bind, expire_on_commit=False) as session, session.begin():
            yield session

    def transact(self, work: Callable[[Session], T], *, attempts: int = _ATTEMPTS) -> T:
        """Run ``work(session)`` in one transaction, retrying it when a unique key collides.

        Two processes that append to the same sequence (version numbers, the audit chain)
        can collide on a unique key; the loser's transaction is rolled back and ``work`` runs
        again on the new state, so ``work`` must be safe to repeat.

        Examples
        --------
        >>> from driftloop.store.tables import Dataset
        >>> with Store.open("sqlite://") as store:
        ...     store.transact(lambda s: s.get(Dataset, 1)) is None
        True
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as session:
                    return work(session)
            except sa_exc.IntegrityError as exc:
                if not _is_unique_violation(exc):
                    raise
                if attempt == attempts:
                    raise DriftloopError(
                        f"another process kept writing the same records; gave up after "
                        f"{attempts} attempts ({exc.orig}). Try again."
                    ) from exc
                time.sleep(random.uniform(0.0, 0.01 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- datasets ----------------------------------------------------------------------------

    def upsert_dataset(
        self,
        fingerprint: str,
        source_uri: str,
        rows: int,
        columns: list[dict[str, Any]] | None,
    ) -> DatasetRecord:
        """Record a dataset by fingerprint; when it is already known, return it unchanged.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     a = store.upsert_dataset("f" * 64, "a.csv", 3, [{"name": "x", "kind": "numeric"}])
        ...     b = store.upsert_dataset("f" * 64, "copy-of-a.csv", 3, None)
        ...     a == b, b.source_uri
        (True, 'a.csv')
        """
        _require_text("fingerprint", fingerprint, max_len=64)
        if rows < 0:
            raise UsageError(f"dataset rows must be 0 or more, got {rows}.")

        def work(session: Session) -> DatasetRecord:
            row = _dataset_by_fingerprint(session, fingerprint)
            if row is None:
                row = Dataset(
                    fingerprint=fingerprint,
                    source_uri=source_uri,
                    rows=rows,
                    columns=copy.deepcopy(columns),
                )
                session.add(row)
                session.flush()
            return record_from(DatasetRecord, row)

        return self.transact(work)

    def get_dataset(self, fingerprint: str) -> DatasetRecord:
        """Return the dataset recorded under ``fingerprint``.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.get_dataset("0" * 64)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: no dataset with fingerprint '0000000000000000…'.
        """
        with self.session(write=False) as session:
            row = _dataset_by_fingerprint(session, fingerprint)
            if row is None:
                raise NotFoundError(f"no dataset with fingerprint '{fingerprint[:16]}…'.")
            return record_from(DatasetRecord, row)

    # -- reports -----------------------------------------------------------------------------

    def add_report(
        self,
        kind: str,
        dataset_fingerprint: str,
        artifact_sha256: str,
        summary: Mapping[str, Any],
        *,
        version_id: int | None = None,
        run_id: str | None = None,
    ) -> ReportRecord:
        """Link a stored report artifact to its dataset (recorded first) and model version.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     _ = store.upsert_dataset("d" * 64, "test.csv", 10, None)
        ...     r = store.add_report("data_check", "d" * 64, "a" * 64, {"errors": 0})
        ...     [x.id for x in store.list_reports(dataset_fingerprint="d" * 64)] == [r.id]
        True
        """
        if kind not in REPORT_KINDS:
            raise UsageError(f"report kind '{kind}' is not one of {', '.join(REPORT_KINDS)}.")
        _require_text("artifact_sha256", artifact_sha256, max_len=64)
        with self.session() as session:
            dataset = _dataset_by_fingerprint(session, dataset_fingerprint)
            if dataset is None:
                raise NotFoundError(
                    f"no dataset with fingerprint '{dataset_fingerprint}'. Record it with "
                    "upsert_dataset before linking a report to it."
                )
            if version_id is not None and session.get(ModelVersion, version_id) is None:
                raise NotFoundError(f"no model version with id {version_id}.")
            if run_id is not None:
                _get_run(session, run_id)
            row = Report(
                kind=kind, dataset_id=dataset.id, version_id=version_id, run_id=run_id,
                artifact_sha256=artifact_sha256, summary=copy.deepcopy(dict(summary)),
            )
            session.add(row)
            session.flush()
            return _report_record(row, dataset.fingerprint)

    def list_reports(
        self,
        *,
        kind: str | None = None,
        version_id: int | None = None,
        dataset_fingerprint: str | None = None,
    ) -> list[ReportRecord]:
        """Reports matching every filter given, oldest first.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.list_reports(kind="evaluation")
        []
        """
        with self.session(write=False) as session:
            query = (
                select(Report, Dataset.fingerprint)
                .join(Dataset, Dataset.id == Report.dataset_id)
                .order_by(Report.id)
            )
            if kind is not None:
                query = query.where(Report.kind == kind)
            if version_id is not None:
                query = query.where(Report.version_id == version_id)
            if dataset_fingerprint is not None:
                query = query.where(Dataset.fingerprint == dataset_fingerprint)
            return [_report_record(row, fp) for row, fp in session.execute(query)]

    # -- runs --------------------------------------------------------------------------------

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
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("churn", {"epochs": 3}, 1, "runs/x", {}, None)
        ...     len(run.id), run.status, run.finished_at
        (32, 'running', None)
        """
        _require_text("model_name", model_name, max_len=128)
        if world_size < 1:
            raise UsageError(f"world_size must be 1 or more, got {world_size}.")
        row = Run(
            id=run_id or uuid.uuid4().hex,
            model_name=model_name,
            status="running",
            params=copy.deepcopy(dict(params)),
            world_size=world_size,
            package_versions=copy.deepcopy(dict(package_versions)),
            git_commit=git_commit,
            run_dir=str(run_dir),
        )
        with self.session() as session:
            session.add(row)
            session.flush()
            return record_from(RunRecord, row)

    def link_run_dataset(self, run_id: str, role: str, fingerprint: str) -> None:
        """Say that run ``run_id`` used the dataset ``fingerprint`` as ``role``.

        Linking a role again replaces the dataset it points at.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 1, "runs/x", {}, None)
        ...     store.link_run_dataset(run.id, "holdout", "0" * 64)
        Traceback (most recent call last):
        ...
        driftloop.errors.UsageError: dataset role 'holdout' is not one of train, val, test, source.
        """
        if role not in DATASET_ROLES:
            raise UsageError(f"dataset role '{role}' is not one of {', '.join(DATASET_ROLES)}.")
        with self.session() as session:
            _get_run(session, run_id)
            dataset = _dataset_by_fingerprint(session, fingerprint)
            if dataset is None:
                raise NotFoundError(
                    f"no dataset with fingerprint '{fingerprint}'. Record it with "
                    "upsert_dataset before linking it to a run."
                )
            session.merge(RunDataset(run_id=run_id, role=role, dataset_id=dataset.id))

    def add_run_metrics(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record the metrics of one epoch (a metric recorded again is overwritten).

        Examples
        --------
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
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 1, "runs/x", {}, None)
        ...     done = store.finish_run(run.id, "failed", error="rank 1 crashed")
        ...     done.status, done.error, done.finished_at is not None
        ('failed', 'rank 1 crashed', True)
        """
        if status not in RUN_STATUSES[1:]:
            raise UsageError(f"a run finishes as 'succeeded' or 'failed', not '{status}'.")
        with self.session() as session:
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
            return record_from(RunRecord, row)

    def resume_run(self, run_id: str, world_size: int) -> RunRecord:
        """Mark a failed (stopped) run ``"running"`` again, for ``driftloop train --resume``.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 2, "runs/x", {}, None)
        ...     _ = store.finish_run(run.id, "failed", error="interrupted")
        ...     again = store.resume_run(run.id, world_size=1)
        ...     again.status, again.error, again.world_size
        ('running', None, 1)
        """
        with self.session() as session:
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
            return record_from(RunRecord, row)

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run ``run_id``.

        Examples
        --------
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

    def run_datasets(self, run_id: str) -> dict[str, DatasetRecord]:
        """Return the datasets a run used, by role.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     run = store.create_run("m", {}, 1, "runs/x", {}, None)
        ...     _ = store.upsert_dataset("c" * 64, "train.csv", 8, None)
        ...     store.link_run_dataset(run.id, "train", "c" * 64)
        ...     store.run_datasets(run.id)["train"].source_uri
        'train.csv'
        """
        with self.session(write=False) as session:
            _get_run(session, run_id)
            pairs = session.execute(
                select(RunDataset.role, Dataset)
                .join(Dataset, Dataset.id == RunDataset.dataset_id)
                .where(RunDataset.run_id == run_id)
                .order_by(RunDataset.role)
            )
            return {role: record_from(DatasetRecord, dataset) for role, dataset in pairs}

    # -- model versions ----------------------------------------------------------------------

    def add_version(
        self,
        model_name: str,
        run_id: str | None,
        task: str,
        input_kind: str,
        weights_sha256: str,
        bundle_sha256: str,
        metrics: Mapping[str, Any],
        size_bytes: int,
        parent_id: int | None = None,
        description: str | None = None,
        audit: AuditHook | None = None,
    ) -> VersionRecord:
        """Register the next version of ``model_name`` (1 for a new model).

        Two processes registering at once get consecutive versions: a collision on
        (model_name, version) rolls back the loser, which retries with the next number.

        Parameters
        ----------
        audit
            ``audit(session, version)`` runs inside the same transaction, so the version and
            its audit entry are stored together or not at all, e.g.
            ``lambda s, v: log.append_in(s, "alice", "register", f"{v.model_name}:v{v.version}")``.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     first = store.add_version("m", None, "regression", "tabular", "a" * 64,
        ...                               "b" * 64, {"rmse": 1.5}, 10)
        ...     second = store.add_version("m", None, "regression", "tabular", "c" * 64,
        ...                                "d" * 64, {"rmse": 1.2}, 10, parent_id=first.id)
        ...     second.version, second.parent_id == first.id
        (2, True)
        """
        _require_text("model_name", model_name, max_len=128)
        values = {
            "model_name": model_name,
            "run_id": run_id,
            "task": task,
            "input_kind": input_kind,
            "weights_sha256": weights_sha256,
            "bundle_sha256": bundle_sha256,
            "metrics": copy.deepcopy(dict(metrics)),
            "size_bytes": size_bytes,
            "parent_id": parent_id,
            "description": description,
        }

        def work(session: Session) -> VersionRecord:
            if run_id is not None:
                _get_run(session, run_id)
            if parent_id is not None and session.get(ModelVersion, parent_id) is None:
                raise NotFoundError(
                    f"parent version id {parent_id} does not exist; pass the id of a "
                    "registered version (VersionRecord.id) or None."
                )
            latest = session.scalar(
                select(func.max(ModelVersion.version)).where(ModelVersion.model_name == model_name)
            )
            row = ModelVersion(version=(latest or 0) + 1, **copy.deepcopy(values))
            session.add(row)
            session.flush()
            record = record_from(VersionRecord, row)
            if audit is not None:
                audit(session, record)
            return record

        return self.transact(work)

    def get_version(self, model_name: str, version: int | None = None) -> VersionRecord:
        """Return one version of a model; ``version=None`` means the latest.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     _ = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        ...     store.get_version("m", 7)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: model 'm' has no version 7. Versions: 1.
        """
        with self.session(write=False) as session:
            query = select(ModelVersion).where(ModelVersion.model_name == model_name)
            if version is None:
                query = query.order_by(ModelVersion.version.desc()).limit(1)
            else:
                query = query.where(ModelVersion.version == version)
            row = session.scalars(query).first()
            if row is None:
                raise NotFoundError(_missing_version(session, model_name, version))
            return record_from(VersionRecord, row)

    def list_versions(self, model_name: str | None = None) -> list[VersionRecord]:
        """Return every version (of one model, or of all), by model name then version.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.list_versions("m")
        []
        """
        with self.session(write=False) as session:
            query = select(ModelVersion).order_by(ModelVersion.model_name, ModelVersion.version)
            if model_name is not None:
                query = query.where(ModelVersion.model_name == model_name)
            return [record_from(VersionRecord, row) for row in session.scalars(query)]

    def model_names(self) -> list[str]:
        """Return the names of all registered models, sorted.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     for name in ("b", "a", "b"):
        ...         _ = store.add_version(name, None, "binary", "tabular", "a" * 64, "b" * 64,
        ...                               {}, 1)
        ...     store.model_names()
        ['a', 'b']
        """
        with self.session(write=False) as session:
            return _model_names(session)


def _is_unique_violation(exc: sa_exc.IntegrityError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    message = str(exc.orig).lower()
    return "unique constraint" in message or "duplicate key" in message


def _require_text(name: str, value: str, *, max_len: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise UsageError(f"{name} must be text of 1 to {max_len} characters, got {value!r}.")


def _finite_metric(name: str, value: float, epoch: int) -> float:
    number = float(value)
    if math.isnan(number):
        raise UsageError(
            f"metric '{name}' at epoch {epoch} is NaN; record only numbers (stop the run and "
            "record the error with finish_run instead)."
        )
    return number


def _dataset_by_fingerprint(session: Session, fingerprint: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.fingerprint == fingerprint)).first()


def _report_record(row: Report, fingerprint: str) -> ReportRecord:
    return ReportRecord(
        id=row.id, kind=row.kind, dataset_fingerprint=fingerprint, version_id=row.version_id,
        run_id=row.run_id, artifact_sha256=row.artifact_sha256,
        summary=copy.deepcopy(row.summary), created_at=row.created_at,
    )


def _get_run(session: Session, run_id: str) -> Run:
    row = session.get(Run, run_id)
    if row is not None:
        return row
    recent = session.scalars(select(Run.id).order_by(Run.started_at.desc()).limit(5)).all()
    hint = f"Recent runs: {', '.join(recent)}." if recent else "No runs are recorded yet."
    raise NotFoundError(f"no run '{run_id}'. {hint}")


def _model_names(session: Session) -> list[str]:
    query = select(ModelVersion.model_name).distinct().order_by(ModelVersion.model_name)
    return list(session.scalars(query))


def _missing_version(session: Session, model_name: str, version: int | None) -> str:
    versions = session.scalars(
        select(ModelVersion.version)
        .where(ModelVersion.model_name == model_name)
        .order_by(ModelVersion.version)
    ).all()
    if versions:
        return f"model '{model_name}' has no version {version}. Versions: {_short_list(versions)}."
    names = _model_names(session)
    if not names:
        return f"no model named '{model_name}'. No models are registered yet."
    return f"no model named '{model_name}'. Models: {_short_list(names)}."


def _short_list(items: list[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:_LIST_AT_MOST])
    more = len(items) - _LIST_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


__all__ = ["AuditHook", "Store"]
