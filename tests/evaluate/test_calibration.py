"""Calibration error against a direct reference, the reliability diagram, temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from driftloop.errors import UsageError
from driftloop.evaluate.calibration import (
    TemperatureScaler,
    calibration_bins,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
    softmax,
)


def reference_bins(y, proba, n_bins, strategy):
    """Per-row loops, written from the definitions, sharing no code with the module."""
    conf = [max(row) for row in proba.tolist()]
    correct = [int(int(np.argmax(row)) == int(label)) for row, label in zip(proba, y, strict=True)]
    members = [[] for _ in range(n_bins)]
    if strategy == "uniform":
        for i, c in enumerate(conf):
            b = 0
            while b < n_bins - 1 and c > (b + 1) / n_bins:  # bin b is ((b)/B, (b+1)/B]
                b += 1
            members[b].append(i)
    else:
        order = sorted(range(len(conf)), key=lambda i: conf[i])  # stable
        size, extra = divmod(len(order), n_bins)
        start = 0
        for b in range(n_bins):
            stop = start + size + (1 if b < extra else 0)
            members[b] = order[start:stop]
            start = stop
    return [
        (len(m), sum(conf[i] for i in m) / len(m), sum(correct[i] for i in m) / len(m))
        for m in members if m
    ]


def reference_ece(y, proba, n_bins, strategy):
    bins = reference_bins(y, proba, n_bins, strategy)
    return sum(n * abs(acc - conf) for n, conf, acc in bins) / len(y)


def reference_mce(y, proba, n_bins):
    return max(abs(acc - conf) for _, conf, acc in reference_bins(y, proba, n_bins, "uniform"))


def _data(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    proba = softmax(rng.normal(size=(n, k)) * 2.5)
    y = np.array([rng.choice(k, p=p) for p in softmax(np.log(proba) / 2)])
    return y, proba


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_matches_the_reference_to_1e9(k, strategy):
    y, proba = _data(seed=k, n=3000, k=k)
    got = expected_calibration_error(y, proba, n_bins=15, strategy=strategy)
    assert got == pytest.approx(reference_ece(y, proba, 15, strategy), abs=1e-9)
    assert maximum_calibration_error(y, proba, 15) == pytest.approx(
        reference_mce(y, proba, 15), abs=1e-9
    )


def test_confidences_on_bin_edges_fall_in_the_lower_bin():
    # 0.6 is the right edge of bin 8 of 15 ((8/15, 9/15] holds 0.6 exactly)
    proba = np.array([[0.6, 0.4], [0.4, 0.6], [1 / 3 * 2, 1 / 3], [1.0, 0.0], [0.5, 0.5]])
    y = np.array([0, 0, 0, 0, 1])
    for strategy in ("uniform", "quantile"):
        got = expected_calibration_error(y, proba, strategy=strategy)
        assert got == pytest.approx(reference_ece(y, proba, 15, strategy), abs=1e-12)
    bins = calibration_bins(y, proba)
    assert bins.count.sum() == 5 and bins.count[8] == 2  # both 0.6 rows


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 400), st.integers(2, 5), st.integers(1, 20))
def test_ece_matches_the_reference_for_any_input(seed, n, k, n_bins):
    y, proba = _data(seed, n, k)
    for strategy in ("uniform", "quantile"):
        got = expected_calibration_error(y, proba, n_bins=n_bins, strategy=strategy)
        assert 0.0 <= got <= 1.0
        assert got == pytest.approx(reference_ece(y, proba, n_bins, strategy), abs=1e-9)


def test_a_perfectly_confident_correct_model_has_zero_error():
    y = np.array([0, 1, 2, 1])
    proba = np.eye(3)[y]
    assert expected_calibration_error(y, proba) == 0.0
    assert maximum_calibration_error(y, proba) == 0.0


def test_reliability_diagram_png_is_written_and_not_empty(tmp_path):
    y, proba = _data(seed=0, n=500, k=3)
    calibrated = TemperatureScaler().fit_transform(proba, y)
    path = tmp_path / "reliability.png"
    path.write_bytes(reliability_diagram(y, proba, calibrated=calibrated, title="test"))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_nll_and_ece():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8000, 4)) * 4
    true_temperature = 2.5
    y = np.array([rng.choice(4, p=p) for p in softmax(logits / true_temperature)])
    scaler = TemperatureScaler(inputs="logits").fit(logits, y)
    assert scaler.temperature_ == pytest.approx(true_temperature, rel=0.08)
    assert scaler.nll_after_ < scaler.nll_before_
    before = expected_calibration_error(y, softmax(logits))
    after = expected_calibration_error(y, scaler.transform(logits))
    assert after < before / 3
    # the predicted class never changes
    np.testing.assert_array_equal(scaler.transform(logits).argmax(1), logits.argmax(1))


def test_binary_probabilities_as_a_vector_and_an_underconfident_model():
    rng = np.random.default_rng(2)
    z = rng.normal(size=4000) * 3
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    timid = 1 / (1 + np.exp(-z / 3))  # probabilities squeezed towards 0.5
    scaler = TemperatureScaler().fit(timid, y)
    assert scaler.temperature_ == pytest.approx(1 / 3, rel=0.1)  # below 1: sharpens
    out = scaler.transform(timid)
    assert out.shape == (4000, 2)
    assert expected_calibration_error(y, out) < expected_calibration_error(y, timid) / 2


def test_scaler_state_round_trips_as_json_and_refuses_misuse():
    y, proba = _data(seed=3, n=300, k=3)
    scaler = TemperatureScaler().fit(proba, y)
    again = TemperatureScaler.from_json(scaler.to_json())
    np.testing.assert_allclose(again.transform(proba), scaler.transform(proba))
    with pytest.raises(NotFittedError, match="not fitted yet. Call 'fit'"):
        TemperatureScaler().transform(proba)
    with pytest.raises(UsageError, match="'inputs' parameter .* Got 'odds'"):
        TemperatureScaler(inputs="odds").fit(proba, y)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="class codes must be in 0..2"):
        TemperatureScaler().fit(proba, y + 3)
    with pytest.raises(UsageError, match="not a temperature scaler"):
        TemperatureScaler.from_json({"kind": "isotonic"})
