"""Deactivation through a real server: the alias goes, predictions answer 503 naming the model
and how to restore it, readiness turns false; a promotion brings it back by hot swap."""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.registry.aliases import deactivate

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow


def _until(send, status: int, timeout_s: float = 20.0) -> httpx.Response:
    """Send until the answer has ``status`` (the server checks the alias every poll_s)."""
    deadline = time.monotonic() + timeout_s
    while (reply := send()).status_code != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {reply.status_code} after {timeout_s} s: {reply.text}")
        time.sleep(0.05)
    return reply


def test_deactivate_answers_503_and_promote_serves_again(served_model: Served) -> None:
    registry = served_model.registry
    body = {"instances": instances(served_model.frame.iloc[:3])}
    v2_inputs = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
                  "data": [v]} for k, v in instances(served_model.frame.iloc[:1])[0].items()]
    srv = start_server(served_model, poll_s=0.05)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            def predict() -> httpx.Response:
                return client.post(f"/v1/models/{MODEL}/predict", json=body)

            assert predict().json()["version"] == 1
            move = deactivate(registry, MODEL, "production", reason="test: outputs off",
                              actor="oncall:test")
            refused = _until(predict, 503)
            error = refused.json()["error"]
            assert error["code"] == "deactivated"
            assert f"model '{MODEL}' was deactivated" in error["message"]
            assert f"driftloop models promote {MODEL} VERSION --to production" in error["message"]
            assert "Retry-After" not in refused.headers
            infer = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": v2_inputs})
            assert infer.status_code == 503 and infer.json()["error"]["code"] == "deactivated"
            ready = client.get("/v2/health/ready")
            assert ready.status_code == 503 and ready.json()["ready"] is False
            assert "deactivated" in ready.json()["errors"][MODEL]
            assert "driftloop_model_version{model=\"cancer\"} 0.0" in client.get("/metrics").text

            registry.promote(MODEL, 2, to="production", force=True, reason="test: restore")
            back = _until(predict, 200)
            assert back.json()["version"] == 2
            assert client.get("/v2/health/ready").json() == {
                "ready": True, "models": {MODEL: 2}, "runtimes": {MODEL: "torch"}}
        actions = [e.action for e in registry.audit.entries(subject=f"{MODEL}:v1")]
        assert "deactivate" in actions and move.audit_seq is not None
        assert registry.audit.verify().ok
    finally:
        srv.stop()
        registry.promote(MODEL, 1, to="production", force=True, reason="restore")
