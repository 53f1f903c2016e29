"""A real training run's evidence through gates, promotion on fresh data, lineage and card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.train.launcher import train
from pg_server import store_overrides

pytestmark = pytest.mark.slow

CARD = {"intended_use": "Teaching example.", "ethical_considerations": "None beyond the data.",
        "caveats": "Small data."}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """One real 1-worker run (v1), a retrained child registered from it (v2), a holdout CSV."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    holdout = np.random.default_rng(0).random(len(frame)) < 0.25
    home = tmp_path_factory.mktemp("home")
    settings = Settings.load(overrides={
        "home": str(home), "card": CARD, "train": {"patience": 100},
        "evaluate": {"resamples": 200, "max_slice_columns": 3}, **store_overrides(request),
    }, environ={}, cwd=home)
    result = train(frame[~holdout].reset_index(drop=True), "target", workers=1, epochs=3,
                   batch_size=32, name="cancer", settings=settings, progress=False)
    registry = Registry.open(settings)
    parent = registry.get("cancer", result.version)
    child = registry.register(
        "cancer", run_id=parent.run_id, bundle=registry.bundle(parent),
        weights=registry.artifacts.get_bytes(parent.weights_sha256), metrics=parent.metrics,
        actor="ci:retrain", reason="retrained from v1", parent_id=parent.id,
    )
    path = home / "holdout.csv"
    frame[holdout].to_csv(path, index=False)
    return registry, parent, child, path


def test_training_leaves_the_evidence_every_gate_reads(trained):
    registry, parent, _, _ = trained
    report = registry.gate("cancer", parent.version, to="production")
    details = {r.name: r.detail for r in report.results}
    assert not any("missing evidence" in d for d in details.values()), report.summary()
    assert "evaluation report" in details["calibration"]  # the test split's, with intervals
    assert "data check" in details["data_check"] and report.evaluation["fingerprint"]


def test_promotion_on_fresh_data_compares_candidate_and_holder(trained):
    registry, parent, child, holdout = trained
    registry.promote("cancer", parent.version, to="production", force=True,
                     reason="first holder")
    report = registry.gate("cancer", child.version, to="production", data=holdout)
    holder = next(r for r in report.results if r.name == "holder")
    rows = report.evaluation["rows"]
    assert rows < 200  # a quarter of 569 rows: below the default gates.min_holdout_rows
    assert not holder.passed and holder.measured == rows and "min_holdout_rows" in holder.detail
    fingerprints = {r.dataset_fingerprint for r in registry.store.list_reports(kind="evaluation")
                    if r.version_id in (parent.id, child.id)}
    assert report.evaluation["fingerprint"] in fingerprints
    # same weights, same predictions: no difference, so not superior, but non-inferior
    for policy, passed in (("superior", False), ("non_inferior", True)):
        lowered = Registry.open(registry.settings.updated(
            {"gates": {"min_holdout_rows": 100, "holder_policy": policy}}))
        again = lowered.gate("cancer", child.version, to="production")  # the stored reports
        holder = next(r for r in again.results if r.name == "holder")
        assert holder.passed is passed and holder.details["interval"] == [0.0, 0.0]
        assert holder.details["disagreements"] == 0 and "holdout.csv" in holder.detail
        lowered.close()


def test_lineage_of_the_retrained_version_reaches_parent_run_and_datasets(trained):
    registry, parent, child, _ = trained
    found = registry.lineage("cancer", child.version)
    assert found.parent == parent
    assert set(found.datasets) == {"source", "train", "val", "test"}
    assert found.run.world_size == 1 and found.run.params["epochs"] == 3
    assert "torch" in found.run.package_versions
    assert {"evaluation", "data_check"} <= {r.kind for r in found.reports}
    actions = {e.action for e in found.audit}
    assert {"run_started", "run_finished", "register"} <= actions
    json.dumps(found.to_json(), default=str)
    assert registry.audit.verify().ok


def test_the_card_of_a_trained_model_has_real_slices(trained):
    registry, _, child, _ = trained
    card = registry.card("cancer", child.version)
    sections = {s.key: s for s in card.sections}
    assert len(card.sections) == 9
    (slices,) = sections["quantitative_analyses"].tables
    assert len({row[0] for row in slices.rows}) >= 1
    assert all(row[4].startswith("[") or row[3] == "too small" for row in slices.rows)
    assert dict(sections["training_data"].items)["Data check"].startswith("passed")
