"""The skew check flags exactly the feature whose served value was computed differently.

A small classifier is trained through ``train()`` on three features of a feature view
(``spend``, ``orders``, ``tenure``), served with the real app on loopback, and sent requests that
carry each customer's id (``ids``, logged keyed-hashed) and the three features as the online
side computed them: ``orders`` and ``tenure`` as the view's source holds them, ``spend`` in a
different unit (× 1.1, a transform that diverged online). The prediction log the server wrote
is then compared with the point-in-time values of the view's source for the same customers
and times.

This is the path that needs no online store: the served features come with the request (the
version is a plain one, so the views are passed as ``uses``). The same comparison runs on the
rows of a version trained with ``--features`` whose features the server looked up (the
bundle's ``feature_views``).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.features.spec import FeatureUse, view_spec
from driftloop.monitor.skew import feature_skew, skew_of_windows
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from driftloop.store import utcnow

pytestmark = pytest.mark.slow

CUSTOMERS = 60
FEATURES = ["spend", "orders", "tenure"]


def _source(now: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """Three snapshots per customer (10 days, 5 days and 1 hour ago), created a minute after
    their event time, and one back-filled row per customer: event time 2 hours ago but
    created in the future, which no request may see (the leak guard)."""
    rng = np.random.default_rng(seed)
    parts = []
    for age in (timedelta(days=10), timedelta(days=5), timedelta(hours=1)):
        ts = now - age
        parts.append(pd.DataFrame({
            "customer_id": np.arange(CUSTOMERS), "ts": ts, "created": ts + timedelta(minutes=1),
            "spend": rng.gamma(2.0, 50.0, CUSTOMERS).round(2),
            "orders": rng.integers(0, 20, CUSTOMERS), "tenure": rng.normal(3, 1, CUSTOMERS)}))
    late = parts[-1].copy()
    late["ts"], late["created"] = now - timedelta(hours=2), now + timedelta(days=1)
    late[FEATURES] = late[FEATURES] * 0 + 999
    return pd.concat([*parts, late], ignore_index=True)


@pytest.fixture
def served(dl_settings: Settings, tmp_path) -> tuple[Settings, pd.DataFrame]:
    """A trained version, the view declared over its source, requests served and logged."""
    from driftloop.train.launcher import train

    now = pd.Timestamp(utcnow())
    source = _source(now)
    path = tmp_path / "stats.parquet"
    source.to_parquet(path)
    settings = dl_settings.model_copy(update={
        "features": type(dl_settings.features).model_validate({
            "entities": [{"name": "customer", "keys": ["customer_id"]}],
            "views": [{"name": "stats", "entity": "customer", "source": str(path),
                       "event_time": "ts", "created_time": "created", "ttl": "30d",
                       "features": FEATURES}]}),
        "serve": dl_settings.serve.model_copy(update={"log_flush_ms": 50.0})})
    rng = np.random.default_rng(1)
    table = pd.DataFrame({"spend": rng.gamma(2.0, 50.0, 300), "orders": rng.integers(0, 20, 300),
                          "tenure": rng.normal(3, 1, 300)})
    noise = rng.normal(0, 40, 300)
    table["y"] = (table["spend"] + 10 * table["orders"] + noise > 200).astype(int)
    train(table, "y", workers=1, epochs=2, batch_size=32, settings=settings, progress=False,
          name="churn")
    latest = source[source["created"] <= now].sort_values("ts").groupby("customer_id").last()
    online = latest.assign(spend=latest["spend"] * 1.1)  # the transform that diverged online
    with Registry.open(settings) as registry:
        registry.promote("churn", 1, to="production", force=True, reason="test bootstrap")
        app = create_app(registry, ["churn"], settings.serve)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
            server.wait_ready()
            for lo in range(0, CUSTOMERS, 20):
                chunk = online.iloc[lo:lo + 20]
                body: dict[str, Any] = {
                    "instances": [{f: _plain(row[f]) for f in FEATURES}
                                  for _, row in chunk.iterrows()],
                    "ids": [int(i) for i in chunk.index]}
                answer = http.post("/v1/models/churn/predict", json=body)
                assert answer.status_code == 200, answer.text
            # one request without ids: logged without a subject, counted, never compared
            first = {f: _plain(online.iloc[0][f]) for f in FEATURES}
            assert http.post("/v1/models/churn/predict",
                             json={"instances": [first]}).status_code == 200
            _wait_for_log(registry, CUSTOMERS + 1)
    return settings, latest


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _wait_for_log(registry: Registry, rows: int) -> None:
    for _ in range(400):
        if registry.store.count_predictions() >= rows:
            return
        time.sleep(0.05)
    raise AssertionError("the prediction log did not receive the rows")


def test_skew_flags_only_the_feature_computed_differently(served) -> None:
    settings, _ = served
    uses = [FeatureUse.of(view_spec(settings.features, "stats"), 1)]
    with Registry.open(settings) as registry:
        report = feature_skew(registry, settings, "churn", 1, uses=uses)
    assert report is not None
    assert report.flagged == ["spend"]
    by_name = {f.feature: f for f in report.features}
    assert report.rows == CUSTOMERS + 1 and report.rows_without_entity == 1
    assert by_name["spend"].differing == CUSTOMERS and by_name["spend"].share.low > 0.9
    # the others agree on every row: the back-filled 999s (created after the requests) and
    # the older snapshots never reached the offline values
    assert by_name["orders"].differing == 0 and by_name["tenure"].differing == 0
    assert by_name["orders"].compared == CUSTOMERS
    assert report.to_json()["features"][0]["flagged"] is True
    # a span before any request compares nothing and flags nothing; a version trained
    # without views has no skew to check
    with Registry.open(settings) as registry:
        earlier = feature_skew(registry, settings, "churn", 1, uses=uses,
                               until=utcnow() - timedelta(days=1))
        plain = feature_skew(registry, settings, "churn", 1)
    assert earlier is not None and earlier.rows == 0 and earlier.flagged == []
    assert all(f.share.low is None for f in earlier.features)
    assert plain is None


@pytest.mark.parametrize("online", ["sql", "redis"])
def test_monitor_flags_the_feature_the_online_table_computed_differently(
        dl_settings, tmp_path, request, online) -> None:
    """The whole path: train with ``--features``, materialise an online table (the store's
    database, or a real loopback Redis) whose ``spend`` was computed differently (× 1.1) while
    the view's source keeps the original, serve requests that carry only the customer id, then
    ``monitor``: its skew section and alert name ``spend`` and nothing else. A view that can no
    longer be read leaves a note instead of stopping the monitor."""
    from driftloop.features.materialize import materialize_view, registered_version
    from driftloop.features.online import online_store
    from driftloop.monitor.windows import monitor
    from driftloop.store.secrets import pii_key
    from driftloop.train.launcher import train

    now = pd.Timestamp(utcnow())
    source = _source(now)
    source.to_parquet(tmp_path / "stats.parquet")
    settings = dl_settings.updated({
        "features": {"entities": [{"name": "customer", "keys": ["customer_id"]}],
                     "views": [{"name": "stats", "entity": "customer",
                                "source": str(tmp_path / "stats.parquet"), "event_time": "ts",
                                "created_time": "created", "ttl": "30d",
                                "features": FEATURES}]},
        "serve": {"log_flush_ms": 50.0}, "monitor": {"window": str(CUSTOMERS)}})
    if online == "redis":
        settings = settings.updated({"features": {"online_url": request.getfixturevalue(
            "redis_url")}})
    rng = np.random.default_rng(2)
    rows = pd.DataFrame({"customer_id": rng.integers(0, CUSTOMERS, 300),
                         "at": now - pd.to_timedelta(rng.integers(2, 200, 300), unit="h")})
    rows["label"] = rng.integers(0, 2, 300)
    rows.to_parquet(tmp_path / "rows.parquet")
    train(str(tmp_path / "rows.parquet"), "label", features=["stats"], time_column="at",
          workers=1, epochs=2, batch_size=32, settings=settings, progress=False, name="churn")
    with Registry.open(settings) as registry:
        registry.promote("churn", 1, to="production", force=True, reason="test bootstrap")
        key = pii_key(settings.serve.pii_hash_key, registry.artifacts)
        view, entity = settings.features.view("stats"), settings.features.entity("customer")
        diverged = source.assign(spend=source["spend"] * 1.1)  # the online pipeline's unit
        materialize_view(registry.store, online_store(settings, registry.store), view, entity,
                         registered_version(registry.store, settings, "stats"), diverged,
                         key=key, actor="test")
        app = create_app(registry, ["churn"], settings.serve)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
            server.wait_ready()
            for lo in range(0, CUSTOMERS, 20):
                body = {"instances": [{"customer_id": c} for c in range(lo, lo + 20)]}
                answer = http.post("/v1/models/churn/predict", json=body)
                assert answer.status_code == 200, answer.text
            _wait_for_log(registry, CUSTOMERS)
        result = monitor("churn", settings=settings, registry=registry)
    assert len(result.windows) == 1
    [report] = result.skew
    assert report.flagged == ["spend"] and report.rows == CUSTOMERS
    assert {f.feature: f.differing for f in report.features} == {
        "spend": CUSTOMERS, "orders": 0, "tenure": 0}
    [alert] = [a for a in result.alerts if a.kind == "feature_skew"]
    assert "spend" in alert.message and "orders" not in alert.message
    assert result.to_json()["skew"][0]["flagged"] == ["spend"]

    (tmp_path / "stats.parquet").unlink()  # the source moved away
    with Registry.open(settings) as registry:
        [unread] = skew_of_windows(registry, settings, "churn", result.windows)
    assert unread.features == [] and unread.flagged == []
    assert "not checked" in unread.notes[0] and "stats.parquet" in unread.notes[0]
