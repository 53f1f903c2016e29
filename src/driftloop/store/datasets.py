"""Datasets, named by their content fingerprint; the runs that used them; reports on them.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     ds = store.upsert_dataset("ab" * 32, "data.csv", rows=100, columns=None)
...     run = store.create_run("churn", {}, 1, "runs/1", {}, None)
...     store.link_run_dataset(run.id, "train", ds.fingerprint)
...     store.run_datasets(run.id)["train"] == store.get_dataset_by_id(ds.id)
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.errors import NotFoundError, UsageError
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import (
    DATASET_ROLES,
    REPORT_KINDS,
    DatasetRecord,
    ReportRecord,
    record_from,
)
from driftloop.store.runs import _get_run
from driftloop.store.tables import Dataset, ModelVersion, Report, RunDataset


class DatasetQueries(StoreCore):
    """Datasets, the runs that used them and the reports computed on them (a :class:`Store`
    mixin)."""

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
        >>> from driftloop.store import Store
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
        >>> from driftloop.store import Store
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

    def get_dataset_by_id(self, dataset_id: int) -> DatasetRecord:
        """Return the dataset with store-wide id ``dataset_id`` (e.g. a ``DatasetRecord.id``).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> store.get_dataset_by_id(store.upsert_dataset("e" * 64, "e.csv", 5, None).id).rows
        5
        >>> store.get_dataset_by_id(99)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: no dataset with id 99; record it with upsert_dataset.
        >>> store.close()
        """
        with self.session(write=False) as session:
            row = session.get(Dataset, dataset_id)
            if row is None:
                raise NotFoundError(
                    f"no dataset with id {dataset_id}; record it with upsert_dataset."
                )
            return record_from(DatasetRecord, row)

    def link_run_dataset(self, run_id: str, role: str, fingerprint: str) -> None:
        """Say that run ``run_id`` used the dataset ``fingerprint`` as ``role``.

        Linking a role again replaces the dataset it points at.

        Examples
        --------
        >>> from driftloop.store import Store
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

    def run_datasets(self, run_id: str) -> dict[str, DatasetRecord]:
        """Return the datasets a run used, by role.

        Examples
        --------
        >>> from driftloop.store import Store
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
        >>> from driftloop.store import Store
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
        >>> from driftloop.store import Store
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


def _dataset_by_fingerprint(session: Session, fingerprint: str) -> Dataset | None:
    return session.scalars(select(Dataset).where(Dataset.fingerprint == fingerprint)).first()


def _report_record(row: Report, fingerprint: str) -> ReportRecord:
    return ReportRecord(
        id=row.id, kind=row.kind, dataset_fingerprint=fingerprint, version_id=row.version_id,
        run_id=row.run_id, artifact_sha256=row.artifact_sha256,
        summary=copy.deepcopy(row.summary), created_at=row.created_at,
    )


__all__ = ["DatasetQueries"]
