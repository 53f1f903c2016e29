"""The monitor over a real trained model's prediction log: windows, drift, CBPE, late labels,
alerts to a webhook, and `driftloop monitor` on the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.monitor.windows import WindowSpec, monitor
from driftloop.registry import Registry
from driftloop.store.clock import utcnow
from pg_server import store_overrides

MODEL = "cancer"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> tuple[Settings, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    from driftloop.train.launcher import train

    frame = load_breast_cancer(as_frame=True).frame
    home = tmp_path_factory.mktemp("monitor-home")
    settings = Settings.load(overrides={"home": str(home), "monitor": {"min_rows": 20},
                                        **store_overrides(request)},
                             environ={}, cwd=home)
    train(frame, "target", workers=1, epochs=4, batch_size=32, settings=settings,
          progress=False, name=MODEL)
    return settings, frame


def _log(settings: Settings, frame: pd.DataFrame, *, start: int, at_step_s: float = 0.0,
         labels: bool = False) -> list[str]:
    """Predict ``frame`` with the registered model and write the rows to the prediction log."""
    registry = Registry.open(settings)
    loaded = registry.load(MODEL, 1)
    features = frame.drop(columns=["target"])
    proba = loaded.predict_raw(features)
    now = utcnow()
    ids = [f"r{start + i}" for i in range(len(frame))]
    rows = [{"request_id": rid, "model_name": MODEL, "version": 1,
             "at": now + timedelta(seconds=i * at_step_s),
             "features": {k: float(v) for k, v in features.iloc[i].items()},
             "output": {"predictions": int(proba[i].argmax()),
                        "probabilities": proba[i].tolist()}}
            for i, rid in enumerate(ids)]
    registry.store.add_predictions(rows)
    if labels:
        registry.store.add_feedback(zip(ids, frame["target"].tolist(), strict=True))
    return ids


def test_windows_drift_estimates_and_late_labels(trained: Any) -> None:
    settings, frame = trained
    registry = Registry.open(settings)
    calm = frame.sample(300, random_state=1)
    shifted = frame.sample(300, random_state=2).copy()
    shifted[["mean radius", "mean texture", "mean perimeter", "mean area", "worst radius",
             "worst texture", "worst perimeter", "worst area", "mean smoothness",
             "mean compactness", "mean concavity", "mean symmetry", "worst smoothness",
             "worst compactness", "worst concavity", "worst symmetry"]] *= 1.6
    calm_ids = _log(settings, calm, start=0)
    _log(settings, shifted, start=1000)
    result = monitor(MODEL, window="150", settings=settings, registry=registry)
    assert [w.rows for w in result.windows] == [150, 150, 150, 150]
    assert [w.drift_detected for w in result.windows] == [False, False, True, True]
    drifted = {f["name"] for f in result.windows[2].report["features"] if f["drifted"]}
    assert "mean radius" in drifted and "mean fractal dimension" not in drifted
    assert result.windows[2].report["histograms"]["mean radius"]["kind"] == "numeric"
    est = result.windows[0].estimated["accuracy"]
    assert est["low"] <= est["value"] <= est["high"] and est["value"] > 0.8
    assert all(w.realised is None for w in result.windows)
    assert {a.kind for a in result.alerts} >= {"dataset_drift"}
    # labels arrive late: the next run fills in the realised accuracy of the old windows
    registry.store.add_feedback(zip(calm_ids, calm["target"].tolist(), strict=True))
    again = monitor(MODEL, window="150", settings=settings, registry=registry)
    assert again.windows == [] and again.refreshed == 2
    stored = registry.store.list_windows(MODEL)
    assert [w.realised["labelled"] if w.realised else 0 for w in stored] == [150, 150, 0, 0]
    assert stored[0].realised["accuracy"]["value"] > 0.8


def test_small_windows_are_not_testable_and_rows_wait_for_a_full_window(trained: Any) -> None:
    settings, frame = trained
    registry = Registry.open(settings)
    before = len(registry.store.list_windows(MODEL))
    _log(settings, frame.sample(50, random_state=3), start=5000)
    waiting = monitor(MODEL, window="60", settings=settings, registry=registry)
    assert waiting.windows == [] and waiting.pending_rows == 50
    tiny = monitor(MODEL, window="10", settings=settings.updated({"monitor": {"min_rows": 20}}),
                   registry=registry)
    assert [w.status for w in tiny.windows] == ["not_testable"] * 5
    assert tiny.windows[0].report["status"] == "not_testable"
    assert len(registry.store.list_windows(MODEL)) == before + 5


def test_time_windows_close_when_their_end_has_passed(trained: Any) -> None:
    settings, frame = trained
    registry = Registry.open(settings)
    _log(settings, frame.sample(40, random_state=4), start=9000, at_step_s=0.0)
    now = utcnow()
    open_result = monitor(MODEL, window="1d", settings=settings, registry=registry, now=now)
    assert open_result.windows == [] and open_result.pending_rows == 40
    later = monitor(MODEL, window="1d", settings=settings, registry=registry,
                    now=now + timedelta(days=2))
    assert [w.rows for w in later.windows] == [40]


def test_window_spec_and_cli(trained: Any, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    settings, frame = trained
    assert WindowSpec.parse("2h").seconds == 7200
    with pytest.raises(UsageError, match="neither a row count"):
        WindowSpec.parse("soon")
    monkeypatch.chdir(settings.home)
    monkeypatch.setenv("DRIFTLOOP_HOME", settings.home)
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", settings.store_url)
    _log(settings, frame.sample(100, random_state=5), start=20000)
    capsys.readouterr()
    assert main(["monitor", "--model", MODEL, "--window", "100", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["model"] == MODEL and len(body["windows"]) == 1
    assert set(body["windows"][0]) >= {"drift", "estimated", "realised", "status", "rows"}
    assert main(["monitor", "--model", MODEL, "--window", "soon"]) == 2
    assert "neither a row count" in " ".join(capsys.readouterr().err.split())
    assert main(["monitor", "--model", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
