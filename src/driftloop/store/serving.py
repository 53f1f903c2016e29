"""The serving tables behind small functions: prediction log, feedback and API keys.

Kept apart from :class:`~driftloop.store.database.Store` so the server's writes (many small
batches from a background thread) read as one concept; each function is one transaction.

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> add_predictions(store, [{"request_id": "r1", "model_name": "m", "version": 1,
...                          "at": utcnow(), "features": {"x": 1.0}, "output": {"p": 0.3}}])
1
>>> [(r.request_id, r.features) for r in list_predictions(store, "m")]
[('r1', {'x': 1.0})]
>>> add_feedback(store, [("r1", "yes")])
1
>>> [(f.request_id, f.label) for f in list_feedback(store)]
[('r1', 'yes')]
>>> key = add_api_key(store, "ci", "predict", prefix="abcd1234", key_sha256="0" * 64)
>>> find_api_key(store, "0" * 64).role, revoke_api_key(store, "ci").revoked_at is not None
('predict', True)
>>> find_api_key(store, "0" * 64) is None
True
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from driftloop.errors import NotFoundError, UsageError
from driftloop.store.database import Store
from driftloop.store.tables import ApiKey, FeedbackEntry, PredictionLogEntry, utcnow

API_ROLES = ("predict", "admin")


@dataclass(frozen=True)
class PredictionRow:
    """One row of the prediction log."""

    id: int
    request_id: str
    model_name: str
    version: int
    at: datetime
    features: dict[str, Any]
    output: dict[str, Any]


@dataclass(frozen=True)
class FeedbackRow:
    """Ground truth recorded for a request."""

    id: int
    request_id: str
    label: Any
    at: datetime


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: never the secret, only its prefix and SHA-256."""

    id: int
    name: str
    prefix: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def add_predictions(store: Store, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append prediction-log rows (keys as :class:`PredictionRow` less ``id``) in one write."""
    if rows:
        with store.session() as session:
            session.execute(PredictionLogEntry.__table__.insert(), [dict(r) for r in rows])
    return len(rows)


def list_predictions(
    store: Store, model_name: str | None = None, *, limit: int = 1000
) -> list[PredictionRow]:
    """The newest ``limit`` prediction-log rows (of ``model_name``), oldest first."""
    query = select(PredictionLogEntry).order_by(PredictionLogEntry.id.desc()).limit(limit)
    if model_name is not None:
        query = query.where(PredictionLogEntry.model_name == model_name)
    with store.session(write=False) as session:
        rows = list(session.scalars(query))
    return [PredictionRow(r.id, r.request_id, r.model_name, r.version, r.at, r.features, r.output)
            for r in reversed(rows)]


def predictions_after(
    store: Store, model_name: str, after_id: int = 0, *, limit: int | None = None
) -> list[PredictionRow]:
    """Prediction-log rows of ``model_name`` with id > ``after_id``, oldest first.

    Examples
    --------
    >>> store = Store.open("sqlite://")
    >>> _ = add_predictions(store, [{"request_id": f"r{i}", "model_name": "m", "version": 1,
    ...     "at": utcnow(), "features": {}, "output": {}} for i in range(3)])
    >>> [r.request_id for r in predictions_after(store, "m", 1)]
    ['r1', 'r2']
    >>> store.close()
    """
    query = (select(PredictionLogEntry)
             .where(PredictionLogEntry.model_name == model_name, PredictionLogEntry.id > after_id)
             .order_by(PredictionLogEntry.id))
    if limit is not None:
        query = query.limit(limit)
    with store.session(write=False) as session:
        return [PredictionRow(r.id, r.request_id, r.model_name, r.version, r.at, r.features,
                              r.output) for r in session.scalars(query)]


def recent_predictions(
    store: Store, model_name: str, version: int, *, up_to_id: int, limit: int
) -> list[PredictionRow]:
    """The newest ``limit`` log rows of one version with id <= ``up_to_id``, oldest first.

    Examples
    --------
    >>> store = Store.open("sqlite://")
    >>> _ = add_predictions(store, [{"request_id": f"r{i}", "model_name": "m", "version": i % 2,
    ...     "at": utcnow(), "features": {}, "output": {}} for i in range(8)])
    >>> [r.request_id for r in recent_predictions(store, "m", 1, up_to_id=6, limit=2)]
    ['r3', 'r5']
    >>> store.close()
    """
    query = (select(PredictionLogEntry)
             .where(PredictionLogEntry.model_name == model_name,
                    PredictionLogEntry.version == version, PredictionLogEntry.id <= up_to_id)
             .order_by(PredictionLogEntry.id.desc()).limit(limit))
    with store.session(write=False) as session:
        rows = list(session.scalars(query))
    return [PredictionRow(r.id, r.request_id, r.model_name, r.version, r.at, r.features,
                          r.output) for r in reversed(rows)]


def labels_for(store: Store, request_ids: Sequence[str]) -> dict[str, Any]:
    """The newest feedback label of each request id that has one.

    Examples
    --------
    >>> store = Store.open("sqlite://")
    >>> _ = add_feedback(store, [("a", 1), ("b", 0), ("a", 0)])
    >>> labels_for(store, ["a", "b", "c"])
    {'a': 0, 'b': 0}
    >>> store.close()
    """
    out: dict[str, Any] = {}
    ids = list(request_ids)
    with store.session(write=False) as session:
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 900]
            rows = session.execute(
                select(FeedbackEntry.request_id, FeedbackEntry.label)
                .where(FeedbackEntry.request_id.in_(chunk)).order_by(FeedbackEntry.id))
            for request_id, label in rows:
                out[request_id] = label
    return out


def count_predictions(store: Store) -> int:
    """How many rows the prediction log holds."""
    with store.session(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(PredictionLogEntry)) or 0)


def add_feedback(store: Store, items: Iterable[tuple[str, Any]]) -> int:
    """Record ``(request_id, label)`` pairs of ground truth; returns how many."""
    now = utcnow()
    rows = [{"request_id": rid, "label": label, "at": now} for rid, label in items]
    if rows:
        with store.session() as session:
            session.execute(FeedbackEntry.__table__.insert(), rows)
    return len(rows)


def list_feedback(store: Store, *, limit: int = 1000) -> list[FeedbackRow]:
    """The newest ``limit`` feedback rows, oldest first."""
    with store.session(write=False) as session:
        rows = list(session.scalars(
            select(FeedbackEntry).order_by(FeedbackEntry.id.desc()).limit(limit)))
    return [FeedbackRow(r.id, r.request_id, r.label, r.at) for r in reversed(rows)]


def add_api_key(
    store: Store, name: str, role: str, *, prefix: str, key_sha256: str
) -> ApiKeyRecord:
    """Store a new key by the SHA-256 of its secret; ``name`` must be unused by active keys."""
    if role not in API_ROLES:
        raise UsageError(f"key role '{role}' is not one of {', '.join(API_ROLES)}.")
    if not name or len(name) > 128:
        raise UsageError(f"key name must be text of 1 to 128 characters, got {name!r}.")
    with store.session() as session:
        taken = session.scalar(
            select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
        if taken is not None:
            raise UsageError(f"an active key is already named '{name}'. Revoke it or pick "
                             "another name.")
        row = ApiKey(name=name, prefix=prefix, key_sha256=key_sha256, role=role,
                     created_at=utcnow())
        session.add(row)
        session.flush()
        return _key_record(row)


def list_api_keys(store: Store, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """Every key (active only unless ``include_revoked``), oldest first."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with store.session(write=False) as session:
        return [_key_record(r) for r in session.scalars(query)]


def find_api_key(store: Store, key_sha256: str) -> ApiKeyRecord | None:
    """The active key whose secret hashes to ``key_sha256``, or None."""
    with store.session(write=False) as session:
        row = session.scalar(select(ApiKey).where(
            ApiKey.key_sha256 == key_sha256, ApiKey.revoked_at.is_(None)))
        return None if row is None else _key_record(row)


def revoke_api_key(store: Store, name_or_prefix: str) -> ApiKeyRecord:
    """Revoke the active key with this name or prefix."""
    with store.session() as session:
        row = session.scalar(select(ApiKey).where(
            (ApiKey.name == name_or_prefix) | (ApiKey.prefix == name_or_prefix),
            ApiKey.revoked_at.is_(None)))
        if row is None:
            raise NotFoundError(f"no active key named or prefixed '{name_or_prefix}'. "
                                "List them with `driftloop keys list`.")
        row.revoked_at = utcnow()
        session.flush()
        return _key_record(row)


def _key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.prefix, row.role, row.created_at, row.revoked_at)


__all__ = [
    "API_ROLES",
    "ApiKeyRecord",
    "FeedbackRow",
    "PredictionRow",
    "add_api_key",
    "add_feedback",
    "add_predictions",
    "count_predictions",
    "find_api_key",
    "list_api_keys",
    "list_feedback",
    "labels_for",
    "list_predictions",
    "predictions_after",
    "recent_predictions",
    "revoke_api_key",
]
