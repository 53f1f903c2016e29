"""A hash-chained audit log: who changed what, when and why, and proof nobody edited it since.

Each entry's ``hash`` is the sha256 of the canonical JSON of its ``at``, ``actor``, ``action``,
``subject``, ``details`` and ``prev_hash``; ``prev_hash`` is the previous entry's ``hash``
(64 zeros for the first). Editing, deleting, inserting or reordering entries breaks a hash or
a link, and :meth:`AuditLog.verify` names the first entry where that happens. ``prev_hash``
is unique in the table, so two processes appending on the same tail cannot fork the chain: one
of them fails and retries on the new tail.

A chain cannot tell that its newest entries were deleted; keep an :class:`Anchor` (the newest
entry's ``seq`` and hash, from :meth:`AuditLog.anchor` or ``driftloop audit anchor > FILE``)
somewhere else, and ``verify(anchor)`` reports a truncated tail. The hashing and the checks
live in :mod:`driftloop.store.audit_chain`; their names are importable from here too.

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

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.errors import UsageError
from driftloop.store.audit_chain import (
    GENESIS_HASH,
    Anchor,
    ChainReport,
    _anchor_problem,
    _fetch,
    _problem,
    _rows,
    entry_hash,
)
from driftloop.store.canonical import canonical_json
from driftloop.store.clock import utcnow
from driftloop.store.records import AuditRecord, VersionRecord, record_from
from driftloop.store.tables import AuditEntry

if TYPE_CHECKING:
    from driftloop.store.database import Store

_LIMITS = {"actor": 128, "action": 64, "subject": 256}


def pseudonymous_actor() -> str:
    """A stable pseudonym of the operating-system user on this machine, for the audit log.

    The name itself never reaches the log; set ``actor`` (``DRIFTLOOP_ACTOR``, ``--actor``) to a
    role or service id such as ``ci:nightly`` instead where one exists.

    Examples
    --------
    >>> actor = pseudonymous_actor()
    >>> actor.startswith("user:"), len(actor)
    (True, 17)
    """
    try:
        who = f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = f"uid{os.getuid() if hasattr(os, 'getuid') else 0}@{socket.gethostname()}"
    return "user:" + hashlib.sha256(f"driftloop-actor:{who}".encode()).hexdigest()[:12]


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

    def event_recorder(
        self, actor: str
    ) -> Callable[[Session, str, str, dict[str, Any]], AuditRecord]:
        """Return a hook for :attr:`driftloop.store.Store.on_event` that appends each event.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     store.on_event = log.event_recorder("ci:nightly")
        ...     run = store.create_run("churn", {}, 2, "runs/x", {}, None)
        ...     _ = store.finish_run(run.id, "failed", error="rank 1 crashed")
        ...     [(e.actor, e.action, e.subject == f"run:{run.id}") for e in log.entries()]
        [('ci:nightly', 'run_started', True), ('ci:nightly', 'run_failed', True)]
        """
        _check_fields(actor=actor)

        def hook(
            session: Session, action: str, subject: str, details: dict[str, Any]
        ) -> AuditRecord:
            return self.append_in(session, actor, action, subject, details)

        return hook

    def entries(
        self, subject: str | None = None, limit: int | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        """Return entries oldest first: all of them, or the newest ``limit`` (of ``subject``,
        of ``action``).

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
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if limit is not None:
            query = query.limit(limit)
        with self.store.session(write=False) as session:
            rows = [record_from(AuditRecord, row) for row in session.scalars(query)]
        return rows[::-1]

    def last_in(
        self, session: Session, action: str, subject: str | None = None
    ) -> AuditRecord | None:
        """The newest entry with ``action`` (and ``subject``), read inside the caller's
        transaction so a decision and the entry it appends see the same log.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     _ = log.append("ci", "policy_change", "policy:gates", {"sha256": "ab"})
        ...     with store.session(write=False) as s:
        ...         log.last_in(s, "policy_change").details
        {'sha256': 'ab'}
        """
        query = select(AuditEntry).where(AuditEntry.action == action)
        if subject is not None:
            query = query.where(AuditEntry.subject == subject)
        row = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(1)).first()
        return None if row is None else record_from(AuditRecord, row)

    def anchor(self) -> Anchor:
        """The newest entry's seq and hash, to keep elsewhere and pass to :meth:`verify`.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     empty = log.anchor()
        ...     entry = log.append("ci", "retrain", "churn")
        ...     now = log.anchor()
        >>> (empty.seq, empty.hash == GENESIS_HASH), (now.seq, now.hash == entry.hash)
        ((0, True), (1, True))
        """
        with self.store.session(write=False) as session:
            count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
            newest = session.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
            ).first()
        seq, digest = (newest.seq, newest.hash) if newest is not None else (0, GENESIS_HASH)
        return Anchor(seq, digest, count, utcnow().isoformat())

    def verify(self, anchor: Anchor | None = None) -> ChainReport:
        """Recompute every hash and link, oldest first, and report the first that fails.

        With ``anchor`` (taken earlier by :meth:`anchor`), the entry it names must still be
        there with the same hash: a log cut back to before it, or rewritten since, fails.

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

        A chain cut short still links; the anchor taken before the cut tells:

        >>> from sqlalchemy import delete
        >>> with Store.open("sqlite://") as store:
        ...     log = AuditLog(store)
        ...     for n in range(3):
        ...         _ = log.append("ci", "retrain", "churn", {"n": n})
        ...     anchor = log.anchor()
        ...     with store.session() as s:
        ...         _ = s.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        ...     log.verify().ok, log.verify(anchor).first_bad_seq
        (True, 3)
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
            anchored = None if anchor is None else _fetch(session, [anchor.seq])
        if anchor is not None:
            problem = _anchor_problem(anchor, anchored, seqs)
            if problem is not None:
                bad_seq, why = problem
                return ChainReport(False, len(seqs), bad_seq, why, head)
        reason = f"all {len(seqs)} entries match their hashes and link in order"
        if anchor is not None:
            reason += f", and entry {anchor.seq} still matches the anchor"
        return ChainReport(
            True, len(seqs), None, reason + "." if seqs else "the log is empty.", head
        )


def _check_fields(**values: str) -> None:
    # only the fields named are checked: recorder() learns its subject later
    for name, value in values.items():
        limit = _LIMITS[name]
        if not isinstance(value, str) or not value or len(value) > limit:
            raise UsageError(
                f"audit {name} must be text of 1 to {limit} characters, got {value!r}."
            )


__all__ = [
    "GENESIS_HASH", "Anchor", "AuditLog", "ChainReport", "entry_hash", "pseudonymous_actor",
]
