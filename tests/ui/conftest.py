"""A store filled the way the product fills it, served by the real model server (which mounts the
dashboard) on a loopback port; and a headless Chromium to look at it.

What the session fixture does, once (about a minute, most of it the two trainings):

1. ``driftloop.train`` trains ``cancer`` v1 (1 worker, 3 epochs): run, curve, data check,
   evaluation with slices, reference profile, model card. ``credit``, ``spare`` and ``quiet``
   are the same weights registered under other names with its test metrics and its reference
   profile (so the monitor can test their traffic); ``quiet`` never gets any.
2. The model server serves cancer, credit and spare; real ``POST /v1/models/{name}/predict``
   traffic goes through it (and its prediction log) with a predict key, and ``POST
   /v1/feedback`` sends the true labels of part of it.
3. ``monitor()`` (``monitor.window: 60``) cuts cancer's calm traffic into windows, some with
   labels; credit gets one window whose ``mean …`` and ``worst …`` features moved by 0.8
   standard deviations, every row labelled (its realised accuracy falls: degraded); spare one
   calm window without labels (ok). Alerts go to a webhook receiver on loopback whose URL
   carries a token, as Slack's do.
4. ``run_once()`` on cancer: the calm windows fire no trigger. Then two windows of shifted
   traffic (benign-looking cases only, a covariate shift the model stays sure about: drifting,
   not degraded; no labels yet), and a second ``run_once()``: its monitor stores the drifting
   windows and their alerts, the drift trigger fires, the loop retrains v2 from v1 with v1's
   recipe on the labelled rows and runs the promotion gates, which refuse it (no model-card
   text is written in these settings, and the holdout is small), so v1 keeps serving.

Nothing here writes a window, an alert or a loop run by hand.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.http.keys import SESSION_COOKIE
from driftloop.loop.runner import run_once
from driftloop.monitor.reference import load_reference, store_reference
from driftloop.monitor.windows import monitor
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.auth import create_key
from driftloop.serve.server import BackgroundServer
from driftloop.ui import mount_dashboard

MODEL = "cancer"
TARGET = "target"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
WORKERS = 1
EPOCHS = 3
WINDOW_ROWS = 60
CALM_WINDOWS = 10
SHIFTED_WINDOWS = 2  # = loop.drift_windows: the drift trigger fires on the second
WINDOWS = CALM_WINDOWS + SHIFTED_WINDOWS
LABELLED_WINDOWS = range(2, 8)  # calm windows whose feedback arrived ...
LABELLED_ROWS = 40  # ... for this many of their rows
SHIFTED = ("mean", "worst")  # credit's traffic: features starting with these move
SELECTED = "worst concave points"  # cancer's shifted traffic: only rows below its median
HOOK_SECRET = "SECRET-TOKEN"
COPIES = ("credit", "spare", "quiet")
BADGES = {"cancer": "drifting", "credit": "degraded", "quiet": "no traffic", "spare": "ok"}
"""What the traffic above makes of each model's health badge."""


@dataclass
class Dashboard:
    settings: Settings
    registry: Registry
    url: str
    admin_key: str
    predict_key: str
    read_key: str  # keys exist, so reading the dashboard needs one (role read or admin)
    test_accuracy: float  # cancer v1 on its test split
    window_ids: list[int]  # cancer's windows, oldest first
    hook: Hook  # where the alerts were delivered


class Hook:
    """A webhook receiver on loopback; its URL carries a token in the path, as Slack's do."""

    def __init__(self) -> None:
        received: list[bytes] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/{HOOK_SECRET}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reference_and_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training table (400 rows) and unseen rows the traffic is drawn from (shuffled first:
    the data set is not in random order)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["band"] = rng.choice(["low", "mid", "high"], len(frame))
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.iloc[:400].reset_index(drop=True), frame.iloc[400:].reset_index(drop=True)


def traffic_window(reference: pd.DataFrame, unseen: pd.DataFrame, seed: int,
                   shift: str | None = None) -> pd.DataFrame:
    """``WINDOW_ROWS`` unseen rows. ``shift="selected"``: only rows whose SELECTED feature is
    below its training median, benign-looking cases (a covariate shift by selection: labels
    follow the same rule and the model stays sure of them, so its estimated accuracy holds);
    ``shift="moved"``: the SHIFTED features moved by 0.8 standard deviations (the model's
    answers go wrong)."""
    pool = unseen
    if shift == "selected":
        pool = unseen[unseen[SELECTED] < reference[SELECTED].median()]
    rows = pool.sample(WINDOW_ROWS, replace=True, random_state=seed).reset_index(drop=True)
    if shift == "moved":
        for name in rows.columns:
            if name.split()[0] in SHIFTED:
                rows[name] += 0.8 * reference[name].std()
    return rows


class Traffic:
    """Predictions through the server's HTTP API with a predict key, labels with a feedback key
    (a predict key may not label)."""

    def __init__(self, url: str, key: str, store: Any, feedback_key: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"})
        self.feedback_headers = {"Authorization": f"Bearer {feedback_key}"}
        self.store = store
        self.sent: dict[str, int] = {}

    def predict(self, model: str, rows: pd.DataFrame) -> list[str]:
        body = {"instances": rows.drop(columns=[TARGET]).to_dict("records")}
        answer = self.http.post(f"/v1/models/{model}/predict", json=body)
        assert answer.status_code == 200, answer.text
        self.sent[model] = self.sent.get(model, 0) + len(rows)
        return answer.json()["request_ids"]

    def feedback(self, ids: list[str], labels: pd.Series) -> None:
        items = [{"request_id": i, "label": int(y)} for i, y in zip(ids, labels, strict=True)]
        answer = self.http.post("/v1/feedback", json=items, headers=self.feedback_headers)
        assert answer.status_code == 202, answer.text

    def logged(self, timeout_s: float = 30.0) -> None:
        """Wait until the prediction log has written every row sent."""
        deadline = time.monotonic() + timeout_s
        for model, n in self.sent.items():
            while len(self.store.predictions_after(model, 0)) < n:
                assert time.monotonic() < deadline, f"the prediction log lags for {model}"
                time.sleep(0.05)

    def close(self) -> None:
        self.http.close()


def dashboard_settings(home: Path, hook: str) -> Settings:
    return Settings.load(overrides={
        "home": str(home), "train": {"patience": 100},
        # the breast-cancer features are that good: on a few hundred labelled rows single
        # features reach a ROC AUC of 0.997, which the default 0.99 calls leakage
        "check": {"leakage_auc": 0.999},
        "monitor": {"window": str(WINDOW_ROWS), "webhooks": [hook], "webhook_wait_s": 10.0},
        "loop": {"drift_windows": SHIFTED_WINDOWS},
        "serve": {"log_flush_ms": 50.0, "key_cache_s": 0.0},
    }, environ={}, cwd=home)


def _register_copies(registry: Registry) -> None:
    """cancer v1's weights, test metrics and reference profile under the names in COPIES."""
    v1 = registry.get(MODEL, 1)
    bundle = registry.bundle(v1)
    weights = registry.artifacts.get_bytes(v1.weights_sha256)
    profile = load_reference(registry, MODEL, 1)
    train = registry.store.run_datasets(v1.run_id)["train"]
    for name in COPIES:
        copy = registry.register(name, run_id=None, bundle=bundle, weights=weights,
                                 metrics=dict(v1.metrics), actor="test",
                                 reason=f"{MODEL} v1 served under a second name")
        store_reference(registry, copy, profile, dataset_id=train.id, run_id=None)


def build(settings: Settings, hook: Hook) -> tuple[Dashboard, BackgroundServer]:
    """Everything in the module docstring; returns the dashboard and its running server."""
    import driftloop as dl

    reference, unseen = reference_and_rows()
    dl.train(reference, target=TARGET, workers=WORKERS, epochs=EPOCHS, batch_size=32,
             name=MODEL, settings=settings, progress=False)
    registry = Registry.open(settings)
    _register_copies(registry)
    # no card text is written here, so the card gate refuses every promotion: bootstrap by force
    for name in (MODEL, "credit"):
        registry.promote(name, 1, to="production", force=True, reason="test bootstrap")
    keys = {role: create_key(registry.store, registry.audit, f"dashboard-{role}", role,
                             actor="test").secret
            for role in ("admin", "predict", "read", "feedback")}
    server = BackgroundServer(create_app(registry, [MODEL, "credit", "spare"], settings.serve,
                                         versions={"spare": 1}, mount=[mount_dashboard]))
    try:
        server.start().wait_ready()
        traffic = Traffic(server.url, keys["predict"], registry.store, keys["feedback"])
        for i in range(CALM_WINDOWS):
            rows = traffic_window(reference, unseen, i)
            ids = traffic.predict(MODEL, rows)
            if i in LABELLED_WINDOWS:
                traffic.feedback(ids[:LABELLED_ROWS], rows[TARGET][:LABELLED_ROWS])
        credit = traffic_window(reference, unseen, 100, "moved")
        traffic.feedback(traffic.predict("credit", credit), credit[TARGET])
        traffic.predict("spare", traffic_window(reference, unseen, 200))
        traffic.logged()
        for name in (MODEL, "credit", "spare"):
            monitor(name, settings=settings, registry=registry)
        run_once(MODEL, settings=settings, registry=registry)  # calm windows: no trigger
        for i in range(SHIFTED_WINDOWS):
            traffic.predict(MODEL, traffic_window(reference, unseen, 50 + i, "selected"))
        traffic.logged()
        run_once(MODEL, settings=settings, registry=registry)  # drift: retrain, gates, kept
        traffic.close()
    except BaseException:
        server.stop()
        registry.store.close()
        raise
    built = Dashboard(settings, registry, server.url, keys["admin"], keys["predict"], keys["read"],
                      registry.get(MODEL, 1).metrics["accuracy"],
                      [w.id for w in registry.store.list_windows(MODEL)], hook)
    return built, server


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Dashboard:
    hook = Hook()
    home = tmp_path_factory.mktemp("dashboard-home")
    started = time.perf_counter()
    try:
        built, server = build(dashboard_settings(home, hook.url), hook)
    except BaseException:
        hook.stop()
        raise
    print(f"\nbuilt the dashboard's store in {time.perf_counter() - started:.1f} s")
    yield built
    server.stop()
    built.registry.store.close()
    hook.stop()


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
    """A page logged in with the read key, as after the login form (tested on its own)."""
    opened = Page(browser, dashboard.url, artifacts_dir)
    opened.context.add_cookies([{"name": SESSION_COOKIE, "value": dashboard.read_key,
                                 "url": dashboard.url, "httpOnly": True, "sameSite": "Strict"}])
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SHOTS:
        terminalreporter.write_line(f"dashboard screenshots ({len(_SHOTS)}): "
                                    f"{_SHOTS[0].parent}")
