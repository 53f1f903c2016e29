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
import hashlib
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
    ALIAS_ACTIONS,
    DATASET_ROLES,
    REPORT_KINDS,
    RUN_STATUSES,
    AliasMoveRecord,
    AliasRecord,
    AuditRecord,
    DatasetRecord,
    ReportRecord,
    RunRecord,
    VersionRecord,
    record_from,
)
from driftloop.store.tables import (
    AliasMove,
    Dataset,
    ModelAlias,
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
EventHook = Callable[[Session, str, str, dict[str, Any]], object]
"""``hook(session, action, subject, details)``, called inside the transaction of a recorded
dataset or a run that starts, finishes, fails or resumes (see :attr:`Store.on_event`)."""
MoveHook = Callable[[Session, AliasMoveRecord], AuditRecord | None]
"""Called inside :meth:`Store.move_alias`'s transaction; the audit entry it returns is linked."""


class AliasMoved(DriftloopError):
    """The alias moved between reading its holder and moving it; decide again and retry."""

    def __init__(self, message: str, holder_id: int | None) -> None:
        super().__init__(message)
        self.holder_id = holder_id

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

    def __init__(self, url: str, *, on_event: EventHook | None = None) -> None:
        self.url = url
        # set by Registry.open to the audit log's recorder: datasets and runs are audited in
        # the transaction that records them, without the store importing governance
        self.on_event = on_event
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
        >>> store.schema_revision() == Store.head_revision()
        True
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

    def _emit(self, session: Session, action: str, subject: str, details: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(session, action, subject, details)

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
                self._emit(session, "dataset_recorded", f"dataset:{fingerprint}",
                           {"rows": rows, "columns": None if columns is None else len(columns)})
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

    def get_version_by_id(self, version_id: int) -> VersionRecord:
        """Return the version with store-wide id ``version_id`` (e.g. a ``parent_id``).

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        ...     store.get_version_by_id(v.id) == v
        True
        """
        with self.session(write=False) as session:
            row = session.get(ModelVersion, version_id)
            if row is None:
                raise NotFoundError(f"no model version with id {version_id}.")
            return record_from(VersionRecord, row)

    # -- aliases -----------------------------------------------------------------------------

    def alias_holder(self, model_name: str, alias: str) -> AliasRecord | None:
        """Return what ``alias`` of ``model_name`` points at, or None when nothing does.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.alias_holder("m", "production") is None
        True
        """
        return next(iter(self.list_aliases(model_name, alias)), None)

    def list_aliases(
        self, model_name: str | None = None, alias: str | None = None
    ) -> list[AliasRecord]:
        """Return the aliases (of one model, or all) by model name then alias.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.list_aliases("m")
        []
        """
        with self.session(write=False) as session:
            query = (
                select(ModelAlias, ModelVersion.version)
                .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
                .order_by(ModelAlias.model_name, ModelAlias.alias)
            )
            if model_name is not None:
                query = query.where(ModelAlias.model_name == model_name)
            if alias is not None:
                query = query.where(ModelAlias.alias == alias)
            return [
                AliasRecord(row.model_name, row.alias, row.version_id, version, row.updated_at)
                for row, version in session.execute(query)
            ]

    def move_alias(
        self,
        model_name: str,
        alias: str,
        version_id: int,
        *,
        expected_version_id: int | None,
        action: str,
        actor: str,
        reason: str | None = None,
        forced: bool = False,
        gates: Mapping[str, Any] | None = None,
        audit: MoveHook | None = None,
    ) -> AliasMoveRecord:
        """Point ``alias`` at ``version_id`` and record the move, if it still points at
        ``expected_version_id`` (None: at nothing).

        The holder row, the move and its audit entry are written in one transaction, so an
        alias always has exactly one holder (or none before its first promotion). When another
        process moved the alias since the caller decided, :class:`AliasMoved` is raised and
        nothing is written: decide again on the new holder.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     v1, v2 = (store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64,
        ...                                 {}, 1) for _ in range(2))
        ...     first = store.move_alias("m", "production", v1.id, expected_version_id=None,
        ...                              action="promote", actor="ci")
        ...     store.move_alias("m", "production", v2.id, expected_version_id=None,
        ...                      action="promote", actor="ci")
        Traceback (most recent call last):
        ...
        driftloop.store.database.AliasMoved: m@production now points at version id 1, not at nothing as expected; it was moved meanwhile. Decide again.
        """  # noqa: E501
        if action not in ALIAS_ACTIONS:
            raise UsageError(f"alias action '{action}' is not one of {', '.join(ALIAS_ACTIONS)}.")
        _require_text("alias", alias, max_len=64)
        _require_text("actor", actor, max_len=128)

        def work(session: Session) -> AliasMoveRecord:
            target = session.get(ModelVersion, version_id)
            if target is None or target.model_name != model_name:
                raise NotFoundError(f"model '{model_name}' has no version with id {version_id}.")
            row = session.get(ModelAlias, (model_name, alias), with_for_update=True)
            current = None if row is None else row.version_id
            if current != expected_version_id:
                expected = (
                    "nothing" if expected_version_id is None
                    else f"version id {expected_version_id}"
                )
                raise AliasMoved(
                    f"{model_name}@{alias} now points at version id {current}, not at "
                    f"{expected} as expected; it was moved meanwhile. Decide again.", current,
                )
            now = utcnow()
            if row is None:
                session.add(ModelAlias(model_name=model_name, alias=alias,
                                       version_id=version_id, updated_at=now))
            else:
                row.version_id, row.updated_at = version_id, now
            move = AliasMove(
                model_name=model_name, alias=alias, action=action, from_version_id=current,
                to_version_id=version_id, actor=actor, reason=reason, forced=forced,
                gates=copy.deepcopy(dict(gates)) if gates is not None else None, at=now,
            )
            session.add(move)
            session.flush()
            record = _move_record(session, move)
            entry = audit(session, record) if audit is not None else None
            if entry is not None:
                move.audit_seq = entry.seq
                session.flush()
                record = _move_record(session, move)
            return record

        return self.transact(work)

    def alias_moves(
        self,
        model_name: str,
        alias: str | None = None,
        *,
        version_id: int | None = None,
    ) -> list[AliasMoveRecord]:
        """Return the moves of a model's aliases (of one alias; to or from one version), oldest
        first.

        Examples
        --------
        >>> with Store.open("sqlite://") as store:
        ...     store.alias_moves("m", "production")
        []
        """
        with self.session(write=False) as session:
            query = (
                select(AliasMove)
                .where(AliasMove.model_name == model_name)
                .order_by(AliasMove.id)
            )
            if alias is not None:
                query = query.where(AliasMove.alias == alias)
            if version_id is not None:
                query = query.where(
                    (AliasMove.to_version_id == version_id)
                    | (AliasMove.from_version_id == version_id)
                )
            return [_move_record(session, row) for row in session.scalars(query)]


def _move_record(session: Session, row: AliasMove) -> AliasMoveRecord:
    def number(version_id: int | None) -> int | None:
        if version_id is None:
            return None
        return session.scalar(select(ModelVersion.version).where(ModelVersion.id == version_id))

    to_version = number(row.to_version_id)
    assert to_version is not None  # a foreign key
    return AliasMoveRecord(
        id=row.id, model_name=row.model_name, alias=row.alias, action=row.action,
        from_version_id=row.from_version_id, from_version=number(row.from_version_id),
        to_version_id=row.to_version_id, to_version=to_version, actor=row.actor,
        reason=row.reason, forced=bool(row.forced), gates=copy.deepcopy(row.gates),
        audit_seq=row.audit_seq, at=row.at,
    )


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


__all__ = ["AliasMoved", "AuditHook", "EventHook", "MoveHook", "Store"]
