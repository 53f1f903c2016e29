"""The audit chain itself: how an entry is hashed and linked, and what checking it finds.

Each entry's ``hash`` is the sha256 of the canonical JSON of its ``at``, ``actor``, ``action``,
``subject``, ``details`` and ``prev_hash``; ``prev_hash`` is the previous entry's ``hash``
(:data:`GENESIS_HASH` for the first). :class:`~driftloop.store.audit.AuditLog` appends and
verifies with these; an :class:`Anchor` kept elsewhere catches a truncated tail.

Examples
--------
>>> from datetime import datetime, timezone
>>> at = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> first = entry_hash(at, "alice", "register", "churn:v1", {}, GENESIS_HASH)
>>> entry_hash(at, "alice", "register", "churn:v1", {}, first) != first
True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from driftloop.errors import UsageError
from driftloop.store.canonical import canonical_json
from driftloop.store.tables import AuditEntry

GENESIS_HASH = "0" * 64
VERIFY_CHUNK = 500


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
    """What :meth:`~driftloop.store.audit.AuditLog.verify` found.

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


@dataclass(frozen=True)
class Anchor:
    """The newest entry of the log at one moment, kept elsewhere to detect a truncated tail.

    Attributes
    ----------
    seq
        The newest entry's ``seq`` (0 for an empty log).
    hash
        Its hash (64 zeros for an empty log).
    entries
        How many entries the log held.
    taken_at
        When the anchor was taken (UTC, ISO 8601).

    Examples
    --------
    >>> a = Anchor(3, "ab" * 32, 3, "2024-01-01T00:00:00+00:00")
    >>> Anchor.from_json(a.to_json()) == a
    True
    >>> Anchor.from_json({"seq": "three"})
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: the audit anchor is malformed: field 'seq' must be a whole number of 0 or more, got 'three'. Write a new one with `driftloop audit anchor > FILE`.
    """  # noqa: E501

    seq: int
    hash: str
    entries: int
    taken_at: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "entries": self.entries,
                "taken_at": self.taken_at}

    @classmethod
    def from_json(cls, data: Any) -> Anchor:
        """Read an anchor written by :meth:`to_json`, naming the field that is wrong."""
        if not isinstance(data, Mapping):
            _bad_anchor(f"it must be a JSON object, got {type(data).__name__}")
        for name in ("seq", "entries"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                _bad_anchor(f"field '{name}' must be a whole number of 0 or more, got {value!r}")
        digest = data.get("hash")
        if not isinstance(digest, str) or len(digest) != 64:
            _bad_anchor(f"field 'hash' must be 64 hexadecimal characters, got {digest!r}")
        return cls(data["seq"], digest, data["entries"], str(data.get("taken_at", "")))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Anchor:
        """Read an anchor file written by ``driftloop audit anchor > FILE``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"anchor file '{path}' not found.") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"anchor file '{path}' cannot be read as JSON: {exc}.") from None
        return cls.from_json(data)


def _bad_anchor(why: str) -> None:
    raise UsageError(
        f"the audit anchor is malformed: {why}. Write a new one with `driftloop audit anchor > "
        "FILE`."
    )


def _anchor_problem(
    anchor: Anchor, anchored: dict[int, Row[Any]] | None, seqs: Sequence[int]
) -> tuple[int, str] | None:
    if anchor.seq == 0:
        return None
    row = (anchored or {}).get(anchor.seq)
    last = seqs[-1] if seqs else 0
    if row is None and last < anchor.seq:
        return last + 1, (
            f"the log ends at entry {last}, but the anchor (taken {anchor.taken_at}) names entry "
            f"{anchor.seq}: the tail from entry {last + 1} on was deleted (truncated)."
        )
    if row is None:
        return anchor.seq, f"entry {anchor.seq}, named by the anchor, was deleted."
    if row.hash != anchor.hash:
        return anchor.seq, (
            f"entry {anchor.seq} no longer has the hash the anchor recorded "
            f"({anchor.hash[:16]}…): the log was rewritten from there."
        )
    return None


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
    for start in range(0, len(seqs), VERIFY_CHUNK):
        chunk = seqs[start : start + VERIFY_CHUNK]
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


__all__ = ["GENESIS_HASH", "Anchor", "ChainReport", "entry_hash"]
