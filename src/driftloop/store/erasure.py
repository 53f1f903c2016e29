"""Finding and deleting one data subject's rows in the prediction log and its feedback.

:class:`ErasureQueries` is the :class:`~driftloop.store.Store` mixin behind
:mod:`driftloop.governance.erasure`, which decides what matches a subject and audits the
erasure; here are only the scans and the one transaction that deletes.

Examples
--------
>>> from driftloop.store import Store, utcnow
>>> store = Store.open("sqlite://")
>>> _ = store.add_predictions([{"request_id": rid, "model_name": "m", "version": 1,
...     "at": utcnow(), "features": {"customer": c}, "output": {}}
...     for rid, c in [("r1", "c-1"), ("r2", "c-2")]])
>>> found = [r for r in store.iter_log_features(containing=["c-1"])]
>>> store.erase_log_rows([r.id for r in found], [r.request_id for r in found]).prediction_log
1
>>> [r.features for r in store.list_predictions()]
[{'customer': 'c-2'}]
>>> store.close()
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from driftloop.store.core import StoreCore
from driftloop.store.records import AuditRecord
from driftloop.store.tables import FeedbackEntry, OnlineFeatureRow, PredictionLogEntry

_CHUNK = 500  # ids per IN (...) list: far below every database's parameter limit


@dataclass(frozen=True)
class LoggedFeatures:
    """The features of one prediction-log row, as stored (a dict unless edited outside
    driftloop), with the row's ids."""

    id: int
    request_id: str
    features: Any


@dataclass(frozen=True)
class ErasedRows:
    """What :meth:`ErasureQueries.erase_log_rows` removed.

    Attributes
    ----------
    prediction_log, feedback
        Rows deleted from each table.
    shared_request_ids
        Request ids of the deleted log rows that other log rows still have.
    audit_seq
        The audit entry the hook appended in the same transaction (None without one).
    online_features
        Rows deleted from the feature store's online table (the subject as an entity).
    """

    prediction_log: int
    feedback: int
    shared_request_ids: int
    audit_seq: int | None = None
    online_features: int = 0


ErasureHook = Callable[[Session, ErasedRows], AuditRecord | None]
"""Called inside :meth:`ErasureQueries.erase_log_rows`'s transaction with the counts; the audit
entry it returns is named in the result."""


class ErasureQueries(StoreCore):
    """Scans and deletions of one subject's log rows (a :class:`~driftloop.store.Store` mixin)."""

    def iter_log_features(
        self, *, containing: Sequence[str] | None = None, newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[LoggedFeatures]:
        """Yield the features of log rows (whose stored JSON text contains one of
        ``containing``), oldest first or newest first, read in batches in one read-only
        transaction; exhaust or close the iterator.

        ``containing`` only narrows the scan (``LIKE``): check each row exactly.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {"id": i * 21}, "output": {}} for i in range(3)])
        >>> [r.features for r in store.iter_log_features(containing=["42"])]
        [{'id': 42}]
        >>> [r.request_id for r in store.iter_log_features(newest_first=True, limit=2)]
        ['r2', 'r1']
        >>> store.close()
        """
        if containing is not None and not containing:
            return
        order = PredictionLogEntry.id.desc() if newest_first else PredictionLogEntry.id
        query = select(PredictionLogEntry.id, PredictionLogEntry.request_id,
                       PredictionLogEntry.features).order_by(order)
        if containing is not None:
            text = cast(PredictionLogEntry.features, Text)
            query = query.where(or_(*(text.contains(n, autoescape=True) for n in containing)))
        if limit is not None:
            query = query.limit(limit)
        with self.session(write=False) as session:
            for row in session.execute(query.execution_options(yield_per=2000)):
                yield LoggedFeatures(row.id, row.request_id, row.features)

    def log_rows_of_subjects(self, subjects: Iterable[str]) -> list[LoggedFeatures]:
        """The log rows whose ``subject`` (the keyed hash of the id a request sent in
        ``ids``) is one of ``subjects``, oldest first (an indexed lookup, no scan).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": rid, "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}, "subject": s}
        ...     for rid, s in [("r1", "h1"), ("r2", None), ("r3", "h2"), ("r4", "h1")]])
        >>> [r.request_id for r in store.log_rows_of_subjects(["h1", "h9"])]
        ['r1', 'r4']
        >>> store.close()
        """
        wanted = sorted(set(subjects))
        found: list[LoggedFeatures] = []
        with self.session(write=False) as session:
            for chunk in _chunks(wanted):
                query = select(PredictionLogEntry.id, PredictionLogEntry.request_id,
                               PredictionLogEntry.features).where(
                    PredictionLogEntry.subject.in_(chunk))
                found.extend(LoggedFeatures(r.id, r.request_id, r.features)
                             for r in session.execute(query))
        return sorted(found, key=lambda r: r.id)

    def has_subjects(self) -> bool:
        """True when some log row names a subject (its request sent ``ids``).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> store.has_subjects()
        False
        >>> _ = store.add_predictions([{"request_id": "r1", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}, "subject": "h1"}])
        >>> store.has_subjects()
        True
        >>> store.close()
        """
        query = select(PredictionLogEntry.id).where(
            PredictionLogEntry.subject.is_not(None)).limit(1)
        with self.session(write=False) as session:
            return session.scalar(query) is not None

    def count_feedback(self, request_ids: Sequence[str]) -> int:
        """How many feedback rows these request ids have.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_feedback([("a", 1), ("a", 0), ("b", 1)])
        >>> store.count_feedback(["a", "c"])
        2
        >>> store.close()
        """
        with self.session(write=False) as session:
            return sum(int(session.scalar(
                select(func.count()).select_from(FeedbackEntry)
                .where(FeedbackEntry.request_id.in_(chunk))) or 0)
                for chunk in _chunks(request_ids))

    def count_shared_request_ids(
        self, request_ids: Sequence[str], *, excluding: Sequence[int]
    ) -> int:
        """How many of ``request_ids`` log rows other than ``excluding`` (log ids) also have.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": rid, "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}} for rid in ("a", "a", "b")])
        >>> store.count_shared_request_ids(["a", "b"], excluding=[1, 3])
        1
        >>> store.close()
        """
        mine = set(excluding)
        shared: set[str] = set()
        with self.session(write=False) as session:
            for chunk in _chunks(request_ids):
                query = select(PredictionLogEntry.id, PredictionLogEntry.request_id).where(
                    PredictionLogEntry.request_id.in_(chunk))
                shared.update(r.request_id for r in session.execute(query) if r.id not in mine)
        return len(shared)

    def count_online_entities(self, entity_hashes: Sequence[str]) -> int:
        """Online feature rows (any view) kept under these entity hashes (an erasure's dry run).

        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.count_online_entities(["ab" * 32])
        0
        """
        with self.session(write=False) as session:
            return sum(int(session.scalar(select(func.count()).select_from(OnlineFeatureRow)
                                          .where(OnlineFeatureRow.entity_hash.in_(chunk))) or 0)
                       for chunk in _chunks(list(entity_hashes)))

    def erase_log_rows(
        self, log_ids: Sequence[int], request_ids: Sequence[str], *,
        audit: ErasureHook | None = None, entity_hashes: Sequence[str] = (),
    ) -> ErasedRows:
        """Delete the log rows ``log_ids``, every feedback row of ``request_ids`` and the online
        feature rows of ``entity_hashes``, and run ``audit(session, counts)`` in the same
        transaction (retried as a whole when another process wins the audit tail).

        Examples
        --------
        >>> from driftloop.store import AuditLog, Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": rid, "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}} for rid in ("a", "a", "b")])
        >>> _ = store.add_feedback([("a", 1), ("b", 0)])
        >>> log = AuditLog(store)
        >>> store.erase_log_rows([1], ["a"], audit=lambda s, erased: log.append_in(
        ...     s, "dpo", "erase", "subject:x", {"rows": erased.prediction_log}))
        ... # doctest: +NORMALIZE_WHITESPACE
        ErasedRows(prediction_log=1, feedback=1, shared_request_ids=1, audit_seq=1,
                   online_features=0)
        >>> store.count_predictions(), [f.request_id for f in store.list_feedback()]
        (2, ['b'])
        >>> store.close()
        """
        def work(session: Session) -> ErasedRows:
            logged = _delete_in(session, PredictionLogEntry.id, log_ids)
            shared = _count_in(session, PredictionLogEntry.request_id, request_ids)
            feedback = _delete_in(session, FeedbackEntry.request_id, request_ids)
            online = _delete_in(session, OnlineFeatureRow.entity_hash, list(entity_hashes))
            erased = ErasedRows(logged, feedback, shared, online_features=online)
            entry = audit(session, erased) if audit is not None else None
            return erased if entry is None else dataclasses.replace(erased, audit_seq=entry.seq)

        return self.transact(work)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def _delete_in(session: Session, column: Any, values: Sequence[Any]) -> int:
    total = 0
    for chunk in _chunks(values):
        result = session.execute(delete(column.class_).where(column.in_(chunk)))
        total += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return total


def _count_in(session: Session, column: Any, values: Sequence[Any]) -> int:
    """Distinct ``values`` still present in ``column`` (after the subject's rows went)."""
    found: set[Any] = set()
    for chunk in _chunks(values):
        found.update(session.scalars(select(column).where(column.in_(chunk)).distinct()))
    return len(found)


__all__ = ["ErasedRows", "ErasureHook", "ErasureQueries", "LoggedFeatures"]
