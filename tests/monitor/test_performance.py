"""CBPE: estimates from calibrated probabilities track realised metrics under covariate shift."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from driftloop.monitor.detectors import detect_changes
from driftloop.monitor.performance import estimate_performance, realised_performance


def _calibrated_world(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels drawn from a logistic model, so a logistic fit is calibrated."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2])))
    return x, (rng.uniform(size=n) < p).astype(int)


def test_estimate_tracks_realised_accuracy_under_covariate_shift() -> None:
    x, y = _calibrated_world(40_000, seed=0)
    model = LogisticRegression().fit(x[:20_000], y[:20_000])
    x_rest, y_rest = x[20_000:], y[20_000:]
    # windows selected by quantile of feature 0: the easy and the hard part of the space
    order = np.argsort(np.abs(x_rest[:, 0]))
    for rows in (order[:4000], order[-4000:], order[8000:12000]):
        proba = model.predict_proba(x_rest[rows])
        est = estimate_performance(proba, seed=1)
        real = realised_performance(y_rest[rows], proba, n_resamples=100)
        assert abs(est["accuracy"]["value"] - real["accuracy"]["value"]) < 0.03
        assert abs(est["roc_auc"]["value"] - real["roc_auc"]["value"]) < 0.03
        assert est["accuracy"]["low"] <= est["accuracy"]["value"] <= est["accuracy"]["high"]


def test_the_band_covers_the_realised_accuracy_about_as_often_as_promised() -> None:
    x, y = _calibrated_world(60_000, seed=3)
    model = LogisticRegression().fit(x[:20_000], y[:20_000])
    covered = 0
    windows = 40
    for i in range(windows):
        rows = slice(20_000 + i * 1000, 21_000 + i * 1000)
        proba = model.predict_proba(x[rows])
        est = estimate_performance(proba, seed=i)["accuracy"]
        acc = float(np.mean(proba.argmax(1) == y[rows]))
        covered += est["low"] <= acc <= est["high"]
    assert covered >= 0.85 * windows


def test_empty_and_multiclass_windows() -> None:
    assert estimate_performance(np.empty((0, 2))) == {}
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]] * 50)
    est = estimate_performance(proba, seed=0)
    assert abs(est["accuracy"]["value"] - 0.7) < 1e-9
    assert set(est) == {"accuracy", "macro_f1", "roc_auc"}


def test_detectors_find_a_rise_in_the_error_rate_and_stay_quiet_without_one() -> None:
    rng = np.random.default_rng(5)
    calm = (rng.uniform(size=4000) < 0.1).astype(float)
    assert detect_changes(calm, binary=True)["ddm"] == []
    assert detect_changes(calm, binary=True)["page_hinkley"] == []
    change = np.r_[calm[:2000], (rng.uniform(size=2000) < 0.35).astype(float)]
    found = detect_changes(change, binary=True)
    for name in ("adwin", "ddm", "page_hinkley"):
        assert found[name], name
        assert 2000 <= found[name][0] < 2400, (name, found[name][0])
    regression = detect_changes(np.abs(rng.normal(size=500)), binary=False)
    assert "ddm" not in regression


def test_estimate_within_003_on_a_real_dataset_under_covariate_shift() -> None:
    """river's bundled Bananas: a calibrated model on one half, the other half cut into
    windows by a feature's quartile (a covariate shift made by selecting rows)."""
    from river import datasets
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows = np.array([(x["1"], x["2"], int(y)) for x, y in datasets.Bananas()])
    np.random.default_rng(0).shuffle(rows)
    x, y = rows[:, :2], rows[:, 2].astype(int)
    half = len(rows) // 2
    model = CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=100),
                                   method="isotonic", cv=5).fit(x[:half], y[:half])
    x_rest, y_rest = x[half:], y[half:]
    for column in (0, 1):
        edges = np.quantile(x_rest[:, column], [0, 0.25, 0.5, 0.75, 1])
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            rows_in = (x_rest[:, column] >= lo) & (x_rest[:, column] <= hi)
            proba = model.predict_proba(x_rest[rows_in])
            estimated = estimate_performance(proba, seed=0)["accuracy"]["value"]
            realised = float(np.mean(proba.argmax(1) == y_rest[rows_in]))
            assert abs(estimated - realised) <= 0.03, (column, lo, hi, estimated, realised)
