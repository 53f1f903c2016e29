"""``driftloop serve --workers 2``: two uvicorn worker processes on one port serve, log (each
row naming its worker) and reload (a reload answered by one worker reaches the other through
the store)."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import httpx

from driftloop.cli import main
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from quick_model import register_quick
from serve_replicas import clean_environ, start_replica, table

MODEL = "ages"
POLL_S = 0.3


FRESH = httpx.Limits(max_keepalive_connections=0)  # a new connection per request


def _scrape(client: httpx.Client) -> tuple[str, float]:
    """One worker's ``/metrics`` (a fresh connection each time): its name and forced reloads."""
    text = client.get("/metrics").text
    name = re.search(r'^driftloop_replica\{replica="([^"]+)"\} 1\.0$', text, re.M)
    reloads = re.findall(rf'^driftloop_model_reloads_total\{{model="{MODEL}",trigger="\w+"\}} '
                         r"(\S+)$", text, re.M)
    assert name is not None, text[:500]
    return name.group(1), sum(float(n) for n in reloads)


def _predict_many(url: str, headers: dict[str, str], n: int) -> list[dict]:
    """``n`` predictions from 4 threads, each on a fresh connection (so the kernel spreads
    them over the workers accepting on the port)."""
    answers: list[dict] = []
    lock = threading.Lock()

    def send(count: int) -> None:
        with httpx.Client(base_url=url, headers=headers, limits=FRESH, timeout=30.0) as client:
            for i in range(count):
                body = {"instances": [{"age": 30.0 + i, "city": "Rome"}]}
                answer = client.post(f"/v1/models/{MODEL}/predict", json=body)
                assert answer.status_code == 200, answer.text
                with lock:
                    answers.append(answer.json())

    threads = [threading.Thread(target=send, args=(n // 4,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


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
        # the workers share serve.instance "w": each adds its pid ("w:<pid>")
        answers = _predict_many(server.url, headers, 60)
        assert {a["version"] for a in answers} == {1}
        deadline = time.monotonic() + 30
        while registry.store.count_predictions() < 60:
            assert time.monotonic() < deadline, "the workers' log rows did not arrive"
            time.sleep(0.05)
        rows = registry.store.list_predictions(MODEL)
        assert sorted(r.request_id for r in rows) == sorted(a["request_id"] for a in answers)
        by_worker = Counter(r.replica for r in rows)
        assert len(by_worker) == 2, by_worker  # both workers answered and logged
        assert all(re.fullmatch(r"w:\d+", name) for name in by_worker), by_worker

        answer = httpx.post(f"{server.url}/v1/admin/reload", headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["replicas"] == "signalled"
        reloaded: dict[str, float] = {}
        deadline = time.monotonic() + POLL_S + 10
        with httpx.Client(base_url=server.url, limits=FRESH, timeout=5.0) as client:
            while len([n for n in reloaded.values() if n >= 1]) < 2:
                assert time.monotonic() < deadline, f"not every worker reloaded: {reloaded}"
                name, count = _scrape(client)
                reloaded[name] = count
        assert set(reloaded) == set(by_worker)

        registry.promote(MODEL, 2, to="production", force=True, reason="workers move")
        time.sleep(POLL_S + 3)
        assert {a["version"] for a in _predict_many(server.url, headers, 12)} == {2}
    finally:
        server.stop()
        registry.close()


def test_workers_below_one_is_refused_with_one_message(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers must be at least 1" in err and "Traceback" not in err
