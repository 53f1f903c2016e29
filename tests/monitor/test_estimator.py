"""The label-free performance estimator: calibration chosen on labelled reference rows, the
served label's accuracy, the fit/estimate contract, and the monitor's windows using it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from driftloop.errors import UsageError
from driftloop.monitor.estimator import PerformanceEstimator, reference_estimator
from driftloop.monitor.performance import estimate_performance
from driftloop.monitor.profile import Profile, labelled_outputs


def _distorted_world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, served probabilities and labels: labels drawn from true probabilities ``q``,
    served ``p ∝ q ** a`` with a different power per class (over-confident in one class,
    under-confident in another: monotone per class, which no single temperature undoes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    logits = np.column_stack([2 * x[:, 0], 2 * x[:, 1], -x[:, 0] - x[:, 1]])
    q = np.exp(logits)
    q /= q.sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(q, axis=1)).sum(axis=1)
    p = q ** np.array([0.4, 1.0, 2.5])
    return x, p / p.sum(axis=1, keepdims=True), y


def _accuracy_errors(estimator: PerformanceEstimator, x: np.ndarray, p: np.ndarray,
                     y: np.ndarray) -> list[float]:
    """|estimated - realised| accuracy on three covariate-shifted windows (by x0's rank)."""
    order = np.argsort(x[:, 0])
    errors = []
    for rows in (order[:4000], order[-4000:], order[13_000:17_000]):
        truth = float(np.mean(p[rows].argmax(axis=1) == y[rows]))
        value = estimator.estimate(p[rows], metrics=("accuracy",))["accuracy"]["value"]
        errors.append(abs(value - truth))
    return errors


def test_a_per_class_miscalibration_is_fixed_where_a_temperature_is_not() -> None:
    x, p, y = _distorted_world(8000, seed=0)
    xa, pa, ya = _distorted_world(30_000, seed=1)
    auto = PerformanceEstimator().fit(p, y)
    assert auto.calibration_ in ("dirichlet", "histogram", "isotonic")
    assert auto.scores_[auto.calibration_] < auto.scores_["temperature"] - 0.05
    temperature = _accuracy_errors(PerformanceEstimator("temperature").fit(p, y), xa, pa, ya)
    raw = _accuracy_errors(PerformanceEstimator("none").fit(p, y), xa, pa, ya)
    for estimator in (auto, PerformanceEstimator("isotonic").fit(p, y)):
        errors = _accuracy_errors(estimator, xa, pa, ya)
        assert max(errors) < 0.035, errors
        assert np.mean(errors) < 0.5 * np.mean(temperature), (errors, temperature)
        assert np.mean(errors) < 0.5 * np.mean(raw), (errors, raw)


def test_calibrated_probabilities_keep_none_or_lose_nothing() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(10_000, 3)) * 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.uniform(size=(10_000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    estimator = PerformanceEstimator().fit(p[:6000], y[:6000])
    assert estimator.calibration_ in ("none", "temperature")
    window = slice(6000, None)
    truth = float(np.mean(p[window].argmax(axis=1) == y[window]))
    value = estimator.estimate(p[window], metrics=("accuracy",))["accuracy"]["value"]
    as_is = estimate_performance(p[window], metrics=("accuracy",))["accuracy"]["value"]
    assert abs(value - truth) <= abs(as_is - truth) + 0.005


def test_the_estimate_is_of_the_served_label_not_of_the_calibrated_argmax() -> None:
    # served class-1 probability 0.4 (the argmax serves class 0), yet 70 % of such rows are
    # class 1; served 0.9 rows are class 1 90 % of the time
    rng = np.random.default_rng(0)
    p1 = np.repeat([0.4, 0.9], 5000)
    y = (rng.uniform(size=10_000) < np.where(p1 == 0.4, 0.7, 0.9)).astype(int)
    proba = np.column_stack([1 - p1, p1])
    estimator = PerformanceEstimator("histogram").fit(proba, y)
    window = np.array([[0.6, 0.4]] * 300)
    assert estimator.predict(window).tolist() == [0] * 300
    assert estimator.calibrate(window)[0, 1] == pytest.approx(0.7, abs=0.02)
    # the model serves class 0, right 30 % of the time — not 70 % (the calibrated argmax)
    assert estimator.estimate(window)["accuracy"]["value"] == pytest.approx(0.3, abs=0.02)
    # a binary threshold changes the served label, and so the estimate
    served_one = PerformanceEstimator("histogram", threshold=0.3).fit(proba, y)
    assert served_one.predict(window).tolist() == [1] * 300
    assert served_one.estimate(window)["accuracy"]["value"] == pytest.approx(0.7, abs=0.02)
    # macro F1 scores the served labels too: all class 0 served, 30 % of rows are class 0
    f1 = estimator.estimate(window, metrics=("macro_f1",))["macro_f1"]["value"]
    assert f1 == pytest.approx(0.5 * 2 * 0.3 / 1.3, abs=0.03)


def test_binary_probabilities_may_be_one_column_and_rows_that_are_not_finite_are_left_out(
) -> None:
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < p1).astype(int)
    estimator = PerformanceEstimator().fit(p1, y)
    assert estimator.n_classes_ == 2 and estimator.n_reference_ == 3000
    window = np.column_stack([1 - p1[:500], p1[:500]])
    with_gap = np.vstack([window, [[np.nan, np.nan]]])
    assert estimator.estimate(with_gap) == estimator.estimate(window)
    assert estimator.estimate(np.empty((0, 2))) == {}


def test_reading_before_fit_raises_not_fitted() -> None:
    estimator = PerformanceEstimator()
    for method in (estimator.estimate, estimator.calibrate, estimator.predict):
        with pytest.raises(NotFittedError, match="PerformanceEstimator instance is not fitted"):
            method(np.array([[0.5, 0.5]]))
    assert not hasattr(estimator, "calibration_")


@pytest.mark.parametrize(("params", "message"), [
    ({"calibration": "platt"}, "The 'calibration' parameter of PerformanceEstimator must be one "
                               "of 'auto', 'none', 'temperature', 'dirichlet', 'histogram', "
                               "'isotonic'. Got 'platt' instead."),
    ({"cv": 1}, "The 'cv' parameter of PerformanceEstimator must be an int >= 2. Got 1"),
    ({"n_bins": 2.5}, "The 'n_bins' parameter .* must be an int >= 2. Got 2.5"),
    ({"threshold": 1.5}, "The 'threshold' parameter .* must be a float in \\(0, 1\\) or None. "
                         "Got 1.5"),
    ({"confidence": 0}, "The 'confidence' parameter .* in \\(0, 1\\). Got 0"),
    ({"random_state": -1}, "The 'random_state' parameter .* Got -1"),
])
def test_parameters_are_checked_in_fit_naming_the_value_and_what_is_allowed(
    params: dict[str, Any], message: str
) -> None:
    estimator = PerformanceEstimator(**params)  # __init__ stores; fit validates
    assert estimator.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(UsageError, match=message):
        estimator.fit(np.array([[0.7, 0.3]] * 20), np.zeros(20, int))


def test_inputs_are_checked_with_what_to_do() -> None:
    proba = np.array([[0.7, 0.2, 0.1]] * 20)
    fit = PerformanceEstimator().fit
    with pytest.raises(UsageError, match="applies to binary models only.*3 classes"):
        PerformanceEstimator(threshold=0.5).fit(proba, np.zeros(20, int))
    with pytest.raises(UsageError, match="class codes 0 … 2.*got 'a'"):
        fit(proba, np.array(["a"] * 20))
    with pytest.raises(UsageError, match="class codes 0 … 2.*got 3"):
        fit(proba, np.full(20, 3))
    with pytest.raises(UsageError, match="20 rows but reference_labels has 19"):
        fit(proba, np.zeros(19, int))
    with pytest.raises(UsageError, match="rows sum to 1.*not logits"):
        fit(proba * 3, np.zeros(20, int))
    with pytest.raises(UsageError, match="row 4 is not finite"):
        fit(np.where(np.arange(20)[:, None] == 4, np.nan, proba), np.zeros(20, int))
    with pytest.raises(UsageError, match="at least 2 × cv = 10 labelled reference rows; got 9"):
        fit(proba[:9], np.zeros(9, int))
    fitted = fit(proba, np.arange(20) % 3)
    with pytest.raises(UsageError, match="2 columns but the estimator was fitted on 3 classes"):
        fitted.estimate(np.array([[0.5, 0.5]]))
    with pytest.raises(UsageError, match="classification metrics.*\\['rmse'\\]"):
        fitted.estimate(proba, metrics=("rmse",))
    assert clone(fitted).get_params() == fitted.get_params()  # a scikit-learn estimator


def test_a_stored_labelled_sample_is_bounded_and_fits_the_estimator() -> None:
    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=30_000)
    part = labelled_outputs(np.column_stack([1 - p1, p1]), (rng.uniform(size=30_000) < p1))
    assert len(part.labels) == 20_000 and part.rows == 30_000 and len(part.columns) == 1
    profile = Profile(features={}, outputs={}, rows=30_000, labelled=part)
    back = Profile.from_json(profile.to_json())
    assert back == profile
    estimator, note = reference_estimator(back)
    assert estimator is not None and note["fallback"] is False
    assert note["reference_rows"] == 20_000 and note["calibration"] == estimator.calibration_
    assert set(note["held_out_log_loss"]) == {"none", "temperature", "dirichlet", "histogram",
                                              "isotonic"}
    old = Profile.from_json({k: v for k, v in profile.to_json().items() if k != "labelled"})
    assert old.labelled is None and reference_estimator(old)[0] is None


def _register(registry: Any, frame: pd.DataFrame, trained: tuple[Any, bytes, Any], *,
              labels: Callable[[np.ndarray], np.ndarray] | None) -> int:
    """Register a quickly trained model with a reference profile as training stores it: the
    validation outputs with ``labels`` (None: a reference stored before labels were kept)."""
    from driftloop.monitor.profile import build_reference, output_columns
    from driftloop.monitor.reference import store_reference
    from driftloop.registry import LoadedModel

    prepared, weights, bundle = trained
    version = registry.register("m", run_id=None, bundle=bundle, weights=weights, metrics={},
                                actor="test", reason="estimator test")
    val = prepared.splits["val"]
    outputs = LoadedModel(bundle, weights).predict_arrays(val.x, val.x_cat)
    columns, names = output_columns(prepared.task, prepared.classes, outputs)
    train_rows = frame.iloc[prepared.splits["train"].rows].drop(columns="label")
    profile = build_reference(train_rows, outputs=columns, output_names=names)
    if labels is not None:
        profile = Profile(profile.features, profile.outputs, profile.rows,
                          labelled=labelled_outputs(outputs, labels(val.y)))
    dataset = registry.store.upsert_dataset(prepared.fingerprints["train"], "train",
                                            len(train_rows), None)
    store_reference(registry, version, profile, dataset_id=dataset.id, run_id=None)
    return version.version


def test_windows_use_the_estimator_fitted_on_the_versions_labelled_reference(dl_settings):
    from driftloop.monitor.windows import monitor
    from driftloop.registry import Registry
    from driftloop.store.clock import utcnow
    from quick_model import quick_version

    rng = np.random.default_rng(0)
    n = 1200
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["label"] = np.where(frame["a"] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    trained = quick_version(frame, steps=60)
    with Registry.open(dl_settings) as registry:
        # v1: the stored labels are the truth for a third of the rows and flipped otherwise, so
        # a fitted estimator must expect far fewer right answers than the probabilities claim
        flip = rng.uniform(size=n) < 2 / 3
        v1 = _register(registry, frame, trained,
                       labels=lambda y: np.where(flip[:len(y)], 1 - y, y))
        v2 = _register(registry, frame, trained, labels=None)  # stored before labels were kept
        loaded = registry.load("m", v1)
        features = frame.drop(columns="label").head(200)
        proba = loaded.predict_raw(features)
        now = utcnow()
        registry.store.add_predictions([
            {"request_id": f"{version}-{i}", "model_name": "m", "version": version, "at": now,
             "features": {k: float(v) for k, v in features.iloc[i].items()},
             "output": {"predictions": ["no", "yes"][int(proba[i].argmax())],
                        "probabilities": proba[i].tolist()}}
            for version in (v1, v2) for i in range(len(features))])
        result = monitor("m", window="200", settings=dl_settings, registry=registry)
        fitted, old = result.windows
        trusted = float(proba.max(axis=1).mean())
        assert fitted.report["performance_estimate"]["fallback"] is False
        assert fitted.report["performance_estimate"]["reference_rows"] > 100
        assert fitted.estimated["accuracy"]["value"] < trusted - 0.2
        note = old.report["performance_estimate"]
        assert note["fallback"] is True and "stored without labels" in note["reason"]
        # the same model: the old reference's estimate trusts the probabilities as they are
        assert old.estimated["accuracy"]["value"] == pytest.approx(trusted, abs=1e-6)
