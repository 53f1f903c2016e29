"""Training checks the data first, calibrates on val, and evaluates the test split fully
(one real 2-rank run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import driftloop as dl
from driftloop.errors import CheckFailed, UsageError
from driftloop.registry import Registry

pytestmark = pytest.mark.slow


def _frame() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["contact"] = rng.choice([f"person{i}@example.org" for i in range(10)], len(frame))
    frame["phone"] = rng.choice([f"+47 912 34 {i:03d}" for i in range(10)], len(frame))
    frame["leak"] = frame["target"] + rng.normal(0, 0.05, len(frame))
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame


def test_train_refuses_errors_drops_pii_calibrates_and_stores_the_evaluation(dl_settings):
    frame = _frame()
    common = dict(target="target", workers=2, epochs=6, batch_size=32, name="cancer",
                  settings=dl_settings, progress=False)
    with pytest.raises(CheckFailed, match="target_leakage: column 'leak'.*--ignore-check"):
        dl.train(frame, **common)
    with pytest.raises(UsageError, match="'leakage' is not a check"):
        dl.train(frame, ignore_checks=["leakage"], **common)
    registry = Registry.open(dl_settings)
    assert registry.versions() == []  # refused before any run was recorded

    result = dl.train(frame, ignore_checks=["target_leakage"], allow_pii=["phone"], **common)

    run = registry.store.get_run(result.run_id)
    assert run.params["checks"]["ignored_checks"] == ["target_leakage"]
    assert run.params["checks"]["allowed_pii"] == ["phone"]
    assert run.params["checks"]["excluded_pii"] == ["contact"]
    version = registry.get("cancer", result.version)
    bundle = registry.bundle(version)
    assert "personal data" in bundle.schema["excluded"]["contact"]
    assert "phone" in [f["name"] for f in bundle.schema["features"]]
    assert bundle.calibration["kind"] == "temperature" and bundle.calibration["temperature"] > 0

    report = dl.EvaluationReport.from_json(result.evaluation)
    assert report.model == {"name": "cancer", "version": result.version}
    assert report.dataset["fingerprint"] == result.fingerprints["test"]
    assert report.metrics["accuracy"].low is not None
    assert report.calibration["temperature"] == bundle.calibration["temperature"]
    assert {"ece", "ece_uncalibrated", "temperature", "accuracy"} <= set(result.metrics)
    assert len({s.column for s in report.slices.slices}) == 20  # evaluate.max_slice_columns

    evaluations = registry.store.list_reports(kind="evaluation", version_id=version.id)
    assert [r.kind for r in evaluations] == ["evaluation"]
    assert evaluations[0].artifact_sha256 == report.artifact_sha256
    checks = registry.store.list_reports(kind="data_check")
    assert [r.run_id for r in checks] == [result.run_id]
    stored_check = registry.artifacts.get_json(checks[0].artifact_sha256)
    assert "person0@example.org" not in str(stored_check)  # masked examples only
