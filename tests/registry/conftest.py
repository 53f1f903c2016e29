"""Model versions with real evidence (evaluation reports, data checks) built in milliseconds.

Versions are registered with a bundle but placeholder weights (the gates, lineage and cards
never load weights); their evaluation reports are real ``EvaluationReport``s computed from
synthetic predictions of a chosen accuracy, and their data checks real ``DataReport``s.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.data.check import DataReport, Finding, check_data, record_report
from driftloop.evaluate.report import build_report
from driftloop.registry import ModelBundle, Registry
from driftloop.registry.evaluation import store_report
from driftloop.store import VersionRecord

EVAL_FP = "e" * 64  # the holdout every version is evaluated on unless told otherwise
CARD_TEXT = {
    "intended_use": "Rank loan applications for manual review.",
    "ethical_considerations": "Age is a protected attribute; monitor slices by age.",
    "caveats": "Trained on one country's applications.",
}


@pytest.fixture(scope="session")
def checked_table() -> DataReport:
    """One real data check of a table with an e-mail column (PII) and no errors."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "age": rng.normal(40, 10, n).round(1),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n),
        "contact": [f"user{i}@example.com" for i in range(n)],
    })
    frame["label"] = np.where(frame["age"] + rng.normal(0, 5, n) > 40, "yes", "no")
    report = check_data(frame, "label")
    assert report.passed and report.pii_columns == ["contact"]
    return report


def predictions(
    accuracy: float, *, n: int = 900, seed: int = 0, bad_slice: str | None = None,
    confidence: float | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Labels, probabilities right with probability ``accuracy`` (``bad_slice``: 0.3 less),
    calibrated unless ``confidence`` fixes the top probability, and a ``city`` column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"city": rng.choice(["Oslo", "Rome", "Lima"], n)})
    y = rng.integers(0, 2, n)
    p_right = np.full(n, accuracy)
    if bad_slice is not None:
        p_right[(frame["city"] == bad_slice).to_numpy()] = accuracy - 0.3
    right = np.random.default_rng(seed + 1).random(n) < p_right
    predicted = np.where(right, y, 1 - y)
    top = p_right if confidence is None else np.full(n, confidence)
    proba = np.empty((n, 2))
    proba[np.arange(n), predicted] = top
    proba[np.arange(n), 1 - predicted] = 1 - top
    return y, proba, frame


class Factory:
    """Registers versions of a model with the evidence a test asks for."""

    def __init__(self, registry: Registry, checked: DataReport) -> None:
        self.registry = registry
        self.checked = checked
        self._n = itertools.count(1)

    def version(
        self,
        name: str = "credit",
        *,
        accuracy: float | None = 0.9,
        eval_fp: str = EVAL_FP,
        bad_slice: str | None = None,
        confidence: float | None = None,
        check: str | None = "pass",
        features: tuple[str, ...] = ("age", "city"),
        parent: VersionRecord | None = None,
        test_fp: str = "7" * 64,
        metrics: dict[str, Any] | None = None,
    ) -> VersionRecord:
        """``accuracy=None``: no evaluation report; ``check``: "pass", "fail" or None."""
        store, n = self.registry.store, next(self._n)
        run = store.create_run(name, {"epochs": 3, "lr": 0.01}, 2, f"runs/{n}",
                               {"torch": "2.4"}, "c0ffee")
        if check is None:
            store.upsert_dataset(f"{n:064x}", "train.csv", 300, None)
            store.link_run_dataset(run.id, "source", f"{n:064x}")
        else:
            report = self.checked if check == "pass" else dataclasses.replace(
                self.checked, fingerprint="f" * 64, findings=[*self.checked.findings, Finding(
                    "target_leakage", "error", "column 'age' predicts the target alone",
                    ["age"])])
            record_report(report, store, self.registry.artifacts, run_id=run.id)
            store.link_run_dataset(run.id, "source", report.fingerprint)
        store.upsert_dataset(test_fp, "train.csv#test", 45, None)
        store.link_run_dataset(run.id, "test", test_fp)
        bundle = ModelBundle(
            task="binary", input_kind="table", model="mlp", model_inputs={}, n_outputs=2,
            classes=["no", "yes"],
            schema={"features": [{"name": f, "kind": "numeric"} for f in features],
                    "target": "label", "task": "binary", "excluded": {}},
            preprocessor=None, target_encoder={"task": "binary"},
        )
        version = self.registry.register(
            name, run_id=run.id, bundle=bundle, weights=f"weights {n}".encode(),
            metrics=metrics if metrics is not None else (
                {"accuracy": accuracy} if accuracy is not None else {}),
            actor="ci:test", reason="test", parent_id=None if parent is None else parent.id,
        )
        store.finish_run(run.id, "succeeded", duration_s=1.0, samples_per_s=100.0)
        if accuracy is not None:
            self.evaluate(version, accuracy, eval_fp=eval_fp, bad_slice=bad_slice,
                          confidence=confidence)
        return version

    def evaluate(self, version: VersionRecord, accuracy: float, *, eval_fp: str = EVAL_FP,
                 bad_slice: str | None = None, confidence: float | None = None) -> None:
        y, proba, frame = predictions(accuracy, bad_slice=bad_slice, confidence=confidence)
        report = build_report(
            "binary", y, proba, frame=frame, slices=["city"],
            dataset={"fingerprint": eval_fp, "source": "holdout.csv", "role": "evaluation"},
            model={"name": version.model_name, "version": version.version}, n_resamples=200,
        )
        store_report(report, self.registry, version=version)


def settings_with(base: Settings, *, card: bool = True, **gates: Any) -> Settings:
    return base.updated({"card": CARD_TEXT if card else {}, "gates": gates})


@pytest.fixture
def registry(dl_settings: Settings) -> Registry:
    return Registry.open(settings_with(dl_settings))


@pytest.fixture
def factory(registry: Registry, checked_table: DataReport) -> Factory:
    return Factory(registry, checked_table)


@pytest.fixture
def open_registry(
    dl_settings: Settings, checked_table: DataReport
) -> Callable[..., tuple[Registry, Factory]]:
    """``open_registry(card=True, **gates)``: a registry of the test's store under that policy,
    and a factory registering into it."""

    def make(*, card: bool = True, **gates: Any) -> tuple[Registry, Factory]:
        registry = Registry.open(settings_with(dl_settings, card=card, **gates))
        return registry, Factory(registry, checked_table)

    return make


@pytest.fixture
def card_text() -> dict[str, str]:
    return dict(CARD_TEXT)


@pytest.fixture
def store_path(dl_settings: Settings) -> Path:
    return Path(dl_settings.home) / "driftloop.db"


@pytest.fixture
def make_factory(checked_table: DataReport) -> Callable[[Registry], Factory]:
    """``make_factory(registry)``: a factory registering into any registry."""
    return lambda registry: Factory(registry, checked_table)


@pytest.fixture(scope="module")
def make_factory_for_module(
    checked_table: DataReport,
) -> Callable[[Path], tuple[Registry, Factory]]:
    """``make(home)``: a registry in ``home`` (card text written) and its factory, for
    module-scoped fixtures."""

    def make(home: Path) -> tuple[Registry, Factory]:
        base = Settings.load(overrides={"home": str(home)}, environ={}, cwd=home)
        registry = Registry.open(settings_with(base))
        return registry, Factory(registry, checked_table)

    return make
