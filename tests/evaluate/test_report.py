"""``dl.evaluate`` on a registered version: the report, where it is stored, what it links to."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import driftloop as dl
from driftloop.errors import DataError, NotFoundError, UsageError
from driftloop.evaluate.report import EvaluationReport, build_report
from driftloop.registry import LoadedModel, ModelBundle


def test_evaluate_reports_intervals_calibration_and_slices_and_stores_them(cancer_model,
                                                                          tmp_path):
    reg = cancer_model
    path = tmp_path / "holdout.csv"
    reg.frame.to_csv(path, index=False)
    report = dl.evaluate("cancer:1", path, slices=["clinic", "mean radius"],
                         settings=reg.settings)

    assert isinstance(report, dl.EvaluationReport)
    assert report.model == {"name": "cancer", "version": 1}
    assert set(report.metrics) == {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc",
                                   "log_loss", "brier"}
    acc = report.metrics["accuracy"]
    assert 0.9 < acc.value and acc.low < acc.value < acc.high and acc.confidence == 0.95
    cal = report.calibration
    assert cal["temperature"] > 1 and cal["bins"] == 15
    assert set(cal["before"]) == {"ece", "ece_equal_mass", "mce"}
    assert {s.column for s in report.slices.slices} == {"clinic", "mean radius"}
    assert report.dataset["rows"] == 569 and report.dataset["source"].startswith("file://")

    # stored: the report artifact, the PNG, linked to the version and the data's fingerprint
    store, artifacts = reg.registry.store, reg.registry.artifacts
    [record] = store.list_reports(version_id=reg.version.id)
    assert record.kind == "evaluation" and record.artifact_sha256 == report.artifact_sha256
    assert record.dataset_fingerprint == report.dataset["fingerprint"]
    assert store.get_dataset(record.dataset_fingerprint).rows == 569
    stored = artifacts.get_json(record.artifact_sha256)
    assert stored["metrics"]["accuracy"]["value"] == acc.value
    png = artifacts.get_bytes(stored["diagram_sha256"])
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert record.summary["ece"] == cal["after"]["ece"]

    # JSON for machines (no NaN), a readable summary for people, and back again
    text = json.dumps(report.to_json(), allow_nan=False)
    assert EvaluationReport.from_json(json.loads(text)) == report
    summary = report.summary()
    assert "cancer v1" in summary and "95% interval" in summary and "ECE" in summary
    assert "slices by accuracy" in summary
    written = report.write_diagram(tmp_path / "diagram.png")
    assert written.read_bytes() == png


def test_temperature_scaling_is_applied_wherever_probabilities_are_produced(cancer_model):
    reg = cancer_model
    model = reg.registry.load("cancer")
    bundle = reg.registry.bundle(reg.version)
    assert bundle.calibration["kind"] == "temperature"
    features = reg.frame.drop(columns="target").iloc[:50]
    raw = model.predict_raw(features, calibrated=False)
    calibrated = model.predict_raw(features)
    t = bundle.calibration["temperature"]
    expected = np.exp(np.log(raw) / t)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(calibrated, expected, atol=1e-9)
    np.testing.assert_array_equal(calibrated.argmax(1), raw.argmax(1))
    # an old bundle (written before calibration existed) still loads, uncalibrated
    old = {k: v for k, v in bundle.to_json().items() if k != "calibration"}
    legacy = LoadedModel(ModelBundle.from_json(old),
                         reg.registry.artifacts.get_bytes(reg.version.weights_sha256))
    np.testing.assert_allclose(legacy.predict_raw(features), raw)


def test_ece_drops_after_temperature_scaling_on_the_test_split(cancer_model):
    reg = cancer_model
    test = reg.frame.iloc[reg.prepared.splits["test"].rows]
    report = dl.evaluate("cancer", test, settings=reg.settings, store=False)
    before, after = report.calibration["before"], report.calibration["after"]
    assert after["ece"] < before["ece"]
    assert report.artifact_sha256 is None and not reg.registry.store.list_reports()


def test_bad_references_and_data_are_named(cancer_model, tmp_path):
    reg = cancer_model
    with pytest.raises(NotFoundError, match="model 'cancer' has no version 9"):
        dl.evaluate("cancer:9", reg.frame, settings=reg.settings)
    with pytest.raises(UsageError, match="NAME or NAME:VERSION"):
        dl.evaluate("cancer:latest", reg.frame, settings=reg.settings)
    with pytest.raises(DataError, match="target column 'target' not found"):
        dl.evaluate("cancer", reg.frame.drop(columns="target"), settings=reg.settings)
    with pytest.raises(DataError, match="slice column 'city' not found"):
        dl.evaluate("cancer", reg.frame, slices=["city"], settings=reg.settings)
    bad = reg.frame.copy()
    bad.loc[3, "target"] = "unknown"
    with pytest.raises(DataError, match="'unknown' in row 3 was not seen in training"):
        dl.evaluate("cancer", bad, settings=reg.settings)


def test_regression_report_has_no_calibration_and_round_trips():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    report = build_report("regression", y, y + rng.normal(0, 0.1, 300),
                          dataset={"fingerprint": "0" * 64}, n_resamples=100)
    assert report.calibration is None and report.diagram_png is None
    assert set(report.metrics) == {"rmse", "mae", "r2"}
    assert "ece" not in report.headline_metrics()
    again = EvaluationReport.from_json(json.loads(json.dumps(report.to_json())))
    assert dataclasses.replace(again) == report
    with pytest.raises(UsageError, match="no reliability diagram"):
        report.write_diagram("x.png")
