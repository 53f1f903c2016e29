"""The rollouts page and its abort action, over real HTTP and in Chromium, on rollouts the
product ran: a real model server (with the dashboard mounted) serves real traffic, and its
rollout driver judges the evidence and moves the stage itself.

The module fixture (a few seconds: three quick models, no ranks) leaves in one store:

1. rollout A, ended: a candidate trained on shuffled labels, in shadow behind a good holder,
   rolled back by the server on the label-free evidence;
2. rollout B, under way: a second good model in canary at 20 % with labels sent late through
   ``/v1/feedback``, under a policy that cannot decide (no label-free decision, more labels
   needed than will come), so it stays in canary with its evidence written by the driver.

The abort tests start their own rollouts on other aliases (which this server does not follow:
they stay in shadow with no evidence), so each test stands alone.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import RolloutSettings, Settings
from driftloop.http.keys import SESSION_COOKIE
from driftloop.registry import Registry
from driftloop.registry.rollouts import start_rollout
from driftloop.serve.app import create_app
from driftloop.serve.auth import create_key
from driftloop.serve.server import BackgroundServer
from driftloop.store import RolloutRecord
from driftloop.ui import mount_dashboard
from quick_model import quick_version

from .conftest import Page

pytestmark = pytest.mark.slow  # a server with real traffic until the server decides

MODEL = "loans"
FEATURES = [f"f{i}" for i in range(8)]
CANARY_ROWS = 300  # requests sent once the server routes rollout B
LABELLED = 150  # ... of which the truth arrives for this many
BASIS_CHECK = {"labels": "accuracy_difference", "estimate": "estimate_difference",
               "agreement": "agreement", "errors": "error_rate", "latency": "slow_share"}


@dataclass
class World:
    registry: Registry
    url: str
    keys: dict[str, str]
    ended: RolloutRecord  # A: rolled back by the server
    live: RolloutRecord  # B: under way, in canary
    good: int
    other: int


def _wait(what: str, done: Any, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = done()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=2000, n_features=8, n_informative=5, random_state=0)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = np.where(y == 1, "repaid", "default")
    home = tmp_path_factory.mktemp("rollouts-home")
    # quick models carry no evaluation reports: the promotion gates are skipped (tests/registry
    # covers them); what is shown is the rollout's own live decision
    settings = Settings.load(overrides={
        "home": str(home),
        "gates": {"skip": ["metrics", "calibration", "slices", "data_check", "pii", "card",
                           "holder"]},
        "serve": {"log_flush_ms": 50.0, "poll_s": 0.2, "key_cache_s": 0.0,
                  "max_latency_ms": 2.0}}, environ={}, cwd=home)
    registry = Registry.open(settings)

    def register(data: pd.DataFrame, steps: int, seed: int = 0) -> int:
        _, weights, bundle = quick_version(data, steps=steps, seed=seed)
        return registry.register(MODEL, run_id=None, bundle=bundle, weights=weights,
                                 metrics={}, actor="test", reason="rollouts page test").version

    shuffled = frame.assign(label=frame["label"].sample(frac=1.0, random_state=1).to_numpy())
    good, worse, other = register(frame, 150), register(shuffled, 150), register(frame, 150, 1)
    for alias in ("production", "staging", "beta"):
        registry.promote(MODEL, good, to=alias, force=True, reason="test bootstrap")
    keys = {role: create_key(registry.store, registry.audit, f"rollouts-{role}", role,
                             actor="test").secret
            for role in ("admin", "read", "predict", "feedback")}
    server = BackgroundServer(create_app(registry, [MODEL], settings.serve,
                                         mount=[mount_dashboard])).start()
    rows = frame[FEATURES].to_dict(orient="records")
    try:
        server.wait_ready()
        http = httpx.Client(base_url=server.url, timeout=30,
                            headers={"Authorization": f"Bearer {keys['predict']}"})

        def predict(i: int) -> dict[str, Any]:
            r = http.post(f"/v1/models/{MODEL}/predict",
                          json={"instances": [rows[i % len(rows)]], "ids": [f"s{i}"]})
            assert r.status_code == 200, r.text
            return r.json()

        # A: shadow until the server rolls the shuffled-label candidate back
        a = start_rollout(registry, MODEL, worse, to="production", reason="retrained",
                          policy=RolloutSettings(check_s=0.3, shadow_rows=100_000))
        sent = 0

        def ended() -> RolloutRecord | None:
            nonlocal sent
            for _ in range(50):
                predict(sent)
                sent += 1
            record = registry.store.get_rollout(a.id)
            return None if record.active else record

        a = _wait("the server to decide rollout A", ended)
        # B: canary at 20 % that cannot decide; requests until the server routes some to it
        b = start_rollout(registry, MODEL, other, to="production", reason="second seed",
                          policy=RolloutSettings(check_s=0.3, shadow_rows=0, shares=[0.2],
                                                 step_rows=100_000, use_estimate=False,
                                                 min_labels=100_000, max_error_rate=0.99,
                                                 max_p99_ms=60_000, timeout_ms=60_000))
        probes = itertools.count(10_000)  # new subjects each round: the canary is sticky
        _wait("the server to route rollout B", lambda: any(
            predict(next(probes))["version"] == other for _ in range(20)))
        answers = [predict(20_000 + k) for k in range(CANARY_ROWS)]
        labels = frame["label"].tolist()
        feedback = http.post("/v1/feedback", headers={
            "Authorization": f"Bearer {keys['feedback']}"}, json=[
            {"request_id": r["request_id"], "label": labels[(20_000 + k) % len(labels)]}
            for k, r in enumerate(answers[:LABELLED])])
        assert feedback.status_code == 202, feedback.text
        http.close()
        b = _wait("rollout B's evidence", lambda: (lambda r: r if r.evidence.get(
            "labelled", 0) >= LABELLED and r.evidence["rows"] >= CANARY_ROWS else None)(
            registry.store.get_rollout(b.id)))
        assert a.stage == "rolled_back", a.decision
        assert (b.stage, b.share, b.active) == ("canary", 0.2, True), b.decision
        yield World(registry, server.url, keys, a, b, good, other)
    finally:
        server.stop()
        registry.store.close()


def _get(w: World, path: str, key: str | None = "read", **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {w.keys[key]}"} if key else {}
    return httpx.get(w.url + path, params=params, headers=headers, timeout=30)


def _abort(w: World, body: dict[str, Any], key: str | None = "admin",
           model: str = MODEL) -> httpx.Response:
    headers = {"Authorization": f"Bearer {w.keys[key]}"} if key else {}
    return httpx.post(f"{w.url}/ui/api/models/{model}/abort_rollout", json=body,
                      headers=headers, timeout=60)


def _shown(w: World, rollout_id: int) -> dict[str, Any]:
    body = _get(w, "/ui/api/rollouts", model=MODEL).json()
    return next(r for r in body["rollouts"] if r["id"] == rollout_id)


def test_rollouts_view_shows_stage_share_policy_and_the_stored_live_comparison(world):
    w = world
    r = _get(w, "/ui/api/rollouts", model=MODEL)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rollouts = r.json()["rollouts"]
    actives = [x["active"] for x in rollouts]
    assert actives == sorted(actives, reverse=True)  # under way first
    live = next(x for x in rollouts if x["id"] == w.live.id)
    stored = w.registry.store.get_rollout(w.live.id)
    assert (live["stage"], live["share"], live["share_percent"]) == ("canary", 0.2, 20.0)
    assert live["planned_shares"] == [0.2] and live["step"] == 0
    assert (live["candidate_version"], live["holder_version"]) == (w.other, w.good)
    assert live["policy"]["name"] == "non_inferior" and live["policy"]["margin"] == 0.01
    assert live["policy"]["confidence"] == 0.95 and live["decision"] is None
    assert live["ended_at"] is None and live["alias"] == "production"
    c, ev = live["comparison"], stored.evidence
    assert (c["rows"], c["labelled"]) == (ev["rows"], ev["labelled"])
    assert c["labelled"] >= LABELLED and c["rows"] >= CANARY_ROWS
    assert (c["verdict"], c["basis"], c["reason"]) == (ev["verdict"], ev["basis"], ev["reason"])
    assert c["verdict"] == "continue"
    checks = {k["name"]: k for k in c["checks"]}
    assert set(checks) == set(BASIS_CHECK.values()) | {"holder_estimate", "candidate_estimate"}
    for name, check in checks.items():
        assert (check["estimate"], check["low"], check["high"], check["rows"]) == (
            ev[name]["mean"], ev[name]["low"], ev[name]["high"], ev[name]["rows"]), name
        assert check["low"] <= check["high"]
    assert checks["accuracy_difference"]["rows"] == c["labelled"]
    assert [k for k, v in checks.items() if v["deciding"]] == [BASIS_CHECK[c["basis"]]]
    assert checks["accuracy_difference"]["signed"] and not checks["agreement"]["signed"]
    assert c["latency_ms"] == ev["latency_ms"]
    # A: decided by the server, its decision and its audited stage change shown
    ended = next(x for x in rollouts if x["id"] == w.ended.id)
    assert (ended["stage"], ended["active"]) == ("rolled_back", False)
    assert ended["decision"] == w.ended.decision and ended["decision"]
    assert ended["ended_at"] is not None
    assert ended["comparison"]["verdict"] == "rollback"
    assert ended["comparison"]["basis"] in ("estimate", "agreement")
    assert [(h["from"], h["to"], h["actor"]) for h in ended["history"]] == [
        ("shadow", "rolled_back", "driftloop-rollout")]
    assert ended["history"][0]["decision"] == w.ended.decision


def test_rollouts_reads_need_a_read_key_and_bad_queries_are_refused(world):
    w = world
    assert _get(w, "/ui/api/rollouts", key=None).status_code == 401
    assert _get(w, "/ui/api/rollouts", key="predict").status_code == 403
    assert _get(w, "/ui/api/rollouts", key="admin").status_code == 200
    every = _get(w, "/ui/api/rollouts").json()
    assert every["model"] is None and {r["id"] for r in every["rollouts"]} >= {
        w.ended.id, w.live.id}
    missing = _get(w, "/ui/api/rollouts", model="nope")
    assert missing.status_code == 404 and "no model named 'nope'" in missing.text
    assert _get(w, "/ui/api/rollouts", limit=0).status_code == 422
    assert len(_get(w, "/ui/api/rollouts", limit=1).json()["rollouts"]) == 1


def test_abort_needs_an_admin_key_a_reason_and_a_rollout_under_way_and_is_audited(world):
    w = world
    reg = w.registry
    r = start_rollout(reg, MODEL, w.other, to="staging", reason="try it on staging")
    assert r.stage == "shadow" and _shown(w, r.id)["comparison"] is None
    body = {"alias": "staging", "reason": "the holdout looked odd", "rollout": r.id}
    entries = reg.audit.anchor().entries
    no_key = _abort(w, body, key=None)
    assert no_key.status_code == 401 and "admin API key" in no_key.json()["error"]["message"]
    for role in ("read", "predict"):
        refused = _abort(w, body, key=role)
        assert refused.status_code == 403 and f"role '{role}'" in refused.text
    blank = _abort(w, {**body, "reason": "  "})
    assert blank.status_code == 422 and "reason" in blank.json()["error"]["message"]
    stale = _abort(w, {**body, "rollout": r.id + 1000})
    assert stale.status_code == 409 and "no longer under way" in stale.text
    assert _abort(w, {**body, "alias": "Not An Alias"}).status_code == 422
    assert _abort(w, body, model="nope").status_code == 404
    assert reg.store.get_rollout(r.id).active and reg.audit.anchor().entries == entries

    done = _abort(w, body)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["stage"] == "aborted" and answer["rollout"] == r.id
    assert answer["message"] == (f"rollout {r.id} of {MODEL} v{w.other} aborted in shadow; "
                                 f"v{w.good} keeps staging.")
    record = reg.store.get_rollout(r.id)
    assert (record.stage, record.active) == ("aborted", False)
    assert record.decision == "aborted: the holdout looked odd"
    assert reg.holder(MODEL, "staging").version == w.good
    entry = reg.audit.entries(subject=f"model:{MODEL}", action="rollout_stage")[-1]
    assert entry.seq == answer["audit_seq"]
    assert entry.actor == f"api_key:{w.keys['admin'].split('_')[1]}"
    assert (entry.details["rollout"], entry.details["from"], entry.details["to"]) == (
        r.id, "shadow", "aborted")
    assert entry.details["decision"] == "the holdout looked odd"
    again = _abort(w, body)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == (
        f"{MODEL}@staging has no rollout under way, so there is nothing to abort; its last "
        f"rollout ({r.id}, v{w.other}) ended aborted.")
    # the aborted one is listed after the one under way, though newer
    ids = [x["id"] for x in _get(w, "/ui/api/rollouts", model=MODEL).json()["rollouts"]]
    assert ids.index(w.live.id) < ids.index(r.id)
    assert reg.store.get_rollout(w.live.id).active  # production's rollout was not touched


def _interval(value: dict[str, Any], signed: bool) -> str:
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(value['mean'])} [{f.format(value['low'])}, {f.format(value['high'])}]"


def test_rollouts_page_shows_stage_share_intervals_and_aborts_with_an_admin_key(
        world, browser, artifacts_dir):
    w = world
    reg = w.registry
    beta = start_rollout(reg, MODEL, w.other, to="beta", reason="try it on beta")
    page = Page(browser, w.url, artifacts_dir)
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": w.keys["read"],
                               "url": w.url, "httpOnly": True, "sameSite": "Strict"}])
    try:
        page.open(f"/ui/rollouts?model={MODEL}")
        p = page.page
        assert p.title() == "Rollouts · driftloop"
        assert p.get_attribute('[data-nav="rollouts"]', "aria-current") == "page"
        live = p.locator(f'section[data-rollout="{w.live.id}"]')
        assert live.locator(".stage").inner_text() == "◑ canary 20%"
        ev = reg.store.get_rollout(w.live.id).evidence
        for name, signed in [("accuracy_difference", True), ("estimate_difference", True),
                             ("agreement", False)]:
            row = live.locator(f'tr[data-check="{name}"]').inner_text()
            assert _interval(ev[name], signed) in row, (name, row)
        assert re.search(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]",
                         live.locator("table.checks").inner_text())
        assert f"{ev['labelled']} of {ev['rows']} served rows labelled" in live.inner_text()
        assert "20% of requests answered by" in live.inner_text()
        ended = p.locator(f'section[data-rollout="{w.ended.id}"]')
        assert ended.locator(".stage").inner_text() == "↩ rolled back"
        assert w.ended.decision in ended.inner_text()
        assert ended.locator("button.abort").count() == 0  # only those under way
        page.shot("7-rollouts")

        p.locator(f'section[data-rollout="{beta.id}"] button.abort').click()
        assert p.locator("#admin").is_visible()
        assert p.input_value("#admin-alias") == "beta"
        assert p.locator("#admin-force-row").is_hidden()

        def submit(key: str) -> str:
            p.fill("#admin-key", key)
            p.fill("#admin-reason", "stop the beta rollout")
            p.click("#admin-submit")
            p.wait_for_function("!['', 'Working…'].includes("
                                "document.getElementById('admin-result').textContent)")
            return p.inner_text("#admin-result")

        assert submit("").startswith("✗ refused (401)")
        assert reg.store.get_rollout(beta.id).active
        done = submit(w.keys["admin"])
        assert done.startswith(f"✓ rollout {beta.id} of {MODEL} v{w.other} aborted in "
                               "shadow"), done
        p.wait_for_function("document.body.dataset.ready === '1'")
        assert p.get_attribute(f'section[data-rollout="{beta.id}"]', "data-stage") == "aborted"
        assert reg.store.get_rollout(beta.id).decision == "aborted: stop the beta rollout"
        p.click("#admin-cancel")
        expected = re.compile(r"(console: Failed to load resource: .* 401|"
                              r"HTTP 401: .*/abort_rollout)")
        assert [e for e in page.errors if not expected.search(e)] == []
    finally:
        page.close()
