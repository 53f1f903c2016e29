"""A hash-chained audit log: who changed what, when and why, and proof nobody edited it since.

Each entry's ``hash`` is the sha256 of the canonical JSON of its ``at``, ``actor``, ``action``,
``subject``, ``details`` and ``prev_hash``; ``prev_hash`` is the previous entry's ``hash``
(64 zeros for the first). Editing, deleting, inserting or reordering entries breaks a hash or
a link, and :meth:`AuditLog.verify` names the first entry where that happens. ``prev_hash``
is unique in the table, so two processes appending on the same tail cannot fork the chain: one
of them fails and retries on the new tail.

A chain cannot tell that its newest entries were deleted; keep ``ChainReport.head`` (the last
hash) somewhere else, such as a governance report, to catch that.

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> log = AuditLog(store)
>>> first = log.append("alice", "register", "churn:v1", {"auc": 0.91})
>>> first.prev_hash == GENESIS_HASH
True
>>> log.append("bob", "promote", "churn:v1", {"alias": "prod"}).prev_hash == first.hash
True
>>> log.verify().ok
True
>>> store.close()
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from driftloop.errors import UsageError
from driftloop.store import AuditRecord, Store, VersionRecord, canonical_json
from driftloop.store.records import record_from
from driftloop.store.tables import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
_VERIFY_CHUNK = 500
_LIMITS = {"actor": 128, "action": 64, "subject": 256}


def entry_hash(
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """Return the sha256 (hex) that chains one audit entry; its ``seq`` is not part of it.

    Examples
    --------
    >>> at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> entry_hash(at, "alice", "register", "churn:v1", {}, GENESIS_HASH)[:16]
    '37d1455347b76db4'
    """
    payload = {
        "at": at.astimezone(timezone.utc).isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """What :meth:`AuditLog.verify` found.

    Attributes
    ----------
    ok
        True when every entry matches its hash and links to the one before.
    entries
        How many entries the log holds.
    first_bad_seq
        ``seq`` of the first entry whose hash or link does not hold (for a deleted entry:
        the one after the gap), or None.
    reason
        One sentence for people.
    head
        The last entry's hash (64 zeros when empty); record it elsewhere to detect a deleted
        tail later.

    Examples
    --------
    >>> ChainReport(True, 0, None, "the log is empty", GENESIS_HASH).ok
    True
    """

    ok: bool
    entries: int
    first_bad_seq: int | None
    reason: str
    head: str


class AuditLog:
    """The audit log of one store.

    Parameters
    ----------
    store
        An open, migrated :class:`driftloop.store.Store`.

    Examples
    --------
    >>> from driftloop.store import Store
    >>> with Store.open("sqlite://") as store:
    ...     log = AuditLog(store)
    ...     _ = log.append("alice", "promote", "churn:v2", {"alias": "prod", "reason": "better"})
    ...     [(e.seq, e.actor, e.details["alias"]) for e in log.entries(subject="churn:v2")]
    [(1, 'alice', 'prod')]
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one entry in its own transaction (retried when another process wins the tail).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     AuditLog(store).append("", "erase", "dataset:abc")
        Traceback (most recent call last):
        ...
        driftloop.errors.UsageError: audit actor must be text of 1 to 128 characters, got ''.
        """
        _check_fields(actor=actor, action=action, subject=subject)
        return self.store.transact(lambda s: self.append_in(s, actor, action, subject, details))

    def append_in(
        self,
        session: Session,
        actor: str,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one entry inside the caller's transaction (``Store.session``/``transact``).

        The caller's transaction commits the entry together with its own changes. Run it
        through :meth:`driftloop.store.Store.transact` (or ``Store.add_version(audit=...)``,
        which does) so that losing the tail to another process retries the whole unit.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     v = store.add_version(
        ...         "churn", None, "binary", "tabular", "a" * 64, "b" * 64, {"auc": 0.9}, 10,
        ...         audit=lambda s, v: log.append_in(
        ...             s, "alice", "register", f"{v.model_name}:v{v.version}", {"auc": 0.9}))
        ...     [e.subject for e in log.entries()]
        ['churn:v1']
        """
        _check_fields(actor=actor, action=action, subject=subject)
        clean = json.loads(canonical_json(dict(details or {})))
        tail = session.scalars(
            select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        prev_hash = tail or GENESIS_HASH
        at = utcnow()
        row = AuditEntry(
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=clean,
            prev_hash=prev_hash,
            hash=entry_hash(at, actor, action, subject, clean, prev_hash),
        )
        session.add(row)
        session.flush()
        return record_from(AuditRecord, row)

    def recorder(
        self,
        actor: str,
        action: str,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Callable[[Session, VersionRecord], AuditRecord]:
        """Return an ``audit`` hook for :meth:`driftloop.store.Store.add_version`.

        The entry's subject is ``"<model>:v<version>"``; its details hold ``reason``, the
        run id, the two artifact hashes and ``details``.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     _ = store.add_version("churn", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1,
        ...                           audit=log.recorder("alice", "register", reason="first"))
        ...     entry = log.entries()[-1]
        >>> entry.subject, entry.action, entry.details["reason"]
        ('churn:v1', 'register', 'first')
        """
        _check_fields(actor=actor, action=action)

        def hook(session: Session, version: VersionRecord) -> AuditRecord:
            facts = {
                "reason": reason,
                "run_id": version.run_id,
                "weights_sha256": version.weights_sha256,
                "bundle_sha256": version.bundle_sha256,
                **(details or {}),
            }
            subject = f"{version.model_name}:v{version.version}"
            return self.append_in(session, actor, action, subject, facts)

        return hook

    def entries(self, subject: str | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Return entries oldest first: all of them, or the newest ``limit`` (of ``subject``).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     for n in range(3):
        ...         _ = log.append("ci", "retrain", "churn", {"n": n})
        ...     [e.details["n"] for e in log.entries(limit=2)]
        [1, 2]
        """
        if limit is not None and limit < 0:
            raise UsageError(f"limit must be 0 or more, got {limit}.")
        query = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if subject is not None:
            query = query.where(AuditEntry.subject == subject)
        if limit is not None:
            query = query.limit(limit)
        with self.store.session(write=False) as session:
            rows = [record_from(AuditRecord, row) for row in session.scalars(query)]
        return rows[::-1]

    def verify(self) -> ChainReport:
        """Recompute every hash and link, oldest first, and report the first that fails.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> from driftloop.store.tables import AuditEntry
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     for n in range(3):
        ...         _ = log.append("ci", "retrain", "churn", {"n": n})
        ...     with store.session() as s:  # tamper with entry 2
        ...         s.get(AuditEntry, 2).actor = "mallory"
        ...     report = log.verify()
        >>> report.ok, report.first_bad_seq
        (False, 2)
        >>> report.reason
        'entry 2 was changed after it was written: its content no longer matches its hash.'
        """
        with self.store.session(write=False) as session:
            seqs = list(session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
            head = GENESIS_HASH
            previous: int | None = None
            for seq, row in _rows(session, seqs):
                problem = _problem(seq, row, head, previous)
                if problem is not None:
                    return ChainReport(False, len(seqs), seq, problem, head)
                head, previous = row.hash, seq
        reason = f"all {len(seqs)} entries match their hashes and link in order."
        return ChainReport(True, len(seqs), None, reason if seqs else "the log is empty.", head)


def _check_fields(**values: str) -> None:
    # only the fields named are checked: recorder() learns its subject later
    for name, value in values.items():
        limit = _LIMITS[name]
        if not isinstance(value, str) or not value or len(value) > limit:
            raise UsageError(
                f"audit {name} must be text of 1 to {limit} characters, got {value!r}."
            )


_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.subject,
    AuditEntry.details,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


def _rows(session: Session, seqs: Sequence[int]) -> Iterator[tuple[int, Row[Any] | None]]:
    """Yield (seq, row) in order; row is None when the stored values cannot even be read."""
    for start in range(0, len(seqs), _VERIFY_CHUNK):
        chunk = seqs[start : start + _VERIFY_CHUNK]
        try:
            rows = _fetch(session, chunk)
        except (ValueError, TypeError):  # e.g. details or a timestamp edited into garbage
            rows = {}
            for seq in chunk:
                try:
                    rows.update(_fetch(session, [seq]))
                except (ValueError, TypeError):
                    pass
        for seq in chunk:
            yield seq, rows.get(seq)


def _fetch(session: Session, seqs: Sequence[int]) -> dict[int, Row[Any]]:
    query = select(*_COLUMNS).where(AuditEntry.seq.in_(seqs))
    return {row.seq: row for row in session.execute(query)}


def _problem(
    seq: int, row: Row[Any] | None, expected_prev: str, previous: int | None
) -> str | None:
    if row is None:
        return f"entry {seq} cannot be read: its stored values were edited outside driftloop."
    try:
        recomputed = entry_hash(
            row.at, row.actor, row.action, row.subject, row.details, row.prev_hash
        )
    except (AttributeError, TypeError, ValueError, UsageError):
        recomputed = None
    if recomputed != row.hash:
        return (
            f"entry {seq} was changed after it was written: its content no longer matches its hash."
        )
    if row.prev_hash == expected_prev:
        return None
    if previous is None:
        return (
            f"entry {seq} is the first entry but does not start the chain: entries before it "
            "were deleted, or it was inserted."
        )
    return (
        f"entry {seq} does not link to entry {previous}: entries between them were deleted, "
        "inserted or reordered."
    )


__all__ = ["GENESIS_HASH", "AuditLog", "ChainReport", "entry_hash"]
