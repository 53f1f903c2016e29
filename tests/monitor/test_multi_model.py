"""Monitoring numbers and loop triggers are per model, per task and per form of label.

Three small models are trained once through ``train()`` (1 worker): a classifier (breast
cancer, integer classes 0/1), a regression model on ``y`` and the same recipe on ``1000·y``.
Each scenario copies that trained home, serves its models with the real app on loopback (so
the prediction log is written by the server's log writer), sends feedback late, monitors,
and runs one loop iteration that stops at the trigger (``loop.max_per_day = 0`` holds every
retrain). A scenario's numbers are summarised with log and window ids replaced by their rank
within the model, so stores that differ only in what else they hold can be compared exactly.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.loop.runner import run_once
from driftloop.monitor.windows import MonitorResult, monitor
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer

pytestmark = pytest.mark.slow

CLS, REG, REG_K = "cls", "reg", "reg_k"
ROWS, CHANGE, BATCH = 500, 250, 10
SHIFTED = ["mean radius", "mean texture", "mean perimeter", "mean area", "worst radius",
           "worst texture", "worst perimeter", "worst area"]


def _regression_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["y"] = x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.3, size=n)
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the three models, each v1 on the ``production`` alias."""
    from sklearn.datasets import load_breast_cancer

    from driftloop.train.launcher import train

    home = tmp_path_factory.mktemp("multi-home")
    settings = Settings.load(overrides={"home": str(home)}, environ={}, cwd=home)
    cancer = load_breast_cancer(as_frame=True).frame
    regression = _regression_frame(600, seed=0)
    scaled = regression.assign(y=regression["y"] * 1000)
    for name, frame, target in ((CLS, cancer, "target"), (REG, regression, "y"),
                                (REG_K, scaled, "y")):
        train(frame, target, workers=1, epochs=4, batch_size=32, settings=settings,
              progress=False, name=name)
    with Registry.open(settings) as registry:
        for name in (CLS, REG, REG_K):
            registry.promote(name, 1, to="production", force=True, reason="test bootstrap")
    return home


@pytest.fixture(scope="module")
def traffic() -> dict[str, tuple[list[dict[str, Any]], list[Any]]]:
    """Instances and true labels per model. The classifier's inputs shift after row
    ``CHANGE``; the regression target rises by 1.5 (five test RMSEs) there, so its error
    grows; ``reg_k`` sees the same rows with the target in units 1000 times smaller."""
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer(as_frame=True).frame.sample(ROWS, replace=True,
                                                             random_state=1)
    cancer = cancer.reset_index(drop=True)
    cancer.loc[CHANGE:, SHIFTED] *= 1.6
    fresh = _regression_frame(ROWS, seed=1)
    fresh.loc[CHANGE:, "y"] += 1.5
    features = fresh.drop(columns="y")
    return {
        CLS: (_instances(cancer.drop(columns="target")), cancer["target"].tolist()),
        REG: (_instances(features), fresh["y"].tolist()),
        REG_K: (_instances(features), (fresh["y"] * 1000).tolist()),
    }


def _instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _settings(trained: Path, tmp_path: Path, name: str) -> Settings:
    home = tmp_path / name
    shutil.copytree(trained, home)
    return Settings.load(overrides={
        "home": str(home), "monitor": {"window": "100", "min_rows": 20},
        "loop": {"max_per_day": 0},  # every fired trigger is held: no retrain in these tests
        "serve": {"log_flush_ms": 50.0, "poll_s": 0.2},
    }, environ={}, cwd=home)


class Scenario:
    """One store, its models served on loopback, rows sent in batches, labels sent late."""

    def __init__(self, settings: Settings, models: Sequence[str]) -> None:
        self.settings, self.models = settings, list(models)
        self.ids: dict[str, list[str]] = {m: [] for m in models}

    def send(self, http: httpx.Client, registry: Registry, traffic: Any, start: int,
             stop: int) -> None:
        """Rows ``start:stop`` of every model, ``BATCH`` rows per request, the models'
        requests interleaved; returns once the log holds them."""
        for lo in range(start, stop, BATCH):
            for model in self.models:
                body = {"instances": traffic[model][0][lo:min(stop, lo + BATCH)]}
                answer = http.post(f"/v1/models/{model}/predict", json=body)
                assert answer.status_code == 200, answer.text
                self.ids[model].extend(answer.json()["request_ids"])
        expected = sum(len(v) for v in self.ids.values())
        for _ in range(400):
            if registry.store.count_predictions() >= expected:
                return
            time.sleep(0.05)
        raise AssertionError("the prediction log did not receive the rows")

    def label(self, registry: Registry, traffic: Any, start: int, stop: int,
              form: Callable[[Any], Any] = lambda y: y) -> None:
        registry.store.add_feedback(
            (rid, form(y)) for model in self.models
            for rid, y in zip(self.ids[model][start:stop], traffic[model][1][start:stop],
                              strict=True))


def _late_labels(trained: Path, tmp_path: Path, name: str, models: Sequence[str],
                 traffic: Any) -> dict[str, dict[str, Any]]:
    """300 rows, labels of the first 200, monitor; 200 rows more, labels up to row 450, one
    loop iteration (its monitor refreshes the late-labelled window and runs the detectors)."""
    settings = _settings(trained, tmp_path, name)
    scenario = Scenario(settings, models)
    with Registry.open(settings) as registry:
        app = create_app(registry, scenario.models, settings.serve)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
            server.wait_ready()
            scenario.send(http, registry, traffic, 0, 300)
            scenario.label(registry, traffic, 0, 200)
            first = {m: monitor(m, settings=settings, registry=registry) for m in models}
            scenario.send(http, registry, traffic, 300, ROWS)
        scenario.label(registry, traffic, 200, 450)
        loops = {m: run_once(m, settings=settings, registry=registry) for m in models}
        return {m: _summary(registry, m, [first[m], loops[m].monitor], loops[m])
                for m in models}


def _summary(registry: Registry, model: str, runs: Sequence[MonitorResult | None],
             outcome: Any = None) -> dict[str, Any]:
    """A model's windows, alerts, change points and trigger, ids as ranks in the model."""
    store = registry.store
    rank = {r.id: i for i, r in enumerate(store.list_predictions(model, limit=100_000))}
    windows = store.list_windows(model)
    order = {w.id: i for i, w in enumerate(windows)}

    def points(found: dict[str, list[int]]) -> dict[str, list[int]]:
        return {name: [rank[i] for i in ids] for name, ids in found.items()}

    def details(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "change_points": points(body["change_points"])} if (
            kind == "concept_drift") else body

    trigger = None
    if outcome is not None and outcome.trigger is not None:
        numbers = dict(outcome.trigger.numbers)
        for key in ("window",):
            if key in numbers:
                numbers[key] = order[numbers[key]]
        if "windows" in numbers:
            numbers["windows"] = [order[w] for w in numbers["windows"]]
        if numbers.get("since_log_id") is not None:
            numbers["since_log_id"] = rank[numbers["since_log_id"]]
        trigger = {"kind": outcome.trigger.kind, **numbers}
    return {
        "windows": [{"version": w.version, "status": w.status, "rows": w.rows,
                     "first": rank[w.first_log_id], "last": rank[w.last_log_id],
                     "drift": w.drift_detected, "share": w.share_drifted,
                     "prediction_drift": w.prediction_drift, "report": w.report,
                     "estimated": w.estimated, "realised": w.realised} for w in windows],
        "alerts": [(a.kind, order.get(a.window_id), details(a.kind, a.details))
                   for a in store.list_alerts(model)],
        "change_points": [None if r is None else points(r.change_points) for r in runs],
        "refreshed": [None if r is None else r.refreshed for r in runs],
        "trigger": trigger,
        "outcome": None if outcome is None else outcome.outcome,
    }


@pytest.fixture(scope="module")
def played(trained: Path, traffic: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("multi-scenarios")
    mixed = _late_labels(trained, tmp, "mixed", [CLS, REG, REG_K], traffic)
    alone = {m: _late_labels(trained, tmp, f"alone-{m}", [m], traffic)[m]
             for m in (CLS, REG, REG_K)}
    return mixed, alone


def test_each_model_logged_among_others_gets_the_numbers_it_gets_alone(played) -> None:
    mixed, alone = played
    for model in (CLS, REG, REG_K):
        assert mixed[model] == alone[model], model
    cls, reg = alone[CLS], alone[REG]
    # the comparison is not vacuous: five windows each, late labels filled in, estimates for
    # the classifier, detector alerts for the regression model, a trigger for both
    for summary in (cls, reg):
        assert [w["rows"] for w in summary["windows"]] == [100] * 5
        assert [(w["realised"] or {}).get("labelled", 0) for w in summary["windows"]] == [
            100, 100, 100, 100, 50]
        assert summary["refreshed"][1] == 1  # window 3's labels came after its first run
        assert summary["outcome"] == "daily_limit" and summary["trigger"] is not None
    assert all(w["estimated"]["accuracy"]["low"] <= w["estimated"]["accuracy"]["high"]
               for w in cls["windows"])
    assert all(w["realised"]["unusable_labels"] == 0 for w in cls["windows"])
    assert any(kind == "concept_drift" for kind, _, _ in reg["alerts"])


def test_regression_error_growth_triggers_a_retrain_by_default(played) -> None:
    _, alone = played
    trigger = alone[REG]["trigger"]
    assert trigger["kind"] == "metric" and trigger["metric"] == "rmse"
    assert trigger["trigger_on"] == "interval" and trigger["source"] == "realised"
    low, high = trigger["interval"]
    assert trigger["bound"] < low <= trigger["value"] <= high  # the whole interval is above
    assert trigger["bound"] == pytest.approx(trigger["reference"] * 1.05)
    assert trigger["since_log_id"] is not None  # where the loop's training data starts
    drops = [d for kind, _, d in alone[REG]["alerts"] if kind == "performance_drop"]
    assert drops and all(d["metric"] == "rmse" for d in drops)
    # the detectors read the calm labelled rows of the first run and stayed quiet; the
    # change (rows 250 on) is signalled in the second run's rows, on its last window
    concept = [w for kind, w, _ in alone[REG]["alerts"] if kind == "concept_drift"]
    assert concept == [4], alone[REG]["alerts"]
    assert min(min(p) for p in alone[REG]["change_points"][1].values() if p) >= CHANGE


def test_detector_alerts_do_not_depend_on_the_targets_units(played) -> None:
    _, alone = played
    reg, scaled = alone[REG], alone[REG_K]

    def kinds(summary: dict[str, Any]) -> list[tuple[str, int | None]]:
        return [(kind, window) for kind, window, _ in summary["alerts"]]

    assert kinds(reg) == kinds(scaled)
    assert reg["change_points"] == scaled["change_points"]
    assert any(reg["change_points"][1].values())
    concept = [(d, e) for (k, _, d), (_, _, e) in zip(reg["alerts"], scaled["alerts"],
                                                       strict=True) if k == "concept_drift"]
    for plain, thousand in concept:
        assert plain["change_points"] == thousand["change_points"]
        assert plain["scale_source"] == thousand["scale_source"] == "test rmse"
        assert thousand["scale"] == pytest.approx(1000 * plain["scale"])
    assert {k: v for k, v in reg["trigger"].items() if k in ("kind", "metric", "source")} == {
        k: v for k, v in scaled["trigger"].items() if k in ("kind", "metric", "source")}
    assert scaled["trigger"]["value"] == pytest.approx(1000 * reg["trigger"]["value"])


def test_labels_1_1dot0_and_text_1_are_one_class_and_others_are_unusable(
        trained: Path, traffic: Any, tmp_path: Path) -> None:
    """The same served rows, labelled as int, float, text; and as int with the unlabelled
    rows given labels that are no class: identical realised metrics and detector streams."""
    base = _settings(trained, tmp_path, "labels-base")
    scenario = Scenario(base, [CLS])
    with Registry.open(base) as registry:
        app = create_app(registry, [CLS], base.serve)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
            server.wait_ready()
            scenario.send(http, registry, traffic, 0, ROWS)
    forms: dict[str, Callable[[Any], Any]] = {"int": int, "float": float,
                                              "text": lambda y: f" {int(y)} "}
    seen = {}
    for name, form in [*forms.items(), ("unusable", int)]:
        settings = _settings(Path(base.home), tmp_path, name)
        with Registry.open(settings) as registry:
            scenario.label(registry, traffic, 0, 450, form)
            if name == "unusable":
                junk = ["maybe", 7, 0.5, None, [1]]
                registry.store.add_feedback(
                    (rid, junk[i % len(junk)]) for i, rid in enumerate(scenario.ids[CLS][450:]))
            result = monitor(CLS, settings=settings, registry=registry)
            seen[name] = _summary(registry, CLS, [result])
    assert seen["int"] == seen["float"] == seen["text"]
    windows = seen["int"]["windows"]
    assert [w["realised"]["labelled"] for w in windows] == [100, 100, 100, 100, 50]
    assert windows[0]["realised"]["accuracy"]["value"] > 0.8  # right labels are not errors
    odd = seen["unusable"]
    assert [w["realised"]["unusable_labels"] for w in odd["windows"]] == [0, 0, 0, 0, 50]
    for ours, theirs in zip(odd["windows"], windows, strict=True):
        assert {**ours["realised"], "unusable_labels": 0} == theirs["realised"]
    assert odd["change_points"] == seen["int"]["change_points"]  # not counted as errors
