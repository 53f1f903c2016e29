"""Promotion gates: every gate refuses on bad or missing evidence and passes on good."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftloop.config import GateSettings, Settings
from driftloop.errors import CheckFailed, ConfigError
from driftloop.evaluate.report import build_report
from driftloop.registry import GATES, GateRefused, ModelBundle
from driftloop.registry.evaluation import store_report
from driftloop.registry.gates import Evidence, GateResult, run_gates


def results(report) -> dict[str, GateResult]:
    return {r.name: r for r in report.results}


def test_a_better_candidate_is_accepted_with_values_and_bounds(registry, factory):
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    factory.version(accuracy=0.95)
    promotion = registry.promote("credit", 2, to="production", reason="better")
    assert promotion.move is not None and not promotion.forced
    assert registry.holder("credit", "production").version == 2
    found = results(promotion.gates)
    assert list(found) == ["metric:roc_auc", "calibration", "slices", "data_check", "pii",
                           "card", "holder", "robustness", "privacy", "student"]
    assert all(r.passed for r in found.values())
    holder = found["holder"]
    # right on a superset of the holder's rows: the interval's lower bound is above 0
    assert holder.measured > 0.02 and holder.bound == "> 0"
    assert holder.details["difference"] > holder.measured
    assert holder.measured == pytest.approx(holder.details["interval"][0], abs=1e-6)
    assert "v1 (holder of production)" in holder.detail and "interval [" in holder.detail
    assert found["metric:roc_auc"].bound == ">= 0.5" and found["metric:roc_auc"].measured > 0.9


def test_a_worse_candidate_is_refused_listing_every_failed_gate(registry, factory):
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    factory.version(accuracy=0.8)
    audit_before = registry.audit.entries()
    with pytest.raises(GateRefused) as refused:
        registry.promote("credit", 2, to="production", reason="try")
    assert isinstance(refused.value, CheckFailed) and refused.value.exit_code == 1
    (failed,) = refused.value.report.failed
    assert failed.name == "holder" and failed.details["difference"] == pytest.approx(-0.1111,
                                                                                     abs=1e-3)
    low, high = failed.details["interval"]
    assert failed.measured == pytest.approx(low, abs=1e-6) and low < high < 0
    message = str(refused.value)
    assert f"holder: measured {low:.4g}, bound > 0" in message and "--force --reason" in message
    assert registry.holder("credit", "production").version == 1
    assert registry.audit.entries() == audit_before  # a refusal writes nothing
    assert len(registry.moves("credit", "production")) == 1


@pytest.mark.parametrize(
    ("make", "gate", "measured", "detail"),
    [
        (dict(accuracy=None), "metric:roc_auc", None, "missing evidence"),
        (dict(accuracy=0.85, confidence=0.99), "calibration", pytest.approx(0.14, abs=0.02),
         "ECE"),
        (dict(accuracy=0.95, bad_slice="Lima"), "slices", pytest.approx(0.2, abs=0.03),
         "city = Lima"),
        (dict(check="fail"), "data_check", 1, "found 1 error"),
        (dict(check=None), "data_check", None, "missing evidence"),
        (dict(features=("age", "contact")), "pii", ["contact"], "contact"),
        (dict(check=None), "pii", None, "missing evidence"),
    ],
)
def test_each_gate_fails_on_bad_or_missing_evidence(registry, factory, make, gate, measured,
                                                    detail):
    factory.version(**make)
    report = registry.gate("credit", 1, to="production")
    found = results(report)[gate]
    assert not found.passed and not report.passed
    assert found.measured == measured and detail in found.detail
    assert found.bound is not None


def test_missing_card_text_fails_the_card_gate(open_registry, card_text):
    registry, factory = open_registry(card=False)
    factory.version()
    card = results(registry.gate("credit", 1, to="production"))["card"]
    assert not card.passed and card.measured == list(card_text)


def test_no_common_evaluation_data_with_the_holder_is_missing_evidence(registry, factory):
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    factory.version(accuracy=0.95, eval_fp="a" * 64, test_fp="8" * 64)
    holder = results(registry.gate("credit", 2, to="production"))["holder"]
    assert not holder.passed and "never evaluated on the same data" in holder.detail
    assert "cannot be compared on paired rows" in holder.detail
    assert "--data HOLDOUT" in holder.detail


def test_recorded_test_metrics_of_the_same_split_are_not_compared_as_point_estimates(
    registry, factory
):
    # the old rule compared 0.9 with 0.7 recorded at registration; without per-row reports
    # on the same rows there is nothing paired to decide on, so the gate refuses
    factory.version(accuracy=None, metrics={"accuracy": 0.7})
    registry.promote("credit", 1, to="production", reason="first", force=True)
    factory.version(accuracy=None, metrics={"accuracy": 0.9})
    holder = results(registry.gate("credit", 2, to="production"))["holder"]
    assert not holder.passed and holder.measured is None
    assert "same test split" in holder.detail and "paired rows" in holder.detail


def test_the_policy_moves_bounds_skips_gates_and_allows_pii(open_registry):
    registry, factory = open_registry(metric_bounds={"accuracy": 0.95, "rmse": 1.0},
                                      skip=["slices"], allow_pii=["contact"])
    factory.version(features=("age", "contact"), bad_slice="Lima")
    found = results(registry.gate("credit", 1, to="staging"))
    assert "metric:rmse" not in found  # not a classification metric
    assert not found["metric:accuracy"].passed and found["metric:accuracy"].bound == ">= 0.95"
    assert found["slices"].passed and "skipped" in found["slices"].detail
    assert found["pii"].passed and "except the allowed contact" in found["pii"].detail


@pytest.mark.parametrize(
    ("gates", "message"),
    [({"metric_bounds": {"auc": 0.5}}, "'auc'"), ({"skip": ["vibes"]}, "'vibes'"),
     ({"compare_metric": "f1"}, "'f1'")],
)
def test_a_bad_policy_is_a_config_error(open_registry, gates, message):
    registry, factory = open_registry(**gates)
    factory.version()
    factory.version()
    with pytest.raises(ConfigError, match=message):
        registry.promote("credit", 1, to="production", force=True, reason="seed")
        registry.gate("credit", 2, to="production")


def test_card_required_names_are_checked_when_settings_load():
    with pytest.raises(ConfigError, match="card_required names 'mood'"):
        Settings.load(overrides={"gates": {"card_required": ["mood"]}}, environ={},
                      cwd="/nonexistent")


def test_regression_has_no_calibration_gate(registry):
    from datetime import datetime, timezone

    from driftloop.store import VersionRecord

    v = VersionRecord(1, "price", 1, None, datetime(2024, 1, 1, tzinfo=timezone.utc),
                      "regression", "table", "a" * 64, "b" * 64, {"r2": -0.2, "rmse": 3.0}, 1,
                      None, None)
    found = results(run_gates(Evidence(v, "production", card_missing=[]), GateSettings()))
    assert found["calibration"].passed and "not applicable" in found["calibration"].detail
    assert not found["metric:r2"].passed and "metric:roc_auc" not in found


def test_every_gate_reports_json_with_the_policy_hash(registry, factory):
    factory.version()
    report = registry.gate("credit", 1, to="production")
    body = json.loads(json.dumps(report.to_json()))
    assert {r["name"].split(":")[0] for r in body["results"]} == set(GATES) - {
        "metrics"} | {"metric"}
    assert len(body["policy_sha256"]) == 64 and body["policy"]["max_ece"] == 0.1
    assert body["evaluation"]["fingerprint"] == "e" * 64


def test_a_policy_change_is_audited_once_per_change(open_registry):
    registry, factory = open_registry()
    for accuracy in (0.9, 0.91, 0.92):
        factory.version(accuracy=accuracy)
    registry.promote("credit", 1, to="production", reason="a")
    registry.promote("credit", 2, to="production", reason="b")
    stricter, _ = open_registry(max_ece=0.05)
    stricter.promote("credit", 3, to="production", reason="c")
    changes = registry.audit.entries(action="policy_change")
    assert [c.details["policy"]["max_ece"] for c in changes] == [0.1, 0.05]
    assert changes[1].details["previous_sha256"] == changes[0].details["sha256"]


# -- the holder gate: a paired comparison on the same rows ------------------------------------


def test_the_same_model_from_another_seed_is_refused_on_a_small_holdout(mlp):
    registry = mlp.registry()
    mlp.register(registry, "seed1")
    registry.promote("credit", 1, to="production", force=True, reason="first")
    mlp.register(registry, "seed2")  # same recipe and data, other initial weights
    report = registry.gate("credit", 2, to="production", data=mlp.holdout(300))
    holder = results(report)["holder"]
    d = holder.details
    assert not holder.passed and "not shown better" in holder.detail
    assert d["rows"] == 300 and d["disagreements"] > 0  # really different predictions
    # its point estimate is as good or better: the old margin rule (worse by <= 0.01) passed it
    assert d["difference"] > -0.01
    low, high = d["interval"]
    assert low <= 0 < high and holder.measured == pytest.approx(low, abs=1e-6)
    assert d["candidate"] - d["holder"] == pytest.approx(d["difference"])
    # both versions were evaluated on the holdout, and the reports keep their per-row outcomes
    stored = {e.version_id for e in registry.store.list_reports(kind="evaluation")
              if e.dataset_fingerprint == report.evaluation["fingerprint"]}
    assert stored == {1, 2}


def test_a_really_better_challenger_is_promoted(mlp):
    registry = mlp.registry(skip=["data_check", "pii", "slices", "calibration"])
    mlp.register(registry, "weak")
    registry.promote("credit", 1, to="production", force=True, reason="first")
    mlp.register(registry, "seed1")
    promotion = registry.promote("credit", 2, to="production", reason="better",
                                 data=mlp.holdout(300))
    holder = results(promotion.gates)["holder"]
    assert promotion.move is not None and not promotion.forced
    assert registry.holder("credit", "production").version == 2
    assert holder.passed and holder.details["interval"][0] > 0 and holder.bound == "> 0"
    assert holder.details["policy"] == "superior" and holder.details["confidence"] == 0.95


def test_below_the_minimum_holdout_the_gate_says_how_many_rows_it_needs(registry, factory,
                                                                       open_registry):
    factory.version(accuracy=0.9, rows=150)
    registry.promote("credit", 1, to="production", force=True, reason="first")
    factory.version(accuracy=0.97, rows=150)  # right wherever v1 is, and on more rows
    holder = results(registry.gate("credit", 2, to="production"))["holder"]
    assert not holder.passed and holder.measured == 150 and holder.bound == ">= 200 rows"
    assert "only 150 paired rows" in holder.detail
    assert "gates.min_holdout_rows = 200" in holder.detail and "--data HOLDOUT" in holder.detail
    lowered, _ = open_registry(min_holdout_rows=100)
    assert results(lowered.gate("credit", 2, to="production"))["holder"].passed


def test_non_inferior_allows_a_candidate_worse_by_less_than_the_margin(registry, factory,
                                                                      open_registry):
    factory.version(accuracy=0.9)  # which rows are right: noise seed 1
    registry.promote("credit", 1, to="production", force=True, reason="first")
    factory.version(accuracy=0.9, noise_seed=7)  # as good in expectation, other rows right
    factory.version(accuracy=0.86)  # right on a subset of v1's rows: about 0.04 worse

    def holder(registry, version):
        return results(registry.gate("credit", version, to="production"))["holder"]

    equal = holder(registry, 2)
    assert not equal.passed and abs(equal.details["difference"]) < 0.03  # superior: refused
    lenient, _ = open_registry(holder_policy="non_inferior", margin=0.05)
    equal = holder(lenient, 2)
    assert equal.passed and equal.bound == "> -0.05" and equal.details["threshold"] == -0.05
    assert -0.05 < equal.details["interval"][0] < 0 and "non_inferior" in equal.detail
    worse = holder(lenient, 3)
    low = worse.details["interval"][0]
    assert -0.05 < worse.details["difference"] < -0.02 and not worse.passed and low < -0.05
    assert "worse by more than the margin" in worse.detail
    wide, _ = open_registry(holder_policy="non_inferior", margin=0.1)
    assert holder(wide, 3).passed  # the whole interval is within 0.1 of the holder
    strict, _ = open_registry(holder_policy="non_inferior", margin=0.0)
    assert not holder(strict, 2).passed  # margin 0: non_inferior is as strict as superior


def test_reports_that_do_not_pair_row_by_row_are_refused(registry, factory):
    v1 = factory.version(accuracy=None)
    factory.evaluate(v1, 0.9, per_row=False)  # as reports stored before paired comparison
    registry.promote("credit", 1, to="production", force=True, reason="first")
    factory.version(accuracy=0.95)
    holder = results(registry.gate("credit", 2, to="production"))["holder"]
    assert not holder.passed and "missing evidence" in holder.detail
    assert "of v1 keeps no per-row outcomes" in holder.detail
    # same fingerprint, other labels: not the same rows, whatever the fingerprint says
    factory.evaluate(v1, 0.9)
    factory.version(accuracy=0.95, label_seed=3)
    holder = results(registry.gate("credit", 3, to="production"))["holder"]
    assert not holder.passed and "not on the same rows (the targets differ" in holder.detail


def test_regression_is_compared_by_paired_rmse(registry, open_registry):
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 400)
    bundle = ModelBundle(task="regression", input_kind="table", model="mlp", model_inputs={},
                         n_outputs=1, classes=None, schema=None, preprocessor=None,
                         target_encoder={"task": "regression"})
    for n, noise in ((1, 1.0), (2, 0.8)):
        v = registry.register("price", run_id=None, bundle=bundle, weights=bytes([n]),
                              metrics={}, actor="ci:test", reason="test")
        pred = y + rng.normal(0, noise, len(y))
        store_report(build_report("regression", y, pred, dataset={"fingerprint": "e" * 64},
                                  n_resamples=50), registry, version=v)
    registry.promote("price", 1, to="production", force=True, reason="first")
    holder = results(registry.gate("price", 2, to="production"))["holder"]
    d = holder.details
    assert d["metric"] == "rmse" and d["candidate"] < d["holder"]  # lower error: better
    assert holder.passed and d["difference"] == pytest.approx(d["holder"] - d["candidate"])
    relative, _ = open_registry(holder_policy="non_inferior", margin=0.1)
    found = results(relative.gate("price", 2, to="production"))["holder"]
    assert found.details["threshold"] == pytest.approx(-0.1 * d["holder"])  # relative margin
    with pytest.raises(ConfigError, match="cannot compare row by row"):
        open_registry(compare_metric="r2")[0].gate("price", 2, to="production")
