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


class _Slow(_Hook):
    """A receiver that answers after ``delay`` seconds, or 429 with Retry-After first."""

    def __init__(self, *, delay: float = 0.0, status: int = 200, retry_after: str | None = None,
                 then: int = 200) -> None:
        super().__init__(fail=0)
        hook = self
        self.times: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                import time

                hook.times.append(time.monotonic())
                hook.received.append(json.loads(self.rfile.read(
                    int(self.headers["Content-Length"]))))
                time.sleep(delay)
                first = len(hook.received) == 1
                self.send_response(status if first else then)
                if first and retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server.RequestHandlerClass = Handler


def test_a_client_error_is_final_and_not_retried() -> None:
    with _Slow(status=404) as hook:
        outcome = deliver(hook.url, {"x": 1}, retries=3, backoff_s=0.0)
    assert outcome == {"url": hook.url, "ok": False, "attempts": 1, "status": 404}
    assert len(hook.received) == 1


def test_retry_after_is_honoured() -> None:
    with _Slow(status=429, retry_after="1", then=200) as hook:
        outcome = deliver(hook.url, {"x": 1}, retries=2, backoff_s=0.0)
    assert outcome["ok"] and outcome["attempts"] == 2
    assert hook.times[1] - hook.times[0] >= 0.95  # waited as asked, not the 0 s back-off


def test_a_slow_webhook_holds_the_alert_at_most_the_wait(tmp_path) -> None:
    import time

    # a file store: the late outcome is written from the delivery thread
    with _Slow(delay=3.0) as hook, Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        started = time.monotonic()
        alert = raise_alert(store, model_name="m", kind="dataset_drift", message="drift",
                            details={}, webhooks=[hook.url], retries=0, wait_s=0.5,
                            timeout_s=10)
        waited = time.monotonic() - started
        assert waited < 2.5, waited
        assert alert.deliveries[0]["pending"] and alert.deliveries[0]["ok"] is False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not store.list_alerts("m")[0].deliveries[0]["ok"]:
            time.sleep(0.1)
    assert store.list_alerts("m")[0].deliveries[0]["ok"]  # completed in the store later
