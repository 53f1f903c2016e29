"""Page-load time with 100 versions and 1,000 monitoring windows in the store.

The issue asks for pages under 1 s locally; this shared test machine gets a generous 3 s bound.
The measured seconds per page are printed (run with ``-s`` to see them).

The volume is written through the store's methods, but every window, alert and loop run is a
copy of one the real monitor and loop wrote into the dashboard fixture's store.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.registry.evidence import evaluations
from driftloop.serve.server import BackgroundServer
from driftloop.store.clock import utcnow
from driftloop.ui import create_ui_app

from .conftest import MODEL, Page

pytestmark = pytest.mark.slow

VERSIONS = 100
WINDOWS = 1000
BIG = "big"
BOUND_S = 3.0


@pytest.fixture(scope="module")
def big(dashboard, tmp_path_factory):
    """A second store: 100 versions of one model (evaluated), 1,000 windows, alerts, loop runs,
    copied from the real ones of the dashboard fixture."""
    source = dashboard.registry
    home = tmp_path_factory.mktemp("big-home")
    registry = Registry.open(Settings.load(overrides={"home": str(home)}, environ={}, cwd=home))
    record = source.get(MODEL, 1)
    bundle = source.bundle(record)
    weights = source.artifacts.get_bytes(record.weights_sha256)
    evaluation = evaluations(source.store, source.artifacts, record)[0]
    body = dict(evaluation.body)
    body["diagram_sha256"] = registry.artifacts.put_bytes(
        source.artifacts.get_bytes(evaluation.body["diagram_sha256"]))
    report_sha = registry.artifacts.put_json(body)
    registry.store.upsert_dataset(evaluation.dataset_fingerprint, "test.csv", 60, None)
    started = time.perf_counter()
    parent = None
    for n in range(VERSIONS):
        v = registry.register(BIG, run_id=None, bundle=bundle, weights=weights,
                              metrics={**record.metrics, "accuracy": 0.85 + n / 1000},
                              actor="test", reason=f"version {n + 1}", parent_id=parent)
        registry.store.add_report("evaluation", evaluation.dataset_fingerprint, report_sha,
                                  {"accuracy": v.metrics["accuracy"]}, version_id=v.id)
        parent = v.id
    registry.promote(BIG, VERSIONS, to="production", force=True, reason="timing test")
    real = source.store.list_windows(MODEL)
    calm = next(w for w in real if not w.drift_detected and w.realised is None)
    labelled = next(w for w in real if not w.drift_detected and w.realised is not None)
    drifting = real[-1]
    assert drifting.drift_detected
    alerts = [a for a in source.store.list_alerts(MODEL) if a.window_id == drifting.id]
    start = utcnow() - timedelta(hours=WINDOWS)
    for i in range(WINDOWS):
        like = drifting if i % 50 == 49 else labelled if i % 10 == 0 else calm
        window = registry.store.add_window(
            model_name=BIG, version=VERSIONS, first_log_id=i * like.rows + 1,
            last_log_id=(i + 1) * like.rows, start_at=start + timedelta(hours=i),
            end_at=start + timedelta(hours=i + 1), rows=like.rows, status=like.status,
            drift_detected=like.drift_detected, share_drifted=like.share_drifted,
            prediction_drift=like.prediction_drift, report=like.report,
            estimated=like.estimated, realised=like.realised)
        if like is drifting:
            for alert in alerts:
                registry.store.add_alert(
                    model_name=BIG, window_id=window.id, kind=alert.kind,
                    message=alert.message.replace(f"window {drifting.id}",
                                                  f"window {window.id}"),
                    details=alert.details, deliveries=alert.deliveries)
    runs = source.store.list_loop_runs(MODEL)
    for i in range(50):
        like = runs[i % len(runs)]
        run = registry.store.start_loop_run(BIG, champion_version=VERSIONS)
        registry.store.finish_loop_run(
            run.id, outcome=like.outcome, details=like.details, trigger=like.trigger,
            challenger_version=like.challenger_version and VERSIONS - 1, promoted=like.promoted)
    print(f"\nfilled the timing store in {time.perf_counter() - started:.1f} s")
    server = BackgroundServer(create_ui_app(registry)).start()
    yield server.url
    server.stop()
    registry.store.close()


def test_pages_load_fast_with_100_versions_and_1000_windows(browser, big, artifacts_dir):
    paths = {"models": "/", "version": f"/ui/models/{BIG}/versions/{VERSIONS}",
             "monitoring": f"/ui/models/{BIG}/monitoring", "loop": "/ui/loop",
             "audit": "/ui/audit"}
    measured = {}
    for name, path in paths.items():
        page = Page(browser, big, artifacts_dir)  # a fresh context: nothing cached
        try:
            cold = page.open(path)
            warm = page.open(path)
            assert page.errors == [], page.errors
            if name == "monitoring":
                labels = page.page.evaluate("Chart.getChart('timeline').data.labels.length")
                assert labels == WINDOWS
                page.shot("7-monitoring-1000-windows")
            if name == "models":
                rows = page.page.locator("table.versions tbody tr").count()
                assert rows == VERSIONS
        finally:
            page.close()
        api = {"models": "/ui/api/models", "monitoring": f"/ui/api/models/{BIG}/monitoring",
               "version": f"/ui/api/models/{BIG}/versions/{VERSIONS}"}.get(name)
        json_s = None
        if api is not None:
            t = time.perf_counter()
            assert httpx.get(big + api, timeout=30).status_code == 200
            json_s = time.perf_counter() - t
        measured[name] = (cold, warm, json_s)
    print(f"\npage load with {VERSIONS} versions and {WINDOWS} windows "
          "(seconds: cold context, reload, JSON endpoint alone):")
    for name, (cold, warm, json_s) in measured.items():
        extra = "" if json_s is None else f"  json {json_s:.3f}"
        print(f"  {name:10s} cold {cold:.3f}  reload {warm:.3f}{extra}")
    slow = {name: t[0] for name, t in measured.items() if t[0] >= BOUND_S}
    assert not slow, f"pages slower than {BOUND_S} s: {slow}"
