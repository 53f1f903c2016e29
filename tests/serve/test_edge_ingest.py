"""``driftloop ingest``: an edge package's own log, written by the package's runtime on a really
trained model, lands in the store once however often it is imported; erasure, feedback,
monitoring and the loop then treat the rows as served ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.governance.erasure import erase_subject
from driftloop.loop.runner import run_once
from driftloop.monitor.windows import monitor
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.edge.cli import predict_chunks
from driftloop.serve.edge.runtime import EdgeModel
from driftloop.serve.export import export_edge_project, package_name
from driftloop.serve.ingest import ingest_edge_log
from driftloop.serve.server import BackgroundServer
from driftloop.serve.validation import RequestInvalid
from pg_server import store_overrides

from .conftest import instances

MODEL = "cancer-edge"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> tuple[Settings, pd.DataFrame, Path]:
    """A model of its own store (this module adds log rows, alerts and erasures), promoted,
    and its edge package's model folder."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from driftloop.train.launcher import train

    frame = load_breast_cancer(as_frame=True).frame
    frame["contact"] = np.random.default_rng(0).choice(
        [f"user{i}@example.com" for i in range(12)], len(frame))
    home = tmp_path_factory.mktemp("edge-ingest-home")
    settings = Settings.load(overrides={"home": str(home), "train": {"patience": 100},
                                        "monitor": {"min_rows": 20},
                                        **store_overrides(request)}, environ={}, cwd=home)
    train(frame, "target", workers=1, epochs=3, batch_size=32, settings=settings,
          progress=False, allow_pii=["contact"], name=MODEL)
    with Registry.open(settings) as registry:
        registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
        out = home / "package"
        export_edge_project(registry, MODEL, 1, out)
    return settings, frame.drop(columns=["target"]), out / package_name(MODEL, 1) / "model"


def _predict(folder: Path, log_dir: Path, frame: pd.DataFrame, *, batch: int = 10,
             ids: list[Any] | None = None, **log: Any) -> list[str]:
    model = EdgeModel(folder, log_dir=log_dir, **log)
    rows, out = instances(frame), []
    for start in range(0, len(rows), batch):
        chunk = ids[start:start + batch] if ids is not None else None
        out += [a["request_id"] for a in model.predict(rows[start:start + batch], chunk)]
    return out


def test_drifted_edge_log_raises_a_drift_window_and_triggers_the_loop(trained,
                                                                      tmp_path) -> None:
    settings, frame, folder = trained
    with Registry.open(settings) as registry:  # first in this module: windows of its rows only
        assert registry.store.count_predictions() == 0
    calm = frame.sample(150, random_state=1)
    shifted = frame.sample(300, random_state=2).copy()
    numeric = [c for c in shifted.columns if c.startswith(("mean ", "worst "))][:16]
    shifted[numeric] *= 1.6
    log_dir = tmp_path / "log"
    _predict(folder, log_dir, calm, batch=50)
    _predict(folder, log_dir, shifted, batch=50)
    # the device was offline: the rows come in later, in one sync
    loop = settings.updated({"monitor": {"window": "150"},
                             "loop": {"drift_windows": 2, "max_per_day": 0}})
    with Registry.open(loop) as registry:
        assert ingest_edge_log(registry, log_dir, MODEL).added == 450
        result = monitor(MODEL, settings=loop, registry=registry)
        assert [w.rows for w in result.windows] == [150, 150, 150] and not result.pending_rows
        assert [w.drift_detected for w in result.windows] == [False, True, True]
        assert any(a.kind == "dataset_drift" for a in result.alerts)
        # the loop's trigger fires on them (max_per_day 0 holds the retrain itself)
        outcome = run_once(MODEL, settings=loop, registry=registry)
    # the windows were cut above; run_once's own monitor pass finds no new rows and the
    # trigger reads the stored windows
    assert outcome.trigger is not None and outcome.trigger.kind == "drift"
    assert outcome.outcome == "daily_limit"


def test_ingest_twice_keeps_one_copy_and_erasure_finds_edge_rows(trained, tmp_path) -> None:
    settings, frame, folder = trained
    log_dir = tmp_path / "log"
    ids = [f"subject-{i}" for i in range(30)]
    rids = _predict(folder, log_dir, frame.iloc[:30], ids=ids)
    with Registry.open(settings) as registry:
        before = registry.store.count_predictions()
        first = ingest_edge_log(registry, log_dir, MODEL, actor="ops")
        second = ingest_edge_log(registry, log_dir, MODEL, actor="ops")
        assert (first.rows, first.added, second.rows, second.added) == (30, 30, 30, 0)
        assert registry.store.count_predictions() == before + 30
        logged = {r.request_id: r for r in registry.store.list_predictions(MODEL, limit=10_000)}
        assert set(rids) <= set(logged)
        row = logged[rids[0]]
        assert row.replica == "edge" and row.version == 1
        assert row.features["contact"] != frame.iloc[0]["contact"]  # hashed on the device
        assert row.features["mean radius"] == frame.iloc[0]["mean radius"]
        entries = [e for e in registry.audit.entries(action="ingest") if e.actor == "ops"]
        assert [e.details["added"] for e in entries] == [30]  # the second import left none
        # erasure by subject id finds the device's row (hashed under the model's edge key)
        result = erase_subject(registry, "subject-3", actor="dpo")
        assert result.prediction_log == 1 and result.by_subject == 1
        assert rids[3] not in {r.request_id for r in
                               registry.store.list_predictions(MODEL, limit=10_000)}


def test_feedback_names_an_ingested_row(trained, tmp_path) -> None:
    settings, frame, folder = trained
    rids = _predict(folder, tmp_path / "log", frame.iloc[30:35], batch=5)
    with Registry.open(settings) as registry:
        ingest_edge_log(registry, tmp_path / "log", MODEL)
        cfg = settings.serve.model_copy(update={"log_flush_ms": 50.0})
        srv = BackgroundServer(create_app(registry, [MODEL], cfg)).start().wait_ready()
        try:
            r = httpx.post(srv.url + "/v1/feedback",
                           json=[{"request_id": rid, "label": 1} for rid in rids])
            missing = httpx.post(srv.url + "/v1/feedback",
                                 json={"request_id": "not-a-request", "label": 1})
        finally:
            srv.stop()
    assert r.status_code == 202, r.text
    assert missing.status_code == 404


def test_torn_last_line_and_bad_files(trained, tmp_path) -> None:
    settings, frame, folder = trained
    log_dir = tmp_path / "log"
    _predict(folder, log_dir, frame.iloc[40:50])
    last = sorted(log_dir.glob("edge-*.jsonl"))[-1]
    text = last.read_text("utf-8")
    last.write_text(text[:-40], "utf-8")  # the device died writing its last line
    with Registry.open(settings) as registry:
        before = registry.store.count_predictions()
        result = ingest_edge_log(registry, log_dir, MODEL)
        assert (result.rows, result.added, result.files[0].torn) == (9, 9, True)
        # a line changed in the middle: one message naming file and line; nothing imported
        bad_dir = tmp_path / "bad"
        _predict(folder, bad_dir, frame.iloc[50:60])
        bad = sorted(bad_dir.glob("edge-*.jsonl"))[-1]
        lines = bad.read_text("utf-8").splitlines(keepends=True)
        lines[3] = lines[3].replace('"version":1', '"version":9')
        bad.write_text("".join(lines), "utf-8")
        with pytest.raises(UsageError, match=rf"{bad.name}: line 4: version 9 of "
                                             rf"'{MODEL}' is not registered"):
            ingest_edge_log(registry, bad_dir, MODEL)
        registry.register(  # a second model, so that --model names a registered one
            "other", run_id=None, bundle=registry.bundle(registry.get(MODEL, 1)),
            weights=registry.artifacts.get_bytes(registry.get(MODEL, 1).weights_sha256),
            metrics={}, actor="test", reason="wrong --model")
        with pytest.raises(UsageError, match="the log is of model 'cancer-edge', not 'other'"):
            ingest_edge_log(registry, log_dir, "other")
        assert registry.store.count_predictions() == before + 9


def test_bounded_log_reports_what_the_device_dropped(trained, tmp_path) -> None:
    settings, frame, folder = trained
    log_dir = tmp_path / "log"
    rids = _predict(folder, log_dir, frame.iloc[:60], batch=5, max_log_bytes=6000,
                    max_log_files=2)
    files = sorted(log_dir.glob("edge-*.jsonl"))
    assert len(files) == 2
    with Registry.open(settings) as registry:
        result = ingest_edge_log(registry, log_dir, MODEL)
    assert result.dropped_files > 0
    assert result.rows + result.dropped_rows == len(rids) == 60
    assert result.added == result.rows  # these ids were never imported before


def test_cli_ingest(trained, tmp_path, monkeypatch, capsys) -> None:
    settings, frame, folder = trained
    monkeypatch.setenv("DRIFTLOOP_HOME", str(settings.home))
    if settings.store_url:
        monkeypatch.setenv("DRIFTLOOP_STORE_URL", settings.store_url)
    log_dir = tmp_path / "log"
    _predict(folder, log_dir, frame.iloc[60:70])
    assert main(["ingest", str(log_dir), "--model", MODEL, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["ingest", str(log_dir), "--model", MODEL, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (first["added"], second["added"], second["already_held"]) == (10, 0, 10)
    assert main(["ingest", str(tmp_path / "nowhere"), "--model", MODEL]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_sends_a_long_file_in_requests_of_max_instances(trained) -> None:
    _settings, frame, folder = trained
    model = EdgeModel(folder)
    model.validator.max_instances = 15
    answers = predict_chunks(model, instances(frame.iloc[:40]), None)
    assert len(answers) == 40 and len({a["request_id"][:32] for a in answers}) == 3
    bad = instances(frame.iloc[:20])
    bad[17]["mean radius"] = "big"
    with pytest.raises(RequestInvalid, match=r"^rows 15\.\.19 \(one request\): instance 2: "
                                             r"feature 'mean radius' must be a number"):
        predict_chunks(model, bad, None)
