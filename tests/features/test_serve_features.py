"""Serving by entity key on a real loopback server: a version trained with a feature view
answers a request that carries only the entity id (and the request-time features) exactly as
it answers the same request with the features spelled out; a missing entity, or one whose
online value is older than the view's TTL, is refused with a 422 naming it (or imputed); the
prediction log keeps the features used, the entity's keyed hash and the view version."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.data.hashing import hash_value
from driftloop.features.materialize import materialize
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from driftloop.store.secrets import pii_key
from pg_server import store_overrides

MODEL = "churn"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
FRESH, STALE = 50, 10  # customers whose latest value is within the 7-day TTL, and older


@dataclass
class Trained:
    settings: Settings
    registry: Registry
    latest: pd.DataFrame  # the latest source row of each customer, by customer_id


def _source(folder) -> pd.DataFrame:
    """Three values per customer, a day apart; the stale customers' last one is 9 days old."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(FRESH + STALE):
        last = NOW - timedelta(days=9 if c >= FRESH else 1)
        for k in range(3):
            event = last - timedelta(days=2 - k)
            rows.append({"customer_id": f"c-{c}", "ts": event.isoformat(),
                         "cr": (event + timedelta(minutes=5)).isoformat(),
                         "spend": float(np.round(rng.normal(50 + c, 10), 2)),
                         "band": str(rng.choice(["low", "mid", "high"]))})
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "stats.csv", index=False)
    return frame


def _rows(source: pd.DataFrame) -> pd.DataFrame:
    """Training rows: each an hour after one of the source's values, with a label that
    depends on the looked-up features and a request-time feature."""
    rng = np.random.default_rng(1)
    times = pd.to_datetime(source["ts"], utc=True) + pd.Timedelta(hours=1)
    rows = pd.DataFrame({"customer_id": source["customer_id"], "at": times,
                         "age": rng.integers(18, 80, len(source)).astype(float)})
    rows = pd.concat([rows] * 3, ignore_index=True)
    rows["age"] = rng.integers(18, 80, len(rows)).astype(float)
    spend = pd.concat([source["spend"]] * 3, ignore_index=True)
    band = pd.concat([source["band"]] * 3, ignore_index=True)
    rows["label"] = np.where((spend > 70) ^ (band == "high") ^ (rows["age"] > 50), "yes", "no")
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request) -> Trained:
    from driftloop.train.launcher import train

    home = tmp_path_factory.mktemp("features-serve")
    source = _source(home)
    features = {"entities": [{"name": "customer", "keys": ["customer_id"]}],
                "views": [{"name": "stats", "entity": "customer",
                           "source": str(home / "stats.csv"), "event_time": "ts",
                           "created_time": "cr", "ttl": "7d", "features": ["spend", "band"]}]}
    settings = Settings.load(overrides={"home": str(home), "train": {"patience": 100},
                                        "features": features, **store_overrides(request)},
                             environ={}, cwd=home)
    rows = _rows(source)
    rows.to_csv(home / "rows.csv", index=False)
    train(str(home / "rows.csv"), "label", workers=1, epochs=3, batch_size=32,
          settings=settings, progress=False, name=MODEL, features=["stats"],
          time_column="at")
    registry = Registry.open(settings)
    registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
    key = pii_key(settings.serve.pii_hash_key, registry.artifacts)
    materialize(registry.store, settings, actor="test", key=key)
    latest = source.groupby("customer_id").tail(1).set_index("customer_id")
    return Trained(settings, registry, latest)


@contextlib.contextmanager
def _server(trained: Trained, **features: Any) -> Iterator[BackgroundServer]:
    """A real server on a loopback port, ready, with ``features`` settings changed."""
    registry = _registry(trained, **features)
    cfg = registry.settings.serve.model_copy(update={"log_flush_ms": 50.0})
    with BackgroundServer(create_app(registry, [MODEL], cfg)) as server:
        yield server.wait_ready()


def _registry(trained: Trained, **features: Any) -> Registry:
    """The trained registry, with ``features`` settings changed (same store and artifacts)."""
    registry = trained.registry
    if not features:
        return registry
    changed = registry.settings.features.model_copy(update=features)
    return Registry(registry.store, registry.artifacts, registry.audit,
                    registry.settings.model_copy(update={"features": changed}))


def _predict(server: BackgroundServer, instances: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{MODEL}/predict", json={"instances": instances},
                      timeout=30)


def _spelled(trained: Trained, customer: str, age: float) -> dict[str, Any]:
    row = trained.latest.loc[customer]
    return {"age": age, "spend": float(row["spend"]), "band": row["band"]}


def test_only_the_entity_id_gets_the_prediction_of_the_features_spelled_out(trained):
    with _server(trained) as server:
        by_key = _predict(server, [{"customer_id": "c-3", "age": 40.0},
                                   {"customer_id": "c-17", "age": 65.0}])
        spelled = _predict(server, [_spelled(trained, "c-3", 40.0),
                                    _spelled(trained, "c-17", 65.0)])
        # a spelled-out instance may carry its entity key too: the key is dropped, not a feature
        with_key = _predict(server, [{**_spelled(trained, "c-3", 40.0), "customer_id": "c-3"}])
        alone = _predict(server, [_spelled(trained, "c-3", 40.0)])  # the same batch shape
        # an instance that spells a view feature out keeps its own value
        mixed = _predict(server, [{"customer_id": "c-3", "age": 40.0, "spend": 1000.0}])
        by_value = _predict(server, [{**_spelled(trained, "c-3", 40.0), "spend": 1000.0}])
    assert by_key.status_code == spelled.status_code == 200, by_key.text
    assert by_key.json()["predictions"] == spelled.json()["predictions"]
    assert by_key.json()["probabilities"] == spelled.json()["probabilities"]
    assert with_key.status_code == 200, with_key.text
    assert with_key.json()["probabilities"] == alone.json()["probabilities"]
    assert mixed.json()["probabilities"] == by_value.json()["probabilities"]
    assert mixed.json()["probabilities"] != by_key.json()["probabilities"][:1]


def test_the_log_keeps_the_features_used_the_entity_hash_and_the_view_version(trained):
    with _server(trained) as server:
        answer = _predict(server, [{"customer_id": "c-5", "age": 33.0}]).json()
    key = pii_key(trained.settings.serve.pii_hash_key, trained.registry.artifacts)
    subject = hash_value("c-5", key)
    store = trained.registry.store
    # the row is found by the entity's keyed hash, the very one the online table keeps it under
    assert answer["request_id"] in [r.request_id for r in store.log_rows_of_subjects([subject])]
    assert subject in store.online_features("stats", [subject])
    row = next(r for r in store.list_predictions(MODEL) if r.request_id == answer["request_id"])
    assert row.features == _spelled(trained, "c-5", 33.0)  # looked-up values; no key column
    assert row.output["feature_views"] == {"stats": 1}


def test_a_missing_entity_gets_a_422_naming_it_and_nothing_is_logged(trained):
    with _server(trained) as server:
        answer = _predict(server, [{"customer_id": "c-3", "age": 40.0},
                                   {"customer_id": "c-999", "age": 40.0}])
        no_key = _predict(server, [{"age": 40.0}])
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "feature_missing"
    assert "customer_id='c-999' has no value in feature view 'stats'" in error["message"]
    assert error["fields"] == ["customer_id"]
    assert no_key.status_code == 422 and no_key.json()["error"]["code"] == "missing_entity_key"
    key = pii_key(trained.settings.serve.pii_hash_key, trained.registry.artifacts)
    assert trained.registry.store.log_rows_of_subjects([hash_value("c-999", key)]) == []


def test_a_value_older_than_the_ttl_is_refused_or_imputed(trained):
    stale = f"c-{FRESH}"  # its latest value is 9 days old; the view's TTL is 7 days
    with _server(trained) as server:
        refused = _predict(server, [{"customer_id": stale, "age": 40.0}])
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "feature_stale"
    assert f"customer_id='{stale}'" in refused.json()["error"]["message"]
    with _server(trained, missing="impute") as server:
        imputed = _predict(server, [{"customer_id": stale, "age": 40.0}])
        nulls = _predict(server, [{"age": 40.0, "spend": None, "band": None}])
        stale_values = _predict(server, [_spelled(trained, stale, 40.0)])
    assert imputed.status_code == 200, imputed.text
    assert imputed.json()["probabilities"] == nulls.json()["probabilities"]
    assert imputed.json()["probabilities"] != stale_values.json()["probabilities"]


def test_the_same_answers_over_a_redis_online_store(trained, redis_url):
    registry = _registry(trained, online_url=redis_url)
    key = pii_key(registry.settings.serve.pii_hash_key, registry.artifacts)
    (run,) = materialize(registry.store, registry.settings, actor="test", key=key)
    assert (run.target, run.rows_written) == ("redis", FRESH + STALE)
    with _server(trained, online_url=redis_url) as server:
        by_key = _predict(server, [{"customer_id": "c-8", "age": 52.0}])
        spelled = _predict(server, [_spelled(trained, "c-8", 52.0)])
        missing = _predict(server, [{"customer_id": "c-404", "age": 52.0}])
    assert by_key.status_code == 200, by_key.text
    assert by_key.json()["probabilities"] == spelled.json()["probabilities"]
    assert missing.status_code == 422
    assert "customer_id='c-404' has no value" in missing.json()["error"]["message"]


def test_an_unreachable_online_store_is_a_503_and_spelled_out_requests_still_answer(trained):
    from pg_server import free_port

    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with _server(trained, online_url=down) as server:
        by_key = _predict(server, [{"customer_id": "c-3", "age": 40.0}])
        spelled = _predict(server, [_spelled(trained, "c-3", 40.0)])
    assert by_key.status_code == 503, by_key.text
    assert by_key.json()["error"]["code"] == "store_unavailable"
    assert "Retry-After" in by_key.headers
    assert spelled.status_code == 200
