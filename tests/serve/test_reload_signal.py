"""``POST /v1/admin/reload`` on one server reaches another on the same store (in one process:
two real uvicorn servers on loopback; the subprocess replicas behind haproxy are in
``test_replicas_integration.py``)."""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.auth import create_key
from driftloop.serve.server import BackgroundServer
from quick_model import register_quick
from serve_replicas import counter, table

POLL_S = 0.2


@pytest.fixture
def two_servers(dl_settings):
    registry = Registry.open(dl_settings)
    register_quick(registry, table(), "ages", with_profile=False)
    registry.promote("ages", 1, to="production", force=True, reason="test")
    admin = create_key(registry.store, registry.audit, "ops", "admin", actor="test").secret
    cfg = dl_settings.serve.model_copy(update={"poll_s": POLL_S, "key_cache_s": 0.0,
                                               "log_flush_ms": 50.0})
    servers = [BackgroundServer(create_app(registry, ["ages"], cfg.model_copy(
        update={"instance": name}))).start().wait_ready() for name in ("a", "b")]
    try:
        yield registry, admin, servers
    finally:
        for server in servers:
            server.stop()


def test_a_reload_on_one_server_reloads_the_other_within_poll_s(two_servers):
    registry, admin, (a, b) = two_servers
    assert counter(b.url, "driftloop_model_reloads_total", model="ages", trigger="signal") == 0
    answer = httpx.post(f"{a.url}/v1/admin/reload", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["replicas"] == "signalled" and body["replica"] == "a"
    assert body["models"]["ages"] == {"version": 1, "swapped": False, "generation": 1,
                                      "error": None}
    signalled = time.monotonic()
    while counter(b.url, "driftloop_model_reloads_total", model="ages", trigger="signal") < 1:
        assert time.monotonic() - signalled < POLL_S + 3.0, "b never reloaded"
        time.sleep(0.02)
    # a does not reload its own signal a second time; b still serves
    time.sleep(3 * POLL_S)
    assert counter(a.url, "driftloop_model_reloads_total", model="ages", trigger="signal") == 0
    assert counter(a.url, "driftloop_model_reloads_total", model="ages", trigger="admin") == 1
    assert httpx.get(f"{b.url}/v2/health/ready").json()["models"] == {"ages": 1}
    entry = registry.audit.entries(subject="model:ages")[-1]
    assert (entry.action, entry.details["generation"], entry.details["replica"]) == (
        "serve_reload", 1, "a")
    assert entry.actor.startswith("api_key:") and admin not in str(entry)


def test_predictions_name_the_replica_in_the_log(two_servers):
    registry, admin, (a, b) = two_servers
    headers = {"Authorization": f"Bearer {admin}"}
    for server in (a, b, b):
        answer = httpx.post(f"{server.url}/v1/models/ages/predict", headers=headers,
                            json={"instances": [{"age": 50.0, "city": "Oslo"}]})
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 10
    while len(rows := registry.store.list_predictions("ages")) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sorted(r.replica for r in rows) == ["a", "b", "b"]


def test_a_reload_without_an_admin_key_is_refused_and_signals_nothing(two_servers):
    registry, _, (a, _b) = two_servers
    predict = create_key(registry.store, registry.audit, "app", "predict", actor="test").secret
    for headers in ({}, {"Authorization": f"Bearer {predict}"}):
        answer = httpx.post(f"{a.url}/v1/admin/reload", headers=headers)
        assert answer.status_code in (401, 403) and "error" in answer.json()
    assert registry.store.serving_state("ages", "production").generation == 0
