"""Materialise feature views: write each entity's latest values into the online store.

``driftloop features materialize`` reads each view's source, keeps the rows newer than the last
run's watermark (incremental), reduces them to the latest row per entity — latest event time,
ties broken by the latest created time, then by the last row in source order, the same rule
as the point-in-time join — hashes the entity keys with the store's PII key (entity ids are
often personal data: only the keyed hash is stored, the same one serving looks up), and
upserts them where newer (:mod:`driftloop.features.online`). Each run is recorded (rows read
and written, the range) with an audit entry ``features_materialized``.

The watermark is the latest *created* (ingested) time read when the view has a created-time
column, otherwise the latest event time. Created time is the right one: a late-arriving row
may carry an old event time, and a watermark on event time would skip it for good; its
created time is new. (Without a created-time column such a row is only picked up by a run
``--since`` before its event time.) A run reads rows at or after the watermark — the rows of
the last instant again, which the newer-only upsert writes 0 times — so nothing that arrived
in the same instant as the last run's end is lost. Running twice on the same data therefore
writes 0 rows the second time and changes nothing. A new version of a view (its declaration
changed) starts again from the beginning.

Examples
--------
>>> import pandas as pd
>>> from datetime import datetime, timezone
>>> from driftloop.config import EntitySettings, FeatureViewSettings
>>> from driftloop.features.online import SqlOnlineStore
>>> from driftloop.store import Store
>>> entity = EntitySettings(name="customer", keys=["customer_id"])
>>> view = FeatureViewSettings(name="stats", entity="customer", source="unused.csv",
...                            event_time="ts", features=["spend"])
>>> table = pd.DataFrame({"customer_id": [1, 1, 2], "ts": ["2024-01-01", "2024-01-05",
...                       "2024-01-02"], "spend": [1.0, 5.0, 2.0]})
>>> with Store.open("sqlite://") as store:
...     online = SqlOnlineStore(store)
...     first = materialize_view(store, online, view, entity, 1, table, key="k", actor="ci")
...     again = materialize_view(store, online, view, entity, 1, table, key="k", actor="ci")
...     spend = sorted(r.values["spend"] for r in store.online_feature_rows("stats"))
>>> (first.rows_read, first.rows_written), (again.rows_read, again.rows_written), spend
((3, 2), (1, 0), [2.0, 5.0])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from driftloop.config import EntitySettings, FeatureViewSettings, Settings
from driftloop.data.hashing import hash_value
from driftloop.errors import DataError, NotFoundError, UsageError
from driftloop.features.online import OnlineStore, RedisOnlineStore, online_store
from driftloop.features.source import read_view_source
from driftloop.features.spec import entity_key_texts, spec_hash, view_spec
from driftloop.store import AuditLog, Store
from driftloop.store.records import MaterializationRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class MaterializeResult:
    """One view's run: the version, the watermark range, rows read (in range) and written."""

    view: str
    version: int
    since: datetime | None
    until: datetime
    rows_read: int
    rows_written: int
    target: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = None if self.since is None else self.since.isoformat()
        out["until"] = self.until.isoformat()
        return out


def materialize(store: Store, settings: Settings, views: Sequence[str] | None = None, *,
                since: datetime | None = None, actor: str, key: str,
                online: OnlineStore | None = None) -> list[MaterializeResult]:
    """Materialise ``views`` (default: every declared view) into the online store.

    Parameters
    ----------
    since
        Read the rows from this (created, else event) time on, instead of from the last
        run's watermark.
    key
        The store's PII key (:func:`driftloop.store.secrets.pii_key`): entity keys are
        stored as its keyed hash.
    online
        Where to write; default :func:`~driftloop.features.online.online_store` of settings.

    Every view must be registered (``driftloop features apply``) at its declared spec.
    """
    declared = [v.name for v in settings.features.views]
    names = list(views) if views else declared
    unknown = [n for n in names if n not in declared]
    if unknown:
        raise UsageError(f"no feature view {', '.join(map(repr, unknown))} is declared; "
                         f"declared: {', '.join(declared) or 'none'} (features.views).")
    target = online or online_store(settings, store)
    results = []
    try:
        for name in names:
            view = settings.features.view(name)
            entity = settings.features.entity(view.entity)
            version = registered_version(store, settings, name)
            table = read_view_source(view, entity, settings.store_url).table
            results.append(materialize_view(store, target, view, entity, version, table,
                                            key=key, since=since, actor=actor))
    finally:
        if online is None and isinstance(target, RedisOnlineStore):
            target.close()
    return results


def registered_version(store: Store, settings: Settings, name: str) -> int:
    """The registered version of view ``name`` whose spec is the declared one."""
    wanted = spec_hash(view_spec(settings.features, name))
    versions = store.feature_view_versions(name)
    match = next((v for v in versions if v.spec_hash == wanted), None)
    if match is None:
        what = "is not registered" if not versions else "changed since it was registered"
        raise NotFoundError(f"feature view '{name}' {what}; run `driftloop features apply` "
                            "first, then materialize.")
    return int(match.version)


def _datetimes(column: pd.Series) -> list[datetime]:
    """Python datetimes of a datetime column (its ``.dt.to_pydatetime()`` warns on pandas 2.2
    and changes its return type later)."""
    return [t.to_pydatetime() for t in column]


def materialize_view(store: Store, online: OnlineStore, view: FeatureViewSettings,
                     entity: EntitySettings, version: int, table: Any, *, key: str, actor: str,
                     since: datetime | None = None) -> MaterializeResult:
    """Materialise one view's source ``table`` (a DataFrame or Arrow table) at ``version``."""
    frame = table if isinstance(table, pd.DataFrame) else table.to_pandas()
    event = _utc(frame[view.event_time], view.name, view.event_time)
    created = (None if view.created_time is None
               else _utc(frame[view.created_time], view.name, view.created_time))
    mark = created if created is not None else event
    last = store.last_materialization(view.name, target=online.target)
    start = since if since is not None else (
        last.until if last is not None and last.view_version == version else None)
    texts = pd.Series(entity_key_texts(frame, entity.keys), index=frame.index)
    usable = event.notna() & mark.notna() & texts.notna()
    if start is not None:
        usable &= mark >= pd.Timestamp(start)
    picked = pd.DataFrame({"text": texts[usable], "event": event[usable],
                           "created": mark[usable] if created is not None else event[usable]})
    # latest event time, then created time; the stable sort keeps source order among equals,
    # so the last row of a tie wins, as in the point-in-time join
    latest = picked.sort_values(["event", "created"], kind="stable").drop_duplicates(
        "text", keep="last")
    values = _json_records(frame.loc[latest.index, view.features])
    rows = [{"entity_hash": hash_value(text, key), "values": vals, "event_time": ev,
             "created_time": cr if created is not None else None}
            for text, ev, cr, vals in zip(latest["text"], _datetimes(latest["event"]),
                                          _datetimes(latest["created"]), values, strict=True)]
    written = online.write(view.name, version, rows)
    until = (mark[usable].max().to_pydatetime() if bool(usable.any())
             else (start or _EPOCH))
    record = store.record_materialization(
        view.name, version, since=start, until=until, rows_read=int(usable.sum()),
        rows_written=written, target=online.target, actor=actor,
        audit=_audit(store, actor))
    return MaterializeResult(view.name, version, record.since, record.until, record.rows_read,
                             record.rows_written, record.target)


def _audit(store: Store, actor: str) -> Any:
    log = AuditLog(store)

    def append(session: Any, run: MaterializationRecord) -> object:
        return log.append_in(session, actor, "features_materialized",
                             f"feature_view:{run.view_name}", {
                                 "version": run.view_version, "target": run.target,
                                 "since": None if run.since is None else run.since.isoformat(),
                                 "until": run.until.isoformat(), "rows_read": run.rows_read,
                                 "rows_written": run.rows_written})
    return append


def _utc(column: pd.Series, view: str, name: str) -> pd.Series:
    """A time column as UTC timestamps (naive times are UTC), or one clear DataError."""
    try:
        return pd.to_datetime(column, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"feature view '{view}': column '{name}' holds a value that is not a "
                        f"time ({exc}); write times as ISO 8601 (2024-01-31T12:00:00Z).") from None


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values (NaN -> None, numpy scalars -> Python, times -> ISO text)."""
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


__all__ = ["MaterializeResult", "materialize", "materialize_view", "registered_version"]
