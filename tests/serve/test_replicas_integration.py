"""Two ``driftloop serve`` replicas on one PostgreSQL store behind Debian's haproxy.

Real components only: a PostgreSQL server (``tests/pg_server.py``), two ``driftloop serve``
subprocesses on loopback ports (``DRIFTLOOP_STORE_URL`` and ``DRIFTLOOP_HOME`` shared), and
haproxy in front of them (``tests/lb_server.py``, the config of ``docs/scaling-out.md``).
The replicas poll every ``POLL_S`` seconds. The tests prove: a promotion reaches both within
``POLL_S`` (plus slack for loading); an admin reload sent to one reloads the other; 10 alias
moves under continuous traffic through haproxy fail no request; both replicas' predictions
land in the one log, each answered row exactly once; ``driftloop monitor`` cuts the same
windows from it as from one replica's log of the same rows.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from driftloop.store import Store
from lb_server import Balancer, haproxy_config, start_haproxy
from quick_model import register_quick
from serve_replicas import Replica, clean_environ, counter, start_replica, table

MODEL = "ages"
POLL_S = 0.3
SLACK_S = 5.0  # loading and warming a version on a busy 2-core machine, on top of POLL_S
MOVES = 10
WINDOW = 25


@dataclass
class Cluster:
    home: str
    url: str
    registry: Registry
    admin: str
    replicas: list[Replica]
    balancer: Balancer
    env: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    def promote(self, version: int, why: str) -> None:
        self.registry.promote(MODEL, version, to="production", force=True, reason=why)


def _wait(predicate: Any, timeout_s: float, what: str) -> float:
    """Seconds until ``predicate()`` held; fails naming ``what`` after ``timeout_s``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what} did not happen within {timeout_s:.1f} s")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def cluster(postgres_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("replicas")
    home, url = str(folder / "home"), postgres_cluster.fresh_database_url()
    settings = Settings.load(overrides={"home": home, "store_url": url}, environ={}, cwd=folder)
    registry = Registry.open(settings)
    for steps in (40, 60):  # v1, v2: two versions to move the alias between
        register_quick(registry, table(), MODEL, steps=steps)
    registry.promote(MODEL, 1, to="production", force=True, reason="bootstrap")
    admin = create_key(registry.store, registry.audit, "ops", "admin", actor="test").secret
    env = clean_environ(DRIFTLOOP_HOME=home, DRIFTLOOP_STORE_URL=url,
                        DRIFTLOOP_SERVE__POLL_S=str(POLL_S), DRIFTLOOP_SERVE__LOG_FLUSH_MS="100",
                        DRIFTLOOP_SERVE__KEY_CACHE_S="0")
    replicas = [start_replica(name, folder, env, ["--model", MODEL]) for name in ("a", "b")]
    try:
        for replica in replicas:
            replica.wait_ready()
        balancer = start_haproxy(folder, [("127.0.0.1", r.port) for r in replicas]).wait_up()
    except BaseException:
        for replica in replicas:
            replica.stop()
        raise
    try:
        yield Cluster(home, url, registry, admin, replicas, balancer, env)
    finally:
        balancer.stop()
        for replica in replicas:
            replica.stop()
        registry.close()


def test_the_documented_haproxy_config_is_the_one_the_tests_run():
    doc = (Path(__file__).parents[2] / "docs" / "scaling-out.md").read_text()
    assert haproxy_config(8080, [("127.0.0.1", 8001), ("127.0.0.1", 8002)]) in doc


def test_a_promotion_through_the_cli_reaches_both_replicas_within_poll_s(cluster, monkeypatch):
    target = 2 if cluster.replicas[0].served_version(MODEL) == 1 else 1
    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    assert main(["models", "promote", MODEL, str(target), "--to", "production", "--force",
                 "--reason", "replica test"]) == 0
    for replica in cluster.replicas:  # each replica directly, not through the balancer
        _wait(lambda r=replica: r.served_version(MODEL) == target, POLL_S + SLACK_S,
              f"replica {replica.name} serving v{target}")


def test_an_admin_reload_on_one_replica_reloads_the_other(cluster):
    a, b = cluster.replicas
    before = counter(b.url, "driftloop_model_reloads_total", model=MODEL, trigger="signal")
    answer = httpx.post(f"{a.url}/v1/admin/reload", headers=cluster.headers(), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["replicas"] == "signalled" and answer.json()["replica"] == "a"
    _wait(lambda: counter(b.url, "driftloop_model_reloads_total", model=MODEL,
                          trigger="signal") == before + 1, POLL_S + SLACK_S, "b's reload")
    # a reloaded once, for the request itself, never again for its own signal
    time.sleep(3 * POLL_S)
    assert counter(a.url, "driftloop_model_reloads_total", model=MODEL, trigger="signal") == 0
    entry = cluster.registry.audit.entries(subject=f"model:{MODEL}")[-1]
    assert (entry.action, entry.details["replica"]) == ("serve_reload", "a")


@dataclass
class Traffic:
    answered: list[tuple[int, str]]  # (version, request id) of every 200
    failures: list[str]
    log_rows_before: int
    final_version: int


def _client_loop(url: str, headers: dict[str, str], stop: threading.Event,
                 traffic: Traffic, lock: threading.Lock, seed: int) -> None:
    rows = table(rows=200, seed=seed)
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        i = 0
        while not stop.is_set():
            row = rows.iloc[i % len(rows)]
            i += 1
            body = {"instances": [{"age": float(row["age"]), "city": row["city"]}]}
            try:
                answer = client.post(f"/v1/models/{MODEL}/predict", json=body)
            except httpx.HTTPError as exc:
                with lock:
                    traffic.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                if answer.status_code == 200:
                    out = answer.json()
                    traffic.answered.append((out["version"], out["request_id"]))
                else:
                    traffic.failures.append(f"{answer.status_code}: {answer.text[:200]}")


@pytest.fixture(scope="module")
def traffic(cluster) -> Traffic:
    """Two clients predicting through haproxy without pause while the alias moves 10 times."""
    result = Traffic([], [], cluster.registry.store.count_predictions(), 0)
    stop, lock = threading.Event(), threading.Lock()
    clients = [threading.Thread(target=_client_loop, args=(
        cluster.balancer.url, cluster.headers(), stop, result, lock, seed)) for seed in (1, 2)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)
        version = cluster.replicas[0].served_version(MODEL) or 1
        for move in range(MOVES):
            version = 2 if version == 1 else 1
            cluster.promote(version, f"move {move}")
            time.sleep(POLL_S * 3)
        for replica in cluster.replicas:
            _wait(lambda r=replica: r.served_version(MODEL) == version, POLL_S + SLACK_S,
                  f"replica {replica.name} serving v{version}")
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(60)
    result.final_version = version
    return result


def test_ten_alias_moves_under_traffic_through_haproxy_fail_no_request(traffic):
    assert traffic.failures == []
    versions = Counter(version for version, _ in traffic.answered)
    print(f"answered {len(traffic.answered)} requests through haproxy, by version {versions}")
    assert set(versions) == {1, 2} and len(traffic.answered) > 50, versions
    assert traffic.answered[-1][0] == traffic.final_version


def _log_rows(store: Store, expected: int) -> list:
    _wait(lambda: store.count_predictions() >= expected, 10, f"{expected} log rows")
    return store.list_predictions(MODEL, limit=1_000_000)


def test_both_replicas_log_into_one_log_each_answer_once(cluster, traffic):
    store = cluster.registry.store
    expected = traffic.log_rows_before + len(traffic.answered)
    rows = _log_rows(store, expected)[traffic.log_rows_before:]
    time.sleep(0.5)  # nothing more arrives: only the answered requests were logged
    assert store.count_predictions() == expected
    assert sorted(r.request_id for r in rows) == sorted(rid for _, rid in traffic.answered)
    by_replica = Counter(r.replica for r in rows)
    assert set(by_replica) == {"a", "b"} and min(by_replica.values()) > 10, by_replica
    answered = dict((rid, version) for version, rid in traffic.answered)
    assert all(answered[r.request_id] == r.version for r in rows)


def _windows(capsys, monkeypatch, env: dict[str, str]) -> list[dict[str, Any]]:
    """``driftloop monitor --json`` on the store ``env`` names, as the CLI prints it."""
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("DRIFTLOOP_"):
            monkeypatch.setenv(key, value)
    capsys.readouterr()
    assert main(["monitor", "--model", MODEL, "--window", str(WINDOW), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["windows"]


def test_monitor_cuts_the_same_windows_from_two_replicas_log_as_from_one(
        cluster, traffic, postgres_cluster, tmp_path, monkeypatch, capsys):
    store = cluster.registry.store
    rows = _log_rows(store, traffic.log_rows_before + len(traffic.answered))
    # one replica's log of the same rows: a fresh store with the same two versions, the same
    # rows written in the same order by one writer
    home, url = str(tmp_path / "home"), postgres_cluster.fresh_database_url()
    one = Registry.open(Settings.load(overrides={"home": home, "store_url": url}, environ={},
                                      cwd=tmp_path))
    for steps in (40, 60):
        register_quick(one, table(), MODEL, steps=steps)
    one.store.add_predictions([{"request_id": r.request_id, "model_name": r.model_name,
                                "version": r.version, "at": r.at, "features": r.features,
                                "output": r.output} for r in rows])
    one_ids = [r.id for r in one.store.list_predictions(MODEL, limit=1_000_000)]
    one.close()
    two = _windows(capsys, monkeypatch, cluster.env)
    single = _windows(capsys, monkeypatch, {"DRIFTLOOP_HOME": home, "DRIFTLOOP_STORE_URL": url})
    rank_two = {r.id: i for i, r in enumerate(rows)}
    rank_one = {log_id: i for i, log_id in enumerate(one_ids)}

    def shape(windows: list[dict[str, Any]], rank: dict[int, int]) -> list[tuple[Any, ...]]:
        # bounds as positions in the log (ids of two writers need not be those of one)
        return [(w["version"], w["rows"], w["status"], rank[w["first_log_id"]],
                 rank[w["last_log_id"]]) for w in windows]

    assert two and shape(two, rank_two) == shape(single, rank_one)
    claimed = [r.request_id for w in store.list_windows(MODEL)
               for r in store.window_predictions(w.id)]
    assert len(claimed) == len(set(claimed))  # each row in exactly one window
    left = store.unwindowed_predictions(MODEL)
    assert len(claimed) + len(left) == len(rows) and len(left) < WINDOW


def test_a_rollout_in_the_store_is_followed_by_both_replicas_alike(cluster):
    """The rollout is store state: both replicas route the same subject to the same version
    (the assignment is a hash of the rollout and the subject, not a replica's choice), both
    write their paired observations into the one store, and an abort reaches both."""
    from driftloop.config import RolloutSettings
    from driftloop.registry.rollouts import abort_rollout, start_rollout

    skip = ["metrics", "calibration", "slices", "data_check", "pii", "card", "holder"]
    registry = Registry.open(Settings.load(overrides={
        "home": cluster.home, "store_url": cluster.url, "gates": {"skip": skip}},
        environ={}, cwd=cluster.home))
    holder = registry.holder(MODEL, "production").version
    candidate = 2 if holder == 1 else 1
    # a canary that neither steps nor decides during the test: only the routing is looked at
    policy = RolloutSettings(shadow_rows=0, shares=[0.5], step_rows=10**9, use_estimate=False,
                             min_labels=10**9, timeout_ms=60_000, max_p99_ms=60_000,
                             max_error_rate=0.99, check_s=POLL_S)
    rollout = start_rollout(registry, MODEL, candidate, to="production", policy=policy,
                            reason="replica test")
    rows = table(rows=40, seed=3)
    bodies = [{"instances": [{"age": float(r["age"]), "city": r["city"]}], "ids": [f"s-{i}"]}
              for i, r in enumerate(rows.to_dict(orient="records"))]

    def versions(url: str) -> list[int]:
        with httpx.Client(base_url=url, headers=cluster.headers(), timeout=30) as client:
            out = []
            for body in bodies:
                answer = client.post(f"/v1/models/{MODEL}/predict", json=body)
                assert answer.status_code == 200, answer.text
                out.append(answer.json()["version"])
            return out

    try:
        for replica in cluster.replicas:
            _wait(lambda r=replica: set(versions(r.url)) == {holder, candidate},
                  POLL_S + SLACK_S, f"replica {replica.name} in canary")
        a, b = (versions(r.url) for r in cluster.replicas)
        assert a == b  # each subject answered by the same version on either replica
        assert 0.2 < a.count(candidate) / len(a) < 0.8
        _wait(lambda: _observers(registry, rollout.id) == {"a", "b"}, 10,
              "observations from both replicas")
    finally:
        abort_rollout(registry, MODEL, "production", reason="replica test over")
    for replica in cluster.replicas:
        _wait(lambda r=replica: set(versions(r.url)) == {holder}, POLL_S + SLACK_S,
              f"replica {replica.name} back on the holder only")
    registry.close()


def _observers(registry: Registry, rollout_id: int) -> set[str]:
    """The replicas that wrote observations of the rollout (as the servers wrote them)."""
    from sqlalchemy import select

    from driftloop.store.tables import RolloutObservation

    with registry.store.session(write=False) as session:
        return set(session.scalars(select(RolloutObservation.replica).where(
            RolloutObservation.rollout_id == rollout_id).distinct()))
