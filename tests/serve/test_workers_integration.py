"""``driftloop serve --workers 2``: two uvicorn worker processes on one port serve, log (each
row naming its worker) and reload (a reload answered by one worker reaches the other through
the store).

The workers share one listening socket and the kernel decides which accepts a connection; an
idle worker may win most of them. So the test sends concurrent rounds on fresh connections
until both workers have answered (bounded), rather than expecting a split of a fixed count.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from driftloop.cli import main
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from quick_model import register_quick
from serve_replicas import clean_environ, start_replica, table

MODEL = "ages"
POLL_S = 0.3
THREADS = 8
ROUNDS = 6
FRESH = httpx.Limits(max_keepalive_connections=0)  # a new connection per request


def _concurrently(work: Callable[[httpx.Client], Any], url: str, headers: dict[str, str],
                  per_thread: int) -> list[Any]:
    """``work(client)`` ``per_thread`` times in each of ``THREADS`` threads, every call on a
    fresh connection (so the kernel can hand it to either worker)."""
    def loop(_: int) -> list[Any]:
        with httpx.Client(base_url=url, headers=headers, limits=FRESH, timeout=30.0) as client:
            return [work(client) for _ in range(per_thread)]

    with ThreadPoolExecutor(THREADS) as pool:
        return [out for outs in pool.map(loop, range(THREADS)) for out in outs]


def _predict(client: httpx.Client) -> dict[str, Any]:
    answer = client.post(f"/v1/models/{MODEL}/predict",
                         json={"instances": [{"age": 41.5, "city": "Rome"}]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _scrape(client: httpx.Client) -> tuple[str, float]:
    """One worker's ``/metrics``: its name and its forced reloads (admin + signal)."""
    text = client.get("/metrics").text
    name = re.search(r'^driftloop_replica\{replica="([^"]+)"\} 1\.0$', text, re.M)
    reloads = re.findall(rf'^driftloop_model_reloads_total\{{model="{MODEL}",trigger="\w+"\}} '
                         r"(\S+)$", text, re.M)
    assert name is not None, text[:500]
    return name.group(1), sum(float(n) for n in reloads)


def _logged(registry: Registry, answers: list[dict[str, Any]]) -> Counter:
    """Rows per worker once every answered request is in the log (each exactly once)."""
    deadline = time.monotonic() + 30
    while registry.store.count_predictions() < len(answers):
        assert time.monotonic() < deadline, "the workers' log rows did not arrive"
        time.sleep(0.05)
    rows = registry.store.list_predictions(MODEL, limit=100_000)
    assert sorted(r.request_id for r in rows) == sorted(a["request_id"] for a in answers)
    return Counter(r.replica for r in rows)


def test_two_workers_serve_log_and_reload(dl_settings, tmp_path):
    registry = Registry.open(dl_settings)
    for steps in (40, 60):
        register_quick(registry, table(), MODEL, steps=steps, with_profile=False)
    registry.promote(MODEL, 1, to="production", force=True, reason="bootstrap")
    admin = create_key(registry.store, registry.audit, "ops", "admin", actor="test").secret
    headers = {"Authorization": f"Bearer {admin}"}
    env = clean_environ(DRIFTLOOP_HOME=dl_settings.home, DRIFTLOOP_STORE_URL=dl_settings.store_url,
                        DRIFTLOOP_SERVE__POLL_S=str(POLL_S), DRIFTLOOP_SERVE__LOG_FLUSH_MS="100",
                        DRIFTLOOP_SERVE__KEY_CACHE_S="0")
    server = start_replica("w", tmp_path, env, ["--model", MODEL, "--workers", "2"])
    try:
        server.wait_ready()
        answers: list[dict[str, Any]] = []
        for _ in range(ROUNDS):  # until both workers answered (and logged)
            answers += _concurrently(_predict, server.url, headers, 5)
            by_worker = _logged(registry, answers)
            if len(by_worker) == 2:
                break
        assert {a["version"] for a in answers} == {1}
        assert len(by_worker) == 2, f"one worker answered all {len(answers)}: {by_worker}"
        # the workers share serve.instance "w": each adds its pid
        assert all(re.fullmatch(r"w:\d+", name) for name in by_worker), by_worker

        answer = httpx.post(f"{server.url}/v1/admin/reload", headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["replicas"] == "signalled"
        reloaded: dict[str, float] = {}
        deadline = time.monotonic() + POLL_S + 15
        while sum(n >= 1 for n in reloaded.values()) < 2:
            if time.monotonic() > deadline:
                pytest.fail(f"not every worker reloaded: {reloaded}")
            reloaded.update(_concurrently(_scrape, server.url, {}, 2))
        assert set(reloaded) == set(by_worker)

        registry.promote(MODEL, 2, to="production", force=True, reason="workers move")
        time.sleep(POLL_S + 3)
        assert {a["version"] for a in _concurrently(_predict, server.url, headers, 2)} == {2}
    finally:
        server.stop()
        registry.close()


def test_workers_below_one_is_refused_with_one_message(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers must be at least 1" in err and "Traceback" not in err
