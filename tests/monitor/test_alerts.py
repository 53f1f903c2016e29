"""Alerts are stored first, then POSTed to webhooks with retries; a dead webhook never stops."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from driftloop.monitor.alerts import deliver, raise_alert
from driftloop.serve.server import free_port
from driftloop.store import Store


class _Hook:
    """A real webhook receiver on loopback that fails the first ``fail`` POSTs with a 500."""

    def __init__(self, fail: int) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail = fail
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append(body)
                status = 500 if len(hook.received) <= hook.fail else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Hook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def store() -> Store:
    with Store.open("sqlite://") as opened:
        yield opened


def test_webhook_gets_the_alert_after_a_failed_attempt(store: Store) -> None:
    with _Hook(fail=1) as hook:
        alert = raise_alert(store, model_name="m", kind="dataset_drift", message="drift",
                            details={"share_drifted": 0.6}, webhooks=[hook.url],
                            retries=2, backoff_s=0.01)
    assert [d["ok"] for d in alert.deliveries] == [True]
    assert alert.deliveries[0]["attempts"] == 2
    assert hook.received[-1]["kind"] == "dataset_drift"
    assert hook.received[-1]["details"] == {"share_drifted": 0.6}
    assert store.list_alerts("m")[0].deliveries == alert.deliveries


def test_a_dead_webhook_is_recorded_and_the_alert_is_kept(store: Store) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    with _Hook(fail=0) as hook:
        alert = raise_alert(store, model_name="m", kind="performance_drop", message="drop",
                            details={}, webhooks=[dead, hook.url], retries=1, backoff_s=0.01,
                            timeout_s=1)
    assert [d["ok"] for d in alert.deliveries] == [False, True]
    assert alert.deliveries[0]["attempts"] == 2 and "error" in alert.deliveries[0]
    assert [a.kind for a in store.list_alerts()] == ["performance_drop"]


def test_a_webhook_that_always_fails_gives_up_after_the_retries() -> None:
    with _Hook(fail=100) as hook:
        outcome = deliver(hook.url, {"x": 1}, retries=3, backoff_s=0.0)
    assert outcome == {"url": hook.url, "ok": False, "attempts": 4, "status": 500}
    assert len(hook.received) == 4
