"""Model versions with real evidence (evaluation reports, data checks) built in milliseconds.

Versions are registered with a bundle but placeholder weights (the gates, lineage and cards
never load weights); their evaluation reports are real ``EvaluationReport``s computed from
synthetic predictions of a chosen accuracy, and their data checks real ``DataReport``s.

Where a test needs versions that really predict (the holder gate evaluating candidate and
holder on one holdout), the ``mlp`` fixture (:class:`MLPs`) registers small MLPs trained once
per session (``tests/quick_model.py``) and draws holdouts from their training distribution.
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
from pg_server import store_overrides

EVAL_FP = "e" * 64  # the holdout every version is evaluated on unless told otherwise
CARD_TEXT = {
    "intended_use": "Rank loan applications for manual review.",
    "ethical_considerations": "Age is a protected attribute; monitor slices by age.",
    "caveats": "Trained on one country's applications.",
}


def credit_table(n: int, seed: int) -> pd.DataFrame:
    """Rows of a two-class problem (about 85 % accuracy is attainable): two numeric features,
    a city, and a ``label`` drawn from a logistic model of them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], n)})
    logit = 2.0 * frame["x1"] - 1.5 * frame["x2"] + 0.8 * (frame["city"] == "Rome")
    frame["label"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


@pytest.fixture(scope="session")
def mlps() -> dict[str, tuple[ModelBundle, bytes]]:
    """Small MLPs trained on one 600-row ``credit_table``: ``seed1`` and ``seed2`` (the same
    recipe from two initial-weight seeds: equal in expectation) and ``weak`` (trained with
    ``x1``, the strongest feature, shuffled: it cannot learn from it)."""
    import torch

    from quick_model import quick_version

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared: more threads only contend (10x slower)
    try:
        train = credit_table(600, seed=1)
        blind = train.assign(x1=np.random.default_rng(0).permutation(train["x1"].to_numpy()))
        found = {}
        for key, frame, seed in (("seed1", train, 1), ("seed2", train, 2), ("weak", blind, 1)):
            _, weights, bundle = quick_version(frame, seed=seed)
            found[key] = (bundle, weights)
        return found
    finally:
        torch.set_num_threads(threads)


class MLPs:
    """Registries of the test's store and the session's trained MLPs to register into them."""

    def __init__(self, settings: Settings, trained: dict[str, tuple[ModelBundle, bytes]]):
        self.settings = settings.updated({"evaluate": {"resamples": 200}})  # quick evaluation
        self.trained = trained

    def registry(self, **gates: Any) -> Registry:
        """A registry of the test's store under the ``gates`` policy (card text written)."""
        return Registry.open(settings_with(self.settings, **gates))

    def register(self, registry: Registry, key: str, name: str = "credit") -> VersionRecord:
        """Register MLP ``key`` (``seed1``, ``seed2``, ``weak``) as the next version of
        ``name``; no run, no evidence."""
        bundle, weights = self.trained[key]
        return registry.register(name, run_id=None, bundle=bundle, weights=weights,
                                 metrics={}, actor="ci:test", reason=f"mlp {key}")

    @staticmethod
    def holdout(n: int, seed: int = 2) -> pd.DataFrame:
        """``n`` fresh rows of the MLPs' training distribution (which used seed 1)."""
        return credit_table(n, seed)


@pytest.fixture
def mlp(dl_settings: Settings, mlps: dict[str, tuple[ModelBundle, bytes]]) -> MLPs:
    return MLPs(dl_settings, mlps)


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
    confidence: float | None = None, noise_seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Labels, probabilities right with probability ``accuracy`` (``bad_slice``: 0.3 less),
    calibrated unless ``confidence`` fixes the top probability, and a ``city`` column.

    ``seed`` draws the rows (labels, cities); ``noise_seed`` (default ``seed + 1``) draws which
    rows are predicted right. With one noise seed a higher accuracy is right on a superset of
    the rows; another noise seed is "the same model, another seed": as good in expectation,
    right and wrong on different rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"city": rng.choice(["Oslo", "Rome", "Lima"], n)})
    y = rng.integers(0, 2, n)
    p_right = np.full(n, accuracy)
    if bad_slice is not None:
        p_right[(frame["city"] == bad_slice).to_numpy()] = accuracy - 0.3
    noise = np.random.default_rng(seed + 1 if noise_seed is None else noise_seed)
    right = noise.random(n) < p_right
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
        rows: int = 900,
        noise_seed: int | None = None,
        label_seed: int = 0,
    ) -> VersionRecord:
        """``accuracy=None``: no evaluation report; ``check``: "pass", "fail" or None;
        ``rows``, ``noise_seed``, ``label_seed``: see :func:`predictions`."""
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
                          confidence=confidence, rows=rows, noise_seed=noise_seed,
                          label_seed=label_seed)
        return version

    def evaluate(self, version: VersionRecord, accuracy: float, *, eval_fp: str = EVAL_FP,
                 bad_slice: str | None = None, confidence: float | None = None,
                 rows: int = 900, noise_seed: int | None = None, label_seed: int = 0,
                 per_row: bool = True) -> None:
        """Store a report of ``version`` on ``eval_fp``; ``per_row=False``: without per-row
        outcomes, as reports stored before the holder gate compared row by row."""
        y, proba, frame = predictions(accuracy, n=rows, seed=label_seed, bad_slice=bad_slice,
                                      confidence=confidence, noise_seed=noise_seed)
        report = build_report(
            "binary", y, proba, frame=frame, slices=["city"],
            dataset={"fingerprint": eval_fp, "source": "holdout.csv", "role": "evaluation"},
            model={"name": version.model_name, "version": version.version}, n_resamples=200,
        )
        if not per_row:
            report = dataclasses.replace(report, per_row=None)
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
    checked_table: DataReport, request: pytest.FixtureRequest,
) -> Callable[[Path], tuple[Registry, Factory]]:
    """``make(home)``: a registry in ``home`` (card text written) and its factory, for
    module-scoped fixtures."""

    def make(home: Path, *, sqlite_file: bool = False) -> tuple[Registry, Factory]:
        # sqlite_file: the store stays the SQLite file in home (tests that edit the file)
        store = {} if sqlite_file else store_overrides(request)
        base = Settings.load(overrides={"home": str(home), **store},
                             environ={}, cwd=home)
        registry = Registry.open(settings_with(base))
        return registry, Factory(registry, checked_table)

    return make
