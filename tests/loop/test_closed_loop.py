"""The closed loop end to end through a real server on loopback (issue 8's "Done means").

One `driftloop demo` run (a real subprocess: 2-worker training, a uvicorn server, HTTP traffic
with delayed feedback, monitoring, retraining, gates, promotion, hot swap) is shared by the tests
below, which then drive further loop iterations on its store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftloop.config import Settings
from driftloop.loop.demo import MODEL, demo_settings
from driftloop.loop.runner import run_once
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    done = subprocess.run([sys.executable, "-m", "driftloop", "demo", "--json"], cwd=workdir,
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "driftloop-demo", json.loads(done.stdout)


def _settings(folder: Path, **loop: Any) -> Settings:
    base = Settings.load(environ={}, cwd=folder)
    settings = demo_settings(base, folder)
    return settings.updated({"loop": loop}) if loop else settings


def test_drift_triggers_a_retrain_that_is_promoted_and_hot_swapped(demo) -> None:
    folder, story = demo
    assert story["trigger"]["kind"] in {"drift", "metric"}
    assert story["retrained_version"] == 2 and story["promoted"] is True
    assert story["served_version_after"] == 2  # the running server swapped without a restart
    # issue 16 (f): the challenger went shadow -> canary -> production on live traffic, decided
    # by the server on paired labelled rows
    rollout = story["rollout"]
    assert rollout["stage"] == "promoted"
    assert [(a, b) for a, b, _ in rollout["stages"]] == [
        ("shadow", "canary"), ("canary", "canary"), ("canary", "promoted")]
    assert rollout["evidence"]["basis"] == "labels"
    assert rollout["evidence"]["accuracy_difference"]["low"] > 0
    assert any("rolled out on live traffic" in line for line in story["story"])
    # the old and the new version on the same fresh post-change data
    assert story["accuracy_after"] > story["accuracy_before"] + 0.2
    assert story["holdout_comparison"]["challenger"] > story["holdout_comparison"]["champion"]
    report = (folder / "report.html").read_text(encoding="utf-8")
    for section in ("Training curve", "Reliability diagram", "Slices", "Drift timeline",
                    "Estimated vs realised accuracy", "Retrain and promotion events"):
        assert section in report
    assert "data:image/png;base64," in report and "http" not in report.split("<body>")[0]
    registry = Registry.open(_settings(folder))
    assert registry.get(MODEL, 2).parent_id == registry.get(MODEL, 1).id
    windows = registry.store.list_windows(MODEL)
    post_change = [w for w in windows if w.version == 1 and w.realised
                   and w.realised["accuracy"]["value"] < 0.7]
    assert post_change, "the monitor saw the old version's realised accuracy fall"
    after = [w for w in windows if w.version == 2 and w.realised]
    assert after and all(w.realised["accuracy"]["value"] > 0.85 for w in after)
    assert any("fresh post-change" in line for line in story["story"])


def test_a_refused_challenger_leaves_the_champion_serving(demo) -> None:
    folder, _ = demo
    settings = _settings(folder, cooldown_s=0, min_new_labels=100, metric_drop=None)
    strict = settings.updated({"gates": {"metric_bounds": {"accuracy": 0.999}}})
    registry = Registry.open(strict)
    outcome = run_once(MODEL, settings=strict, registry=registry)
    assert outcome.trigger is not None and outcome.trigger.kind == "labels"
    assert outcome.outcome == "kept" and not outcome.promoted
    assert outcome.challenger_version == 3
    assert any(g["name"] == "metric:accuracy" and not g["passed"] for g in outcome.gates)
    assert registry.holder(MODEL, "production").version == 2
    app = create_app(registry, [MODEL], strict.serve)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        server.wait_ready()
        body = {"instances": [{"salary": 50000.0, "commission": 0.0, "age": 40.0,
                               "elevel": "level-1", "car": 3, "zipcode": 2, "hvalue": 100000.0,
                               "hyears": 10.0, "loan": 100000.0}]}
        answer = http.post(f"/v1/models/{MODEL}/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 2


def test_cooldown_holds_a_second_retrain(demo) -> None:
    folder, _ = demo
    settings = _settings(folder, cooldown_s=3600, schedule_s=1, metric_drop=None)
    registry = Registry.open(settings)
    before = len(registry.versions(MODEL))
    outcome = run_once(MODEL, settings=settings, registry=registry)
    assert outcome.outcome == "cooldown"
    assert outcome.trigger is not None
    assert len(registry.versions(MODEL)) == before  # nothing was trained
    runs = registry.store.list_loop_runs(MODEL)
    assert runs[-1].outcome == "cooldown" and runs[-1].challenger_version is None
    actions = [e.action for e in registry.audit.entries()]
    assert "loop_hold" in actions and "loop_trigger" in actions and "loop_decision" in actions
    assert registry.audit.verify().ok


def test_a_labeller_that_flips_labels_holds_the_retrain_with_an_alert_naming_it(demo) -> None:
    """Issue 15: two feedback keys label the champion's fresh answers through the server; one
    flips a third of its labels. The loop's iteration holds the retrain (nothing trained), the
    alert and the audit entry name that key; the audit chain still verifies."""
    import numpy as np

    from driftloop.serve.auth import create_key

    folder, _ = demo
    settings = _settings(folder, cooldown_s=0, min_new_labels=100, metric_drop=None)
    registry = Registry.open(settings)
    champion = registry.holder(MODEL, "production")
    logged = registry.store.list_predictions(MODEL, limit=600)
    truth = registry.store.labels_for([p.request_id for p in logged])
    rows = [(p.features, truth[p.request_id]) for p in logged if p.request_id in truth]
    keys = {name: create_key(registry.store, registry.audit, name, role, actor="test").secret
            for name, role in [("svc", "predict"), ("honest", "feedback"), ("flipper", "feedback")]}
    app = create_app(registry, [MODEL], settings.serve.model_copy(update={"log_flush_ms": 50.0}))
    rng = np.random.default_rng(0)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        server.wait_ready()
        answer = http.post(f"/v1/models/{MODEL}/predict", json={"instances": [f for f, _ in rows]},
                           headers={"Authorization": f"Bearer {keys['svc']}"})
        assert answer.status_code == 200 and answer.json()["version"] == champion.version
        rids = answer.json()["request_ids"]
        classes = sorted({label for _, label in rows})
        for start, name in ((0, "honest"), (1, "flipper")):
            items = []
            for rid, (_, label) in list(zip(rids, rows, strict=True))[start::2]:
                if name == "flipper" and rng.uniform() < 1 / 3:
                    label = next(c for c in classes if c != label)
                items.append({"request_id": rid, "label": label})
            sent = http.post("/v1/feedback", json=items,
                             headers={"Authorization": f"Bearer {keys[name]}"})
            assert sent.status_code == 202, sent.text
    before = len(registry.versions(MODEL))
    outcome = run_once(MODEL, settings=settings, registry=registry)
    flipper = keys["flipper"].split("_")[1]
    assert outcome.outcome == "suspect_feedback", outcome.steps
    assert outcome.comparison["feedback_screen"]["flagged"] == [flipper]
    assert len(registry.versions(MODEL)) == before  # nothing was trained
    (alert,) = [a for a in registry.store.list_alerts(MODEL) if a.kind == "suspect_feedback"]
    assert flipper in alert.message
    hold = registry.audit.entries(action="loop_hold")[-1]
    assert hold.details["reason"] == "suspect_feedback" and hold.details["sources"] == [flipper]
    assert registry.audit.verify().ok
