"""The auth matrix: no key / predict key / admin key × every endpoint, before and after keys
exist; keys are stored hashed and their creation and revocation audited."""

from __future__ import annotations

from collections.abc import Iterator
from unittest.mock import ANY

import httpx
import pytest
from sqlalchemy import select

from driftloop.serve.auth import create_key, hash_key, list_keys, revoke_key
from driftloop.store.tables import ApiKey

from .conftest import MODEL, Served, instances, own_copy, start_server

pytestmark = pytest.mark.slow
OPEN, PREDICT, FEEDBACK, ADMIN = "open", "predict", "feedback", "admin"


@pytest.fixture(scope="module")
def own_store(served_model: Served, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[Served]:
    """The served model in a store of its own (the matrix creates keys)."""
    copy = own_copy(served_model, tmp_path_factory.mktemp("auth-home"), request,
                    "the auth matrix's own store")
    yield copy
    copy.registry.close()


@pytest.fixture(scope="module")
def server(own_store: Served) -> Iterator[str]:
    srv = start_server(own_store)
    yield srv.url
    srv.stop()


def _calls(frame) -> dict[str, tuple[str, str, object]]:
    row = instances(frame.iloc[:1])
    v2 = [{"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in row[0].items()]
    return {
        "predict": ("POST", f"/v1/models/{MODEL}/predict", {"instances": row}),
        "infer": ("POST", f"/v2/models/{MODEL}/infer", {"inputs": v2}),
        "feedback": ("POST", "/v1/feedback", {"request_id": "r1", "label": 1}),
        "reload": ("POST", "/v1/admin/reload", None),
        "live": ("GET", "/v2/health/live", None),
        "ready": ("GET", "/v2/health/ready", None),
        "metrics": ("GET", "/metrics", None),
    }


NEEDS = {"predict": PREDICT, "infer": PREDICT, "feedback": FEEDBACK, "reload": ADMIN,
         "live": OPEN, "ready": OPEN, "metrics": OPEN}


def _status(url: str, call: tuple[str, str, object], key: str | None) -> int:
    method, path, body = call
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, url + path, json=body, headers=headers).status_code


def test_auth_matrix(server: str, own_store: Served):
    registry = own_store.registry
    calls = _calls(own_store.frame)
    # feedback needs a request id a prediction returned (an unknown one is a 404)
    rid = httpx.post(server + calls["predict"][1], json=calls["predict"][2]).json()["request_id"]
    calls["feedback"] = ("POST", "/v1/feedback", {"request_id": rid, "label": 1})
    # no key exists yet: predictions are open, admin is not
    for name, call in calls.items():
        expected = 401 if NEEDS[name] == ADMIN else (202 if name == "feedback" else 200)
        assert _status(server, call, None) == expected, name
    predict = create_key(registry.store, registry.audit, "app", "predict", actor="test")
    labels = create_key(registry.store, registry.audit, "labeller", "feedback", actor="test")
    reader = create_key(registry.store, registry.audit, "analyst", "read", actor="test")
    admin = create_key(registry.store, registry.audit, "ops", "admin", actor="test")
    try:
        for name, call in calls.items():
            ok = 202 if name == "feedback" else 200
            need = NEEDS[name]
            assert _status(server, call, None) == (ok if need == OPEN else 401), name
            for key, role in ((predict, PREDICT), (labels, FEEDBACK), (reader, "read")):
                expected = ok if need in (OPEN, role) else 403
                assert _status(server, call, key.secret) == expected, (name, role)
            assert _status(server, call, admin.secret) == ok, name
            assert _status(server, call, "dl_bogus_key") == (ok if need == OPEN else 401), name
        header = httpx.post(server + calls["predict"][1], json=calls["predict"][2],
                            headers={"X-API-Key": predict.secret})
        assert header.status_code == 200
        # stored hashed, never the secret
        with registry.store.session(write=False) as s:
            stored = {r.key_sha256 for r in s.scalars(select(ApiKey))}
        assert hash_key(predict.secret) in stored and predict.secret not in str(stored)
    finally:
        for name in ("app", "labeller", "analyst", "ops"):
            revoke_key(registry.store, registry.audit, name, actor="test")
    assert list_keys(registry.store) == []
    assert _status(server, calls["predict"], None) == 401  # no keys left: closed for good
    assert _status(server, calls["predict"], predict.secret) == 401  # revoked stays refused
    actions = [e.action for e in registry.audit.entries() if e.subject.startswith("api_key:")]
    assert actions == ["key_created"] * 4 + ["key_revoked"] * 4
    assert not any(predict.secret in str(e.details) for e in registry.audit.entries())


def test_the_openapi_spec_declares_both_ways_to_send_a_key(server: str):
    spec = httpx.get(server + "/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {"type": "http", "scheme": "bearer", "description": ANY}
    assert schemes["apiKeyHeader"]["in"] == "header"
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    predict = spec["paths"]["/v1/models/{name}/predict"]["post"]
    assert {"bearerKey": []} in predict["security"]
    assert {"apiKeyHeader": []} in predict["security"]
    assert "security" not in spec["paths"]["/v2/health/ready"]["get"]


def test_a_flood_of_one_bogus_key_costs_one_lookup_per_cache_period(own_store: Served):
    """A bogus key is looked up once, then refused from the cache (the check never queries
    the store on the event loop for it again within serve.key_cache_s)."""
    from driftloop.http import KeyChecker

    store = own_store.registry.store
    checker = KeyChecker(store, cache_s=60.0)
    lookups = []
    original = store.find_api_key
    store.find_api_key = lambda digest: lookups.append(digest) or original(digest)
    try:
        assert checker.decide("dl_bogus_x", "predict") is None  # first time: must look up
        assert checker.allows("dl_bogus_x", "predict") is False
        assert all(checker.decide("dl_bogus_x", "predict") is False for _ in range(1000))
    finally:
        del store.find_api_key
    assert len(lookups) == 1
