"""``dl.drift`` and ``compare``: what is flagged, what is not, and what cannot be tested."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_wine

import driftloop as dl
from driftloop.config import DriftSettings, Settings
from driftloop.errors import ConfigError, DataError, UsageError
from driftloop.monitor.drift import compare
from driftloop.monitor.profile import build_reference, profile_like

ALPHA = 0.05


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.lognormal(10 + shift, 0.5, n),
        "age": rng.normal(40 + 10 * shift, 10, n).round(),
        "city": rng.choice(["Oslo", "Rome", "Lima", "Pune"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "member": rng.random(n) < 0.3,
        "score": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
    })


def _proba(frame: pd.DataFrame) -> np.ndarray:
    """A fixed 'model': the same function of the features on both sides."""
    logit = (frame["age"].to_numpy() - 40) / 10 + frame["member"].to_numpy() - 0.3
    return 1 / (1 + np.exp(-logit))


def test_a_clear_shift_is_found_and_a_fresh_sample_is_not():
    cfg = DriftSettings()
    report = dl.drift(_frame(2000, 0), _frame(2000, 1, shift=0.5), settings=cfg)
    flagged = {f.name for f in report.features if f.drifted}
    assert flagged == {"income", "age"}
    assert report.share_drifted == pytest.approx(2 / 5) and not report.drift_detected
    quiet = dl.drift(_frame(2000, 0), _frame(2000, 2), settings=cfg)
    assert quiet.drifted == [] and not quiet.drift_detected and quiet.share_drifted == 0.0
    assert {f.status for f in quiet.features} == {"ok"}


def test_a_tiny_shift_in_a_million_rows_is_significant_but_not_an_alarm():
    rng = np.random.default_rng(0)
    n = 1_000_000
    ref = build_reference(pd.DataFrame({"x": rng.normal(size=n)}))
    cur = profile_like(ref, pd.DataFrame({"x": rng.normal(0.01, 1, n)}))
    feature = compare(ref, cur).features[0]
    assert feature.p_value_adjusted < 1e-4  # the test sees it ...
    assert feature.effect_size < 0.05  # ... but 0.01 standard deviations is below the floor
    assert not feature.drifted and feature.status == "ok"
    assert feature.method.startswith("KS on")  # binned: a million rows keep no sample


def _false_alarm_rate(make, reps: int, seed: int) -> tuple[float, float]:
    """Share of reports with dataset drift, and with any drifting feature, on no-drift pairs."""
    cfg = DriftSettings(alpha=ALPHA)
    alarms = any_flag = 0
    for rep in range(reps):
        ref_frame, cur_frame = make(np.random.default_rng([seed, rep]))
        ref = build_reference(ref_frame, outputs=_proba(ref_frame), output_names=["proba:yes"],
                              settings=cfg)
        report = compare(ref, profile_like(ref, cur_frame, outputs=_proba(cur_frame),
                                           settings=cfg), settings=cfg)
        alarms += report.drift_detected
        any_flag += bool(report.drifted) or report.prediction["drift_detected"]
    return alarms / reps, any_flag / reps


@pytest.mark.parametrize("rows", [300, 3000])
def test_false_alarm_rate_on_no_drift_data_stays_below_alpha(rows):
    def make(rng):
        return (_frame(rows, int(rng.integers(2**31))), _frame(rows, int(rng.integers(2**31))))

    dataset_rate, any_rate = _false_alarm_rate(make, reps=150, seed=rows)
    assert dataset_rate <= ALPHA + 0.02
    assert any_rate <= ALPHA + 0.03  # BH keeps the family-wise rate near alpha under no drift


def test_many_categories_cut_to_the_most_frequent_do_not_raise_false_alarms():
    # 300 long-tailed categories, 50 kept: choosing and testing on the same counts would make
    # chi-square reject most of the time here (the winner's curse); it must stay near alpha
    labels = np.array([f"p{i}" for i in range(300)])
    cfg = DriftSettings(max_categories=50)
    rejected = 0
    reps = 150
    for rep in range(reps):
        rng = np.random.default_rng([7, rep])
        a, b = (pd.DataFrame({"product": labels[rng.zipf(1.3, 1000) % 300]}) for _ in "ab")
        ref = build_reference(a, settings=cfg)
        feature = compare(ref, profile_like(ref, b, settings=cfg), settings=cfg).features[0]
        assert ref.features["product"].test_counts is not None
        rejected += feature.p_value < ALPHA
    assert rejected / reps <= ALPHA + 0.04


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine])
def test_false_alarm_rate_on_random_splits_of_real_data_stays_below_alpha(loader):
    frame = loader(as_frame=True).frame.drop(columns="target")
    cfg = DriftSettings(alpha=ALPHA)
    alarms = 0
    reps = 60
    for rep in range(reps):
        order = np.random.default_rng(rep).permutation(len(frame))
        half = len(frame) // 2
        report = dl.drift(frame.iloc[order[:half]], frame.iloc[order[half:]], settings=cfg)
        alarms += report.drift_detected
    assert alarms / reps <= ALPHA + 0.02


@pytest.mark.parametrize(
    "ref_values,cur_values,status,reason",
    [
        ([1.0, 2.0, 3.0], [], "not_testable", "the current data has no rows"),
        ([1.0, 2.0, 3.0], [4.0], "not_testable", "a single row"),
        ([np.nan] * 3, [np.nan] * 3, "not_testable", "every value is missing in the reference"),
        ([np.nan] * 30, [1.0] * 30, "drift", "every value is missing in the reference"),
        ([1.0, 2.0] * 20, [np.nan] * 40, "drift", "every value is missing in the current data"),
        ([5.0] * 10, [5.0] * 8, "not_testable", "constant (5) in both"),
        ([1.0, 2.0, np.nan], [np.nan, 3.0, np.nan], "not_testable", "only one value"),
    ],
)
def test_untestable_features_get_a_reason_and_no_numbers(ref_values, cur_values, status, reason):
    ref = pd.DataFrame({"x": pd.Series(ref_values, dtype=float), "ok": np.arange(len(ref_values))})
    cur = pd.DataFrame({"x": pd.Series(cur_values, dtype=float), "ok": np.arange(len(cur_values))})
    report = dl.drift(ref, cur, settings=DriftSettings())
    feature = report.features[0]
    assert feature.status == status and reason in feature.reason
    assert feature.p_value is None and feature.statistic is None and feature.effect_size is None
    assert feature.drifted == (status == "drift")
    if status == "drift":  # caught by the missing-rate test alone
        assert feature.missing["drifted"] and "only the missing rate" in feature.reason
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_feature_absent_from_the_current_data_and_one_shared_category_are_not_testable():
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "a", "a"]})
    report = dl.drift(ref, pd.DataFrame({"c": ["a", "a"]}), settings=DriftSettings())
    by_name = {f.name: f for f in report.features}
    assert by_name["x"].reason == "not in the current data"
    assert "one category ('a') in both" in by_name["c"].reason
    assert report.share_drifted is None and not report.drift_detected


def test_an_empty_current_window_is_not_a_crash():
    ref = build_reference(_frame(500, 0), outputs=np.linspace(0, 1, 500))
    report = compare(ref, profile_like(ref, _frame(0, 1), outputs=np.empty(0)))
    assert {f.status for f in report.features} == {"not_testable"}
    assert report.n_tests == 0 and report.share_drifted is None and not report.drift_detected
    assert report.prediction["outputs"][0]["status"] == "not_testable"


def test_a_constant_reference_is_compared_below_at_and_above_its_value():
    ref = pd.DataFrame({"x": np.full(500, 2.0)})
    moved = dl.drift(ref, pd.DataFrame({"x": np.full(500, 3.0)}), settings=DriftSettings())
    feature = moved.features[0]
    assert feature.status == "drift" and feature.test == "chi2"
    assert feature.effect_metric == "jensen_shannon" and feature.effect_size == pytest.approx(1)


def test_the_json_report_holds_the_issue_keys_and_no_nan():
    ref, cur = _frame(400, 0), _frame(400, 1, shift=1.0)
    cur["score"] = np.nan
    body = dl.drift(ref, cur, settings=DriftSettings()).to_dict()
    text = json.dumps(body, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    assert {"drift_detected", "share_drifted", "correction", "features", "prediction"} <= set(body)
    keys = {"name", "kind", "test", "statistic", "p_value", "p_value_adjusted", "effect_size",
            "effect_metric", "drifted", "status"}
    assert all(keys <= set(f) for f in body["features"])
    assert body["prediction"] == {"drift_detected": False, "outputs": [],
                                  "reason": "the reference profiles no model outputs"}


def _many_small_shifts() -> tuple:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=600) for i in range(12)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.17 if i < 6 else 0.0, 1, 600) for i in range(12)})
    return ref, cur


def test_all_p_values_of_a_report_are_corrected_together_bh_or_bonferroni_or_none():
    ref, cur = _many_small_shifts()
    cur.loc[:99, "x11"] = np.nan  # a missing-rate test joins the family
    reports = {c: dl.drift(ref, cur, settings=DriftSettings(correction=c, effect_floors={}))
               for c in ("bh", "bonferroni", "none")}
    raw = [f.p_value for f in reports["none"].features] + [reports["none"].features[-1]
                                                           .missing["p_value"]]
    assert reports["bh"].n_tests == 13 == len(raw)
    bh = stats.false_discovery_control(raw, method="bh")
    got = [f.p_value_adjusted for f in reports["bh"].features]
    assert got == pytest.approx(list(bh[:12]))
    assert reports["bh"].features[-1].missing["p_value_adjusted"] == pytest.approx(bh[12])
    bonferroni = [f.p_value_adjusted for f in reports["bonferroni"].features]
    assert bonferroni == pytest.approx([min(1.0, p * 13) for p in raw[:12]])
    assert [f.p_value_adjusted for f in reports["none"].features] == pytest.approx(raw[:12])
    drifted = {c: len(r.drifted) for c, r in reports.items()}
    assert drifted["bonferroni"] < drifted["bh"] < drifted["none"]


def test_model_outputs_that_drift_make_the_dataset_drift_on_their_own():
    ref_frame, cur_frame = _frame(3000, 0), _frame(3000, 1)
    ref = build_reference(ref_frame, outputs=_proba(ref_frame), output_names=["proba:yes"])
    cur = profile_like(ref, cur_frame, outputs=np.clip(_proba(cur_frame) + 0.3, 0, 1))
    report = compare(ref, cur)
    assert report.share_drifted == 0.0 and report.prediction["drift_detected"]
    assert report.drift_detected and report.n_tests == 5 + 1 + 1  # features, score missing, out
    [output] = report.prediction["outputs"]
    assert output["name"] == "proba:yes" and output["status"] == "drift"
    assert "prediction drift" in report.headline()


def test_dataset_drift_needs_the_share_threshold():
    ref, cur = _frame(2000, 0), _frame(2000, 1, shift=0.5)  # 2 of 5 features drift
    assert not dl.drift(ref, cur, settings=DriftSettings()).drift_detected
    assert dl.drift(ref, cur, settings=DriftSettings(share_threshold=0.4)).drift_detected


def test_the_test_of_each_feature_can_be_chosen_in_the_settings():
    ref, cur = _frame(1000, 0), _frame(1000, 1, shift=0.5)
    cfg = DriftSettings(tests={"income": "psi", "city": "jensen_shannon", "age": "wasserstein"})
    by_name = {f.name: f for f in dl.drift(ref, cur, settings=cfg).features}
    assert (by_name["income"].test, by_name["income"].effect_metric) == ("psi", "psi")
    assert by_name["income"].method.startswith("G-test")
    assert by_name["city"].statistic == by_name["city"].effect_size
    assert by_name["age"].statistic == by_name["age"].effect_size
    with pytest.raises(ConfigError, match="'ks'.*categorical.*psi, chi2, jensen_shannon"):
        dl.drift(ref, cur, settings=DriftSettings(tests={"city": "ks"}))
    with pytest.raises(ConfigError, match="drift.tests.city"):
        Settings.load(overrides={"drift": {"tests": {"city": "t-test"}}}, environ={},
                      cwd="/nonexistent")


def test_files_are_read_and_the_target_is_left_out(tmp_path):
    ref, cur = _frame(1500, 0), _frame(1500, 1, shift=0.5)
    ref["label"], cur["label"] = 0, 1
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    cfg = DriftSettings()
    report = dl.drift(tmp_path / "ref.parquet", str(tmp_path / "cur.csv"), target="label",
                      settings=cfg)
    assert [f.name for f in report.features] == list(ref.columns[:-1])
    assert report.drifted == dl.drift(ref, cur, target="label", settings=cfg).drifted
    with pytest.raises(DataError, match="'lable' is in neither"):
        dl.drift(ref, cur, target="lable", settings=cfg)


def test_bad_inputs_raise_one_clear_error(tmp_path):
    ref = _frame(100, 0)
    cfg = DriftSettings()
    with pytest.raises(DataError, match="missing.csv: file not found"):
        dl.drift(ref, tmp_path / "missing.csv", settings=cfg)
    with pytest.raises(DataError, match="nope: file not found"):
        dl.drift(str(tmp_path / "nope"), ref, settings=cfg)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        dl.drift(tmp_path / "bad.parquet", ref, settings=cfg)
    with pytest.raises(UsageError, match="not NAME or NAME:VERSION"):
        dl.drift("credit:latest", ref, settings=cfg)
    with pytest.raises(UsageError, match="got list"):
        dl.drift([1, 2], ref, settings=cfg)
    other = profile_like(build_reference(_frame(100, 3)), _frame(50, 4))
    with pytest.raises(UsageError, match="not counted over the reference's bins"):
        dl.drift(ref, other, settings=cfg)


def test_the_html_page_is_self_contained_and_says_the_status_in_words():
    ref, cur = _frame(500, 0), _frame(500, 1, shift=1.0)
    ref["<b>odd</b>"] = cur["<b>odd</b>"] = 1.0
    page = dl.drift(ref, cur, settings=DriftSettings()).to_html()
    assert page.startswith("<!doctype html>") and "http" not in page and "<script" not in page
    assert "▲ DRIFT" in page and "✓ ok" in page and "– not testable" in page
    assert "&lt;b&gt;odd&lt;/b&gt;" in page and "<b>odd</b>" not in page
