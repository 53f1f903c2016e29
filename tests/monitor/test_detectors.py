"""The error-stream detectors: every parameter is a setting, labels are read as classes, and
regression errors are in units of the version's spread (no store, no training)."""

from __future__ import annotations

import numpy as np

from driftloop.config import MonitorSettings
from driftloop.monitor.detectors import (
    DETECTORS,
    detect_changes,
    error_stream,
    reference_scale,
)

RISE = np.r_[np.random.default_rng(0).uniform(size=1500) < 0.1,
             np.random.default_rng(1).uniform(size=1500) < 0.4].astype(float)


def test_every_detector_reads_its_parameters_from_the_settings() -> None:
    found = detect_changes(RISE, binary=True)
    assert all(found[name] for name in DETECTORS)
    deaf = MonitorSettings(adwin_delta=1e-300, page_hinkley_threshold=1e6,
                           ddm_drift_threshold=1e6)
    assert detect_changes(RISE, binary=True, settings=deaf) == {
        "adwin": [], "page_hinkley": [], "ddm": []}
    late = MonitorSettings(page_hinkley_min_instances=2000, ddm_warm_start=2000)
    later = detect_changes(RISE, binary=True, settings=late)
    assert later["page_hinkley"][0] >= 1999 > found["page_hinkley"][0]  # 0-based
    assert later["ddm"][0] >= 1999


def test_labels_are_read_as_the_models_classes() -> None:
    outputs = [{"predictions": p, "probabilities": [1.0 - p, float(p)]} for p in (1, 0, 1, 1)]
    as_int, mask = error_stream([1, 1, 0, 1], outputs, classes=[0, 1])
    for labels in ([1.0, 1.0, 0.0, 1.0], ["1", " 1", "0", "1.0"], [True, 1, "0", 1.0]):
        errors, usable = error_stream(labels, outputs, classes=[0, 1])
        assert errors.tolist() == as_int.tolist() == [0.0, 1.0, 1.0, 0.0]
        assert usable.all() and mask.all()
    errors, usable = error_stream(["maybe", 2, 1, None], outputs, classes=[0, 1])
    assert usable.tolist() == [False, False, True, False] and errors.tolist() == [0.0]
    text = [{"predictions": "yes"}, {"predictions": "no"}]
    assert error_stream(["yes", "yes"], text, classes=["no", "yes"])[0].tolist() == [0.0, 1.0]


def test_regression_changes_are_found_the_same_in_any_units() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=2000)
    pred = y + rng.normal(scale=0.5, size=2000)
    y[1200:] += 1.5  # the relation changes: the error grows
    found = []
    for unit in (1.0, 1000.0, 0.001):
        errors, _ = error_stream((y * unit).tolist(),
                                 [{"predictions": p} for p in (pred * unit).tolist()],
                                 classes=None)
        scale, source = reference_scale({"rmse": 0.5 * unit}, errors, warm_up=30)
        assert source == "test rmse"
        found.append(detect_changes(errors / scale, binary=False))
    assert found[0] == found[1] == found[2]
    assert found[0]["adwin"] and found[0]["page_hinkley"]
    assert 1200 <= found[0]["page_hinkley"][0] < 1300
    assert min(found[0]["adwin"]) >= 1200  # no false alarm before the change
