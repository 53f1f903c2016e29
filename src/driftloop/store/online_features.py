"""The online feature table and its materialisation runs (a :class:`~driftloop.store.Store` mixin).

``feature_online`` holds the latest values of each view per entity, keyed by the entity's keyed
hash. :meth:`OnlineFeatureQueries.write_online_features` upserts in bulk and only overwrites a
row with a *newer* one (a later event time, or the same event time and a later created time),
in the database itself (``INSERT … ON CONFLICT DO UPDATE … WHERE newer``, on SQLite and
PostgreSQL alike), so writing the same rows twice changes nothing and reports 0 written, and two
writers racing on one entity keep the newest value whatever their order.

Examples
--------
>>> from datetime import datetime, timezone
>>> from driftloop.store import Store
>>> t1, t2 = (datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2))
>>> with Store.open("sqlite://") as store:
...     row = {"entity_hash": "e1", "values": {"spend": 3.0}, "event_time": t2,
...            "created_time": None}
...     first = store.write_online_features("stats", 1, [row])
...     again = store.write_online_features("stats", 1, [row])
...     older = store.write_online_features("stats", 1, [{**row, "event_time": t1,
...                                                      "values": {"spend": 1.0}}])
...     first, again, older, store.online_features("stats", ["e1", "e2"])["e1"].values
(1, 0, 0, {'spend': 3.0})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import MaterializationRecord, OnlineFeatureRecord, record_from
from driftloop.store.tables import FeatureMaterialization, OnlineFeatureRow

MaterializationHook = Callable[[Session, MaterializationRecord], object]
"""Called inside :meth:`OnlineFeatureQueries.record_materialization`'s transaction (the audit
entry of the run)."""

_BATCH = 5000  # rows per INSERT … ON CONFLICT transaction
_LOOKUP = 500  # entity hashes per IN (…) query


class OnlineFeatureQueries(StoreCore):
    """The online feature table and the materialisation runs (a :class:`Store` mixin)."""

    def write_online_features(self, view_name: str, view_version: int,
                              rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert ``rows`` (``entity_hash``, ``values``, ``event_time``, ``created_time``) of
        one view; returns how many were inserted or overwritten.

        A stored row is overwritten only by a newer one (later event time; at the same event
        time, a later created time), so writing the same rows again writes 0. Several rows of
        one entity in ``rows``: the newest is kept (the last of equals)."""
        _require_text("view_name", view_name, max_len=64)
        latest = _newest_per_entity(rows)
        written = 0
        now = utcnow()
        for start in range(0, len(latest), _BATCH):
            chunk = [{"view_name": view_name, "view_version": view_version,
                      "entity_hash": r["entity_hash"], "values": dict(r["values"]),
                      "event_time": r["event_time"], "created_time": r.get("created_time"),
                      "materialized_at": now} for r in latest[start:start + _BATCH]]
            with self.session() as session:
                written += len(session.execute(self._upsert(session), chunk).all())
        return written

    def _upsert(self, session: Session) -> Any:
        """``INSERT … ON CONFLICT (view_name, entity_hash) DO UPDATE … WHERE newer RETURNING
        id``: the rows RETURNING gives back are those inserted or overwritten."""
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = OnlineFeatureRow.__table__
        stmt = insert(table)
        new = stmt.excluded
        newer = or_(
            new.event_time > table.c.event_time,
            and_(new.event_time == table.c.event_time, new.created_time.is_not(None),
                 or_(table.c.created_time.is_(None), new.created_time > table.c.created_time)),
        )
        return stmt.on_conflict_do_update(
            index_elements=[table.c.view_name, table.c.entity_hash],
            set_={"view_version": new.view_version, "values": new["values"],
                  "event_time": new.event_time, "created_time": new.created_time,
                  "materialized_at": new.materialized_at},
            where=newer,
        ).returning(table.c.id)

    def online_features(self, view_name: str,
                        hashes: Iterable[str]) -> dict[str, OnlineFeatureRecord]:
        """The stored row of each entity hash of ``view_name`` that has one (others are left
        out), in one query per 500 hashes."""
        wanted = list(dict.fromkeys(h for h in hashes if h is not None))
        found: dict[str, OnlineFeatureRecord] = {}
        table = OnlineFeatureRow.__table__
        columns = [table.c[f.name] for f in fields(OnlineFeatureRecord)]
        with self.session(write=False) as session:
            for start in range(0, len(wanted), _LOOKUP):
                query = select(*columns).where(
                    table.c.view_name == view_name,
                    table.c.entity_hash.in_(wanted[start:start + _LOOKUP]))
                # plain rows, not ORM objects copied into records: this is serving's hot path,
                # and each row's values are a fresh dict decoded from JSON, shared with nobody
                for row in session.execute(query):
                    found[row.entity_hash] = OnlineFeatureRecord(*row)
        return found

    def online_feature_rows(self, view_name: str) -> list[OnlineFeatureRecord]:
        """Every stored row of ``view_name``, by entity hash (for checks and erasure)."""
        query = (select(OnlineFeatureRow).where(OnlineFeatureRow.view_name == view_name)
                 .order_by(OnlineFeatureRow.entity_hash))
        with self.session(write=False) as session:
            return [record_from(OnlineFeatureRecord, r) for r in session.scalars(query)]

    def count_online_features(self, view_name: str) -> int:
        """How many entities ``view_name`` has a row for."""
        query = select(func.count()).select_from(OnlineFeatureRow).where(
            OnlineFeatureRow.view_name == view_name)
        with self.session(write=False) as session:
            return int(session.scalar(query) or 0)

    def record_materialization(
        self, view_name: str, view_version: int, *, since: datetime | None, until: datetime,
        rows_read: int, rows_written: int, target: str, actor: str,
        audit: MaterializationHook | None = None,
    ) -> MaterializationRecord:
        """Record one materialisation run (``audit(session, record)`` in the same
        transaction: the run and its audit entry are stored together or not at all)."""
        _require_text("view_name", view_name, max_len=64)
        _require_text("actor", actor, max_len=128)
        if target not in ("sql", "redis"):
            raise ValueError(f"target must be 'sql' or 'redis', got {target!r}")

        def work(session: Session) -> MaterializationRecord:
            row = FeatureMaterialization(
                view_name=view_name, view_version=view_version, since=since, until=until,
                rows_read=rows_read, rows_written=rows_written, target=target, actor=actor,
                at=utcnow())
            session.add(row)
            session.flush()
            record = record_from(MaterializationRecord, row)
            if audit is not None:
                audit(session, record)
            return record

        return self.transact(work)

    def last_materialization(self, view_name: str,
                             target: str | None = None) -> MaterializationRecord | None:
        """The latest materialisation run of ``view_name`` (into ``target``), or None."""
        query = select(FeatureMaterialization).where(
            FeatureMaterialization.view_name == view_name)
        if target is not None:
            query = query.where(FeatureMaterialization.target == target)
        query = query.order_by(FeatureMaterialization.id.desc()).limit(1)
        with self.session(write=False) as session:
            row = session.scalar(query)
            return None if row is None else record_from(MaterializationRecord, row)

    def materializations(self, view_name: str) -> list[MaterializationRecord]:
        """Every materialisation run of ``view_name``, oldest first."""
        query = (select(FeatureMaterialization)
                 .where(FeatureMaterialization.view_name == view_name)
                 .order_by(FeatureMaterialization.id))
        with self.session(write=False) as session:
            return [record_from(MaterializationRecord, r) for r in session.scalars(query)]


def _newest_per_entity(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per entity hash: the latest event time, then created time, then the last.

    (One INSERT … ON CONFLICT may not touch a row twice on PostgreSQL, so duplicates go
    first.)"""
    best: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = row["entity_hash"]
        held = best.get(key)
        if held is None or _order(row) >= _order(held):
            best[key] = row
    return list(best.values())


def _order(row: Mapping[str, Any]) -> tuple[datetime, bool, datetime]:
    created = row.get("created_time")
    return (row["event_time"], created is not None, created or row["event_time"])


__all__ = ["MaterializationHook", "OnlineFeatureQueries"]
