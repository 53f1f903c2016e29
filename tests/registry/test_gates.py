"""Promotion gates: every gate refuses on bad or missing evidence and passes on good."""

from __future__ import annotations

import json

import pytest

from driftloop.config import GateSettings, Settings
from driftloop.errors import CheckFailed, ConfigError
from driftloop.registry import GATES, GateRefused
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
                           "card", "holder"]
    assert all(r.passed for r in found.values())
    holder = found["holder"]
    assert holder.measured < 0 and holder.bound == "<= 0.01"  # better: negative "worse by"
    assert "v1 (holder of production)" in holder.detail and "[" in holder.detail  # intervals
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
    assert failed.name == "holder" and failed.measured == pytest.approx(0.1111, abs=1e-3)
    message = str(refused.value)
    assert "holder: measured 0.1111, bound <= 0.01" in message and "--force --reason" in message
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


def test_without_reports_the_same_test_split_is_compared_and_said_so(registry, factory):
    factory.version(accuracy=None, metrics={"accuracy": 0.9})
    registry.promote("credit", 1, to="production", reason="first", force=True)
    factory.version(accuracy=None, metrics={"accuracy": 0.7})
    holder = results(registry.gate("credit", 2, to="production"))["holder"]
    assert not holder.passed and holder.measured == pytest.approx(0.2)
    assert "same test split" in holder.detail and "no intervals" in holder.detail


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
    assert {r["name"].split(":")[0] for r in body["results"]} == set(GATES) - {"metrics"} | {
        "metric"}
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
