"""Materialisation into the online store (the store's database and a real Redis): idempotent,
incremental on the created-time watermark, newer-only, recorded and audited; lookups by entity
key honour the TTL (refused or imputed, never stale)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from driftloop.config import EntitySettings, FeatureViewSettings, Settings
from driftloop.data.hashing import hash_value
from driftloop.errors import ConfigError
from driftloop.features.materialize import materialize_view
from driftloop.features.online import (
    OnlineStoreUnavailable,
    RedisOnlineStore,
    SqlOnlineStore,
    online_store,
)
from driftloop.features.source import read_view_source
from driftloop.features.spec import FeatureUse, entity_key_text
from driftloop.serve.entity_features import FeatureLookup
from driftloop.serve.validation import RequestInvalid
from driftloop.store import AuditLog, Store

KEY = "0" * 64
ENTITY = EntitySettings(name="customer", keys=["customer_id"])
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def _iso(t: datetime) -> str:
    return t.isoformat()


def _view(source, **extra) -> FeatureViewSettings:
    return FeatureViewSettings(name="stats", entity="customer", source=str(source),
                               event_time="ts", created_time="cr", features=["spend", "band"],
                               **extra)


def _first_batch(folder) -> pd.DataFrame:
    """Three customers; c-1 twice (the later event wins), c-2 with two rows of one event time
    (the later created time wins)."""
    frame = pd.DataFrame({
        "customer_id": ["c-1", "c-1", "c-2", "c-2", "c-3"],
        "ts": [_iso(T0), _iso(T0 + timedelta(days=2)), _iso(T0), _iso(T0), _iso(T0)],
        "cr": [_iso(T0 + timedelta(hours=1)), _iso(T0 + timedelta(days=2, hours=1)),
               _iso(T0 + timedelta(hours=1)), _iso(T0 + timedelta(hours=3)),
               _iso(T0 + timedelta(hours=2))],
        "spend": [1.0, 2.0, 5.0, 6.0, None],
        "band": ["low", "mid", "high", "low", "mid"],
    })
    frame.to_csv(folder / "a.csv", index=False)
    return frame


@pytest.fixture(params=["sql", "redis"])
def online(request, store_url):
    """(store, online store) on the store's database (SQLite or PostgreSQL) and on Redis."""
    store = Store.open(store_url)
    if request.param == "sql":
        target = SqlOnlineStore(store)
    else:
        target = RedisOnlineStore(request.getfixturevalue("redis_url"))
    yield store, target
    if isinstance(target, RedisOnlineStore):
        target.close()
    store.close()


def _table(store, target) -> dict:
    """Everything stored for view 'stats': hash -> (version, values, event, created, at)."""
    rows = (target.rows("stats") if isinstance(target, RedisOnlineStore)
            else {r.entity_hash: r for r in store.online_feature_rows("stats")})
    return {h: (r.view_version, r.values, r.event_time, r.created_time, r.materialized_at)
            for h, r in rows.items()}


def _run(store, target, view, **kw):
    table = read_view_source(view, ENTITY).table
    return materialize_view(store, target, view, ENTITY, 1, table, key=KEY, actor="test", **kw)


def _h(customer: str) -> str:
    return hash_value(entity_key_text([customer]), KEY)


def test_materialize_writes_the_latest_row_per_entity_and_twice_writes_nothing(online,
                                                                               tmp_path):
    store, target = online
    _first_batch(tmp_path)
    view = _view(tmp_path)
    first = _run(store, target, view)
    assert (first.rows_read, first.rows_written, first.target) == (5, 3, target.target)
    table = _table(store, target)
    assert {h: v[1] for h, v in table.items()} == {
        _h("c-1"): {"spend": 2.0, "band": "mid"},  # the later event time
        _h("c-2"): {"spend": 6.0, "band": "low"},  # same event time: the later created time
        _h("c-3"): {"spend": None, "band": "mid"},  # missing stays missing
    }
    assert table[_h("c-1")][2] == T0 + timedelta(days=2)
    second = _run(store, target, view)
    assert second.rows_written == 0
    assert _table(store, target) == table  # not even materialized_at moved
    # from the start again (--since long ago): every row read, still nothing newer to write
    again = _run(store, target, view, since=T0 - timedelta(days=1))
    assert (again.rows_read, again.rows_written) == (5, 0)
    assert _table(store, target) == table


def test_materialize_is_incremental_on_the_created_time_watermark(online, tmp_path):
    store, target = online
    _first_batch(tmp_path)
    view = _view(tmp_path)
    first = _run(store, target, view)
    assert first.until == T0 + timedelta(days=2, hours=1)  # the latest created time read
    pd.DataFrame({
        "customer_id": ["c-2", "c-4", "c-1"],
        # c-4 arrives late: an old event time, created only now; c-1's row is an older event
        # than the one stored (back-filled history): it must not overwrite the newer value
        "ts": [_iso(T0 + timedelta(days=3)), _iso(T0 - timedelta(days=5)),
               _iso(T0 + timedelta(days=1))],
        "cr": [_iso(T0 + timedelta(days=3)), _iso(T0 + timedelta(days=4)),
               _iso(T0 + timedelta(days=4))],
        "spend": [7.0, 9.0, 0.5], "band": ["high", "low", "low"],
    }).to_csv(tmp_path / "b.csv", index=False)
    second = _run(store, target, view)
    # the three new rows, and the one row at the last watermark, read again on purpose
    assert (second.since, second.rows_read, second.rows_written) == (first.until, 4, 2)
    values = {h: v[1]["spend"] for h, v in _table(store, target).items()}
    assert values == {_h("c-1"): 2.0, _h("c-2"): 7.0, _h("c-3"): None, _h("c-4"): 9.0}
    runs = store.materializations("stats")
    assert [(r.rows_read, r.rows_written) for r in runs] == [(5, 3), (4, 2)]
    audited = [e for e in AuditLog(store).entries() if e.action == "features_materialized"]
    assert [e.details["rows_written"] for e in audited] == [3, 2]
    assert {e.subject for e in audited} == {"feature_view:stats"}


def test_a_bad_time_names_the_view_and_column(online, tmp_path):
    store, target = online
    pd.DataFrame({"customer_id": ["c-1"], "ts": ["not a time"], "cr": [_iso(T0)],
                  "spend": [1.0], "band": ["low"]}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(Exception, match="feature view 'stats': column 'ts'"):
        _run(store, target, _view(tmp_path))
    assert store.materializations("stats") == []


@pytest.mark.parametrize("missing", ["refuse", "impute"])
def test_a_value_older_than_the_ttl_is_refused_or_imputed_never_served_stale(online, missing):
    store, target = online
    now = datetime.now(timezone.utc)
    target.write("stats", 1, [
        {"entity_hash": _h("fresh"), "values": {"spend": 3.0}, "event_time": now -
         timedelta(hours=1), "created_time": None},
        {"entity_hash": _h("old"), "values": {"spend": 4.0}, "event_time": now -
         timedelta(days=3), "created_time": None}])
    use = FeatureUse("stats", 1, "0" * 64, "customer", ["customer_id"], "ts", ["spend"],
                     86_400)
    lookup = FeatureLookup([use], ["spend", "age"], target, key=KEY, missing=missing)
    fresh = lookup.fill([{"customer_id": "fresh", "age": 1}])
    assert fresh.instances == [{"spend": 3.0, "age": 1}]
    if missing == "refuse":
        with pytest.raises(RequestInvalid, match="customer_id='old'.*older than the view's TTL"
                           ) as stale:
            lookup.fill([{"customer_id": "fresh", "age": 1}, {"customer_id": "old", "age": 2}])
        assert (stale.value.status, stale.value.code) == (422, "feature_stale")
        with pytest.raises(RequestInvalid, match="customer_id='nobody' has no value") as gone:
            lookup.fill([{"customer_id": "nobody", "age": 2}])
        assert gone.value.code == "feature_missing"
    else:
        filled = lookup.fill([{"customer_id": "old", "age": 2}, {"customer_id": "nobody",
                                                                 "age": 3}])
        assert filled.instances == [{"spend": None, "age": 2}, {"spend": None, "age": 3}]
        assert filled.subjects == ["old", "nobody"]


def test_online_store_is_picked_by_url_and_an_open_remote_redis_is_refused(tmp_path):
    with Store.open("sqlite://") as store:
        assert isinstance(online_store(Settings(), store), SqlOnlineStore)
        for url, message in [("http://cache:80", "must be empty .* or a Redis URL"),
                             ("redis://cache.internal:6379/0", "not on loopback and has no "
                              "password")]:
            settings = Settings(features={"online_url": url})
            with pytest.raises(ConfigError, match=message):
                online_store(settings, store)
        remote = online_store(Settings(features={"online_url": "redis://:pw@cache:6379/0"}),
                              store)
        assert isinstance(remote, RedisOnlineStore)  # connects lazily: nothing reached yet
        remote.close()


def test_a_request_key_finds_the_source_key_whatever_its_json_type(online, tmp_path):
    store, target = online
    pd.DataFrame({"customer_id": [42, 7], "ts": [_iso(T0)] * 2, "cr": [_iso(T0)] * 2,
                  "spend": [4.2, 0.7], "band": ["low", "mid"]}).to_csv(tmp_path / "a.csv",
                                                                       index=False)
    _run(store, target, _view(tmp_path))  # the CSV's keys are read as integers
    use = FeatureUse("stats", 1, "0" * 64, "customer", ["customer_id"], "ts", ["spend"], None)
    lookup = FeatureLookup([use], ["spend"], target, key=KEY, missing="refuse")
    filled = lookup.fill([{"customer_id": 42}, {"customer_id": "42"}, {"customer_id": 7.0}])
    assert filled.instances == [{"spend": 4.2}, {"spend": 4.2}, {"spend": 0.7}]
    assert filled.subjects == ["42", "42", "7"]
    for bad, why in [({}, "got nothing"), ({"customer_id": [42]}, "got list"),
                     ({"customer_id": "  "}, "is blank")]:
        with pytest.raises(RequestInvalid, match=why) as refused:
            lookup.fill([bad])
        assert (refused.value.code, refused.value.fields) == ("missing_entity_key",
                                                              ["customer_id"])


def test_an_unreachable_redis_is_one_clear_error_naming_it_without_its_password(tmp_path):
    from pg_server import free_port

    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    target = RedisOnlineStore(url, timeout_s=0.5)
    for call in (lambda: target.read("stats", ["e1"]),
                 lambda: target.write("stats", 1, [{"entity_hash": "e1", "values": {},
                                                    "event_time": T0, "created_time": None}])):
        with pytest.raises(OnlineStoreUnavailable, match=r"redis://:\*\*\*@127\.0\.0\.1") as err:
            call()
        assert "s3cret" not in str(err.value)
    target.close()
