"""The auth matrix: no key / predict key / admin key × every endpoint, before and after keys
exist; keys are stored hashed and their creation and revocation audited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.serve.auth import create_key, hash_key, list_keys, revoke_key
from driftloop.store.tables import ApiKey
from pg_server import store_overrides

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow
OPEN, PREDICT, ADMIN = "open", "predict", "admin"


@pytest.fixture(scope="module")
def own_store(served_model: Served, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> Iterator[Served]:
    """The served model in a store of its own: once a key was created, a store stays closed
    for good, so the matrix must not close the session's shared store."""
    home = tmp_path_factory.mktemp("auth-home")
    settings = Settings.load(overrides={"home": str(home), **store_overrides(request)},
                             environ={}, cwd=home)
    registry = Registry.open(settings)
    source = served_model.registry
    record = source.get(MODEL, 1)
    registry.register(MODEL, run_id=None, bundle=source.bundle(record),
                      weights=source.artifacts.get_bytes(record.weights_sha256), metrics={},
                      actor="test", reason="the auth matrix's own store")
    registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
    yield Served(settings, registry, served_model.frame, served_model.target)
    registry.close()


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


NEEDS = {"predict": PREDICT, "infer": PREDICT, "feedback": PREDICT, "reload": ADMIN,
         "live": OPEN, "ready": OPEN, "metrics": OPEN}


def _status(url: str, call: tuple[str, str, object], key: str | None) -> int:
    method, path, body = call
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, url + path, json=body, headers=headers).status_code


def test_auth_matrix(server: str, own_store: Served):
    registry = own_store.registry
    calls = _calls(own_store.frame)
    # no key exists yet: predictions are open, admin is not
    for name, call in calls.items():
        expected = 401 if NEEDS[name] == ADMIN else (202 if name == "feedback" else 200)
        assert _status(server, call, None) == expected, name
    predict = create_key(registry.store, registry.audit, "app", "predict", actor="test")
    admin = create_key(registry.store, registry.audit, "ops", "admin", actor="test")
    try:
        for name, call in calls.items():
            ok = 202 if name == "feedback" else 200
            need = NEEDS[name]
            assert _status(server, call, None) == (ok if need == OPEN else 401), name
            assert _status(server, call, predict.secret) == (403 if need == ADMIN else ok), name
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
        revoke_key(registry.store, registry.audit, "app", actor="test")
        revoke_key(registry.store, registry.audit, "ops", actor="test")
    assert list_keys(registry.store) == []
    assert _status(server, calls["predict"], None) == 401  # no keys left: closed for good
    assert _status(server, calls["predict"], predict.secret) == 401  # revoked stays refused
    actions = [e.action for e in registry.audit.entries() if e.subject.startswith("api_key:")]
    assert actions == ["key_created", "key_created", "key_revoked", "key_revoked"]
    assert not any(predict.secret in str(e.details) for e in registry.audit.entries())
