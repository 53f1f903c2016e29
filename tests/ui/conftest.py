"""A store populated by one real small training run (2 workers), then monitored windows, alerts
and loop runs written through the store's functions, served by the real model server (which
mounts the dashboard) on a loopback port; and a headless Chromium to look at it.

Training runs once per session (about 10-20 s); everything else is cheap.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save
from scipy import stats

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.auth import create_key
from driftloop.serve.server import BackgroundServer
from driftloop.store.clock import utcnow
from driftloop.ui import mount_dashboard

MODEL = "cancer"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WINDOWS = 12
WINDOW_ROWS = 60
SHIFTED = ("mean", "worst")  # features starting with these drift in the last window
HOOK = "https://hooks.example.com/services/T000/SECRET-TOKEN"


@dataclass
class Dashboard:
    settings: Settings
    registry: Registry
    url: str
    admin_key: str
    predict_key: str
    test_accuracy: float  # cancer v1 on its test split
    window_ids: list[int]


def reference_and_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training table (400 rows) and unseen rows the windows are drawn from."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["band"] = rng.choice(["low", "mid", "high"], len(frame))
    return frame.iloc[:400].reset_index(drop=True), frame.iloc[400:].reset_index(drop=True)


def drift_report(reference: pd.DataFrame, current: pd.DataFrame,
                 features: list[dict[str, str]], *, alpha: float = 0.05,
                 share_threshold: float = 0.5) -> dict[str, Any]:
    """A window report in the monitor's shape, computed for real: KS or chi-square per feature,
    Benjamini-Hochberg adjusted, and reference-vs-current histograms."""
    tests, histograms, p_values = [], {}, []
    for f in features:
        name, kind = f["name"], f["kind"]
        ref, cur = reference[name], current[name]
        if kind == "numeric":
            ks = stats.ks_2samp(ref, cur)
            statistic, p = float(ks.statistic), float(ks.pvalue)
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
            labels = [f"{a:.3g}–{b:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
            ref_h = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0] / len(ref)
            cur_h = np.histogram(np.clip(cur, edges[0], edges[-1]), edges)[0] / len(cur)
            test, effect_metric = "ks", "wasserstein_norm"
            effect = float(stats.wasserstein_distance(ref, cur) / (ref.std() or 1.0))
        else:
            labels = sorted(set(ref) | set(cur))
            ref_c = np.array([(ref == v).sum() for v in labels], dtype=float)
            cur_c = np.array([(cur == v).sum() for v in labels], dtype=float)
            chi = stats.chi2_contingency(np.vstack([ref_c, cur_c]) + 0.5)
            statistic, p = float(chi.statistic), float(chi.pvalue)
            ref_h, cur_h = ref_c / ref_c.sum(), cur_c / cur_c.sum()
            test, effect_metric = "chi2", "jensen_shannon"
            effect = float(stats.entropy(ref_h + 1e-12, cur_h + 1e-12))
        p_values.append(p)
        tests.append({"name": name, "kind": kind, "test": test, "statistic": statistic,
                      "p_value": p, "effect_size": effect, "effect_metric": effect_metric,
                      "reason": None})
        histograms[name] = {"kind": kind, "labels": [str(x) for x in labels],
                            "reference": ref_h.round(6).tolist(),
                            "current": cur_h.round(6).tolist()}
    adjusted = stats.false_discovery_control(p_values, method="bh")
    for t, p_adj in zip(tests, adjusted, strict=True):
        t["p_value_adjusted"] = float(p_adj)
        t["drifted"] = bool(p_adj < alpha)
        t["status"] = "drift" if t["drifted"] else "ok"
    share = sum(t["drifted"] for t in tests) / len(tests)
    return {"drift_detected": share >= share_threshold, "share_drifted": share,
            "correction": "bh", "alpha": alpha, "features": tests,
            "prediction": {"drift_detected": False, "outputs": []}, "histograms": histograms}


def _interval(value: float, half: float = 0.04) -> dict[str, float]:
    return {"value": round(value, 4), "low": round(value - half, 4),
            "high": round(min(1.0, value + half), 4)}


def populate_monitoring(registry: Registry, test_accuracy: float) -> list[int]:
    """Windows 1..11 without drift, window 12 shifted (drifting); alerts and loop runs."""
    store = registry.store
    reference, unseen = reference_and_rows()
    features = registry.bundle(registry.get(MODEL, 1)).schema["features"]
    rng = np.random.default_rng(1)
    start = utcnow() - timedelta(hours=WINDOWS)
    ids = []
    for i in range(WINDOWS):
        current = unseen.sample(WINDOW_ROWS, replace=True, random_state=i).reset_index(drop=True)
        last = i == WINDOWS - 1
        if last:
            for f in features:
                if f["kind"] == "numeric" and f["name"].split()[0] in SHIFTED:
                    current[f["name"]] += 0.8 * reference[f["name"]].std()
        report = drift_report(reference, current, features)
        estimated = {"accuracy": _interval(test_accuracy - 0.01 - 0.002 * rng.random()),
                     "roc_auc": _interval(0.97)}
        realised = ({"labelled": 40, "accuracy": _interval(test_accuracy - 0.015, 0.07)}
                    if 3 <= i <= 8 else None)
        window = store.add_window(
            model_name=MODEL, version=1, first_log_id=i * WINDOW_ROWS + 1,
            last_log_id=(i + 1) * WINDOW_ROWS, start_at=start + timedelta(hours=i),
            end_at=start + timedelta(hours=i + 1), rows=WINDOW_ROWS, status="ok",
            drift_detected=report["drift_detected"], share_drifted=report["share_drifted"],
            prediction_drift=False, report=report, estimated=estimated, realised=realised)
        ids.append(window.id)
    store.add_alert(
        model_name=MODEL, window_id=ids[-1], kind="dataset_drift",
        message=f"dataset drift in window #{ids[-1]}: "
                f"{sum(1 for f in features if f['name'].split()[0] in SHIFTED)} shifted "
                "features", details={"share": 0.6},
        deliveries=[{"url": HOOK, "ok": True, "attempts": 1, "status": 200}])
    # the other models: one degraded (realised far below its test accuracy), one ok
    store.add_window(model_name="credit", version=1, first_log_id=1, last_log_id=50,
                     start_at=start, end_at=start + timedelta(hours=1), rows=50, status="ok",
                     drift_detected=False, share_drifted=0.0, prediction_drift=False,
                     report={"features": []}, estimated={"accuracy": _interval(0.79)},
                     realised={"labelled": 50, "accuracy": _interval(0.62)})
    store.add_window(model_name="spare", version=1, first_log_id=1, last_log_id=50,
                     start_at=start, end_at=start + timedelta(hours=1), rows=50, status="ok",
                     drift_detected=False, share_drifted=0.0, prediction_drift=False,
                     report={"features": []}, estimated={"accuracy": _interval(0.80)},
                     realised=None)
    _loop_runs(registry, test_accuracy)
    return ids


def _loop_runs(registry: Registry, test_accuracy: float) -> None:
    store = registry.store
    quiet = store.start_loop_run(MODEL, champion_version=1)
    store.finish_loop_run(quiet.id, outcome="no_trigger", details={"steps": [
        {"step": "trigger", "message": "0 of the last 3 windows drifted"}]})
    run = store.start_loop_run(MODEL, champion_version=1)
    store.finish_loop_run(
        run.id, outcome="promoted", challenger_version=2, promoted=True,
        trigger={"kind": "drift", "message": "3 consecutive windows drifted",
                 "windows": 3, "share_drifted": 0.645},
        details={"steps": [{"step": "retrain", "message": "trained v2 on 1,200 rows"},
                           {"step": "promote", "message": "v2 promoted to production"}],
                 "gates": [{"name": "min_accuracy", "passed": True, "value": 0.951,
                            "bound": 0.8, "message": "above the floor"},
                           {"name": "no_regression", "passed": True, "value": 0.012,
                            "bound": -0.01, "message": "challenger not worse"}],
                 "accuracy_champion": round(test_accuracy, 4), "accuracy_challenger": 0.951})
    kept = store.start_loop_run(MODEL, champion_version=1)
    store.finish_loop_run(
        kept.id, outcome="kept", challenger_version=None, promoted=False,
        trigger={"kind": "performance_drop", "message": "realised accuracy fell by 0.07",
                 "drop": 0.07, "labelled": 120},
        details={"steps": [{"step": "retrain", "message": "trained a challenger"}],
                 "gates": [{"name": "no_regression", "passed": False, "value": -0.031,
                            "bound": -0.01, "message": "challenger worse than champion"}],
                 "accuracy_champion": 0.921, "accuracy_challenger": 0.890})


def _register_copies(registry: Registry) -> None:
    """v2 of cancer (nudged weights, retrained from v1) and three more models."""
    v1 = registry.load(MODEL, 1)
    record = registry.get(MODEL, 1)
    state = {k: v.clone() for k, v in v1.module.state_dict().items()}
    last = [k for k in state if k.endswith("bias")][-1]
    state[last] += torch.tensor([0.3, -0.3])
    registry.register(MODEL, run_id=record.run_id, bundle=v1.bundle, weights=save(state),
                      metrics={**record.metrics, "accuracy": record.metrics["accuracy"] - 0.02},
                      actor="test", reason="v2 retrained", parent_id=record.id)
    weights = registry.artifacts.get_bytes(record.weights_sha256)
    for name, accuracy in (("credit", 0.80), ("spare", 0.82), ("quiet", 0.75)):
        registry.register(name, run_id=None, bundle=v1.bundle, weights=weights,
                          metrics={"accuracy": accuracy, "roc_auc": 0.9}, actor="test",
                          reason="a second model")
    registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
    registry.promote("credit", 1, to="production", force=True, reason="test bootstrap")


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Dashboard:
    import driftloop as dl

    reference, _ = reference_and_rows()
    home = tmp_path_factory.mktemp("dashboard-home")
    settings = Settings.load(overrides={"home": str(home), "train": {"patience": 100}},
                             environ={}, cwd=home)
    dl.train(reference, target="target", workers=2, epochs=3, batch_size=32, name=MODEL,
             settings=settings, progress=False)
    registry = Registry.open(settings)
    _register_copies(registry)
    test_accuracy = registry.get(MODEL, 1).metrics["accuracy"]
    ids = populate_monitoring(registry, test_accuracy)
    admin = create_key(registry.store, registry.audit, "dashboard-admin", "admin", actor="test")
    predict = create_key(registry.store, registry.audit, "app", "predict", actor="test")
    cfg = settings.serve.model_copy(update={"log_flush_ms": 50.0, "key_cache_s": 0.0})
    server = BackgroundServer(
        create_app(registry, [MODEL], cfg, mount=[mount_dashboard])).start()
    try:
        server.wait_ready()
    except RuntimeError:
        server.stop()
        raise
    yield Dashboard(settings, registry, server.url, admin.secret, predict.secret, test_accuracy,
                    ids)
    server.stop()
    registry.store.close()


# -- the browser ---------------------------------------------------------------------------

_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $DRIFTLOOP_ARTIFACTS/dashboard, or a session temp folder."""
    base = os.environ.get("DRIFTLOOP_ARTIFACTS")
    folder = (Path(base) / "dashboard") if base else tmp_path_factory.mktemp("dashboard-shots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {folder}")
    return folder


# module scope: Playwright's sync API runs an event loop in this thread until it is closed,
# which would break every later `asyncio.run` (the serve doctests run after tests/)
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`apt-get install -y "
                    "chromium`; .ci/run does) to run the dashboard's browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Page:
    """A page in a fresh 1366x768 context that records console errors and failed requests."""

    def __init__(self, browser: Any, base: str, shots: Path) -> None:
        self.base, self.shots = base, shots
        self.context = browser.new_context(viewport={"width": 1366, "height": 768})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(
            f"request failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}")
                     if r.status >= 400 else None)

    def open(self, path: str) -> float:
        """Load ``path`` and wait until its script has drawn it; returns the seconds taken."""
        started = time.perf_counter()
        self.page.goto(self.base + path)
        self.page.wait_for_function("document.body.dataset.ready !== undefined"
                                    " && document.body.dataset.ready !== '0'", timeout=30_000)
        took = time.perf_counter() - started
        assert self.page.evaluate("document.body.dataset.ready") == "1", (
            self.page.inner_text("main"))
        return took

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        _SHOTS.append(path)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, dashboard, artifacts_dir):
    opened = Page(browser, dashboard.url, artifacts_dir)
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        terminalreporter.write_line(f"dashboard screenshots ({len(_SHOTS)}): "
                                    f"{_SHOTS[0].parent}")
