"""`driftloop report governance`: gaps on a bare store; evidence after a real training run,
promotion, monitor windows, alerts, a loop run, a deactivation drill and an erasure."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.governance.erasure import erase_subject
from driftloop.governance.iso42001 import CONTROLS
from driftloop.governance.report import SUBCATEGORIES, governance_report
from driftloop.registry import ModelBundle, Registry
from driftloop.registry.aliases import deactivate
from driftloop.store.clock import utcnow

CARD = {"intended_use": "Rank loan applications for review.",
        "caveats": "Trained on one branch's applications.",
        "out_of_scope_uses": "Automatic refusals."}


def _bare(tmp_path: Path) -> Registry:
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    registry = Registry.open(settings)
    bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
                         n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
                         target_encoder={"task": "binary"})
    registry.register("credit", run_id=None, bundle=bundle, weights=b"w", metrics={},
                      actor="ci", reason="bare")
    return registry


def test_a_bare_store_reports_gaps_with_the_commands_that_close_them(tmp_path: Path) -> None:
    report = governance_report(_bare(tmp_path), "credit")
    by_id = {i.id: i for i in report.items}
    assert [i.id for i in report.items] == [s.id for s in SUBCATEGORIES]
    for sub in ("MAP 1.1", "MEASURE 2.1", "MEASURE 2.3", "MEASURE 2.4", "MEASURE 2.7",
                "MEASURE 2.10",
                "MEASURE 2.11", "MANAGE 1.1", "MANAGE 2.4", "MANAGE 4.1", "MANAGE 4.3"):
        assert by_id[sub].status == "gap" and by_id[sub].evidence == [], sub
        assert by_id[sub].produce, sub
    assert by_id["MEASURE 2.4"].produce == "driftloop monitor --model credit"
    assert by_id["MEASURE 2.1"].produce == "driftloop evaluate credit:1 DATA"
    assert by_id["GOVERN 1.4"].status == "evidence"  # the registration itself is audited
    assert report.counts()["gap"] >= 10
    assert report.counts()["gap"] + report.control_counts()["gap"] == len(report.gaps)
    controls = {i.id: i for i in report.controls}
    assert [i.id for i in report.controls] == [c.id for c in CONTROLS]
    for control in ("A.5.4", "A.6.2.4", "A.6.2.6", "A.7.4", "A.7.5", "A.8.4"):
        assert controls[control].status == "gap" and controls[control].produce, control
    assert controls["A.5.4"].produce == "driftloop evaluate credit:1 DATA --privacy"
    assert controls["A.7.4"].produce == "driftloop data check DATA --target COL --deep"
    assert controls["A.6.2.8"].status == "evidence"  # the audit chain holds the registration
    md = report.to_markdown()
    assert "### MEASURE 2.4 — gap" in md and "`driftloop monitor --model credit`" in md
    assert "## ISO/IEC 42001:2023 Annex A" in md and "### A.6.2.6 — gap" in md
    assert "NIST AI RMF 1.0: not served by driftloop" in md
    assert "**A.10 (A.10.2-A.10.4)**" in md


def test_slices_too_small_to_rank_are_a_gap_not_fairness_evidence(tmp_path: Path) -> None:
    from driftloop.evaluate.report import build_report
    from driftloop.registry.evaluation import store_report

    registry = _bare(tmp_path)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    proba = np.column_stack([1 - y * 0.8 - 0.1, y * 0.8 + 0.1])
    frame = pd.DataFrame({"city": rng.choice(["Oslo", "Rome"], 40)})
    report = build_report("binary", y, proba, frame=frame, slices=["city"],
                          dataset={"fingerprint": "e" * 64, "source": "holdout.csv"},
                          n_resamples=50, slice_min_count=30)
    store_report(report, registry, version=registry.get("credit", 1))
    item = next(i for i in governance_report(registry, "credit").items if i.id == "MEASURE 2.11")
    assert item.status == "gap" and item.evidence == []
    assert "no slice of 30 rows or more" in item.produce
    measured = next(i for i in governance_report(registry, "credit").items
                    if i.id == "MEASURE 2.1")
    assert measured.status == "evidence" and "holdout.csv" in measured.evidence[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """A small real training run (1 worker, 2 epochs) with a PII feature, in a store whose
    settings name a webhook and the model card text."""
    from driftloop.train.launcher import train

    home = tmp_path_factory.mktemp("report-home")
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n),
        "customer_id": [f"user{i % 40}@example.com" for i in range(n)],
    })
    frame["approved"] = np.where(frame["income"] + rng.normal(0, 8, n) > 50, "yes", "no")
    settings = Settings.load(overrides={
        "home": str(home), "card": CARD, "serve": {"pii_hash_key": "k"},
        "monitor": {"webhooks": ["http://127.0.0.1:9/alerts"]},
        "gates": {"allow_pii": ["customer_id"]},
        "evaluate": {"slice_min_count": 10},  # the 60-row test split has slices of ~20 rows
    }, environ={}, cwd=home)
    train(frame, "approved", workers=1, epochs=2, batch_size=32, settings=settings,
          progress=False, allow_pii=["customer_id"], name="credit")
    return Registry.open(settings)


def _live_evidence(registry: Registry) -> None:
    store = registry.store
    registry.promote("credit", 1, to="production", force=True, reason="first release")
    now = utcnow()
    for i, drift in enumerate((False, True)):
        window = store.add_window(
            model_name="credit", version=1, first_log_id=1 + 100 * i,
            last_log_id=100 * (i + 1), start_at=now, end_at=now, rows=100, status="ok",
            drift_detected=drift, share_drifted=0.5 if drift else 0.0, prediction_drift=False,
            report={"features": []}, estimated={"accuracy": {"value": 0.8}})
    store.set_realised(window.id, {"accuracy": {"value": 0.71}, "labelled": 60})
    store.add_alert(model_name="credit", window_id=window.id, kind="dataset_drift",
                    message="2 of 4 features drifted", details={"share": 0.5},
                    deliveries=[{"url": "http://127.0.0.1:9/alerts", "ok": True, "attempts": 1,
                                 "status": 200}])
    run = store.start_loop_run("credit", champion_version=1)
    store.finish_loop_run(run.id, outcome="cooldown", details={"steps": []})
    registry.promote("credit", 1, to="staging", force=True, reason="drill")
    deactivate(registry, "credit", "staging", reason="deactivation drill", actor="oncall")
    store.add_predictions([{"request_id": "q1", "model_name": "credit", "version": 1,
                            "at": now, "features": {"customer_id": "x", "income": 1.0},
                            "output": {}}])
    erase_subject(registry, "x")


@pytest.mark.slow
def test_after_training_and_operation_the_evidence_is_listed(trained: Registry) -> None:
    before = {i.id: i for i in governance_report(trained, "credit").items}
    for sub in ("MEASURE 2.1", "MEASURE 2.3", "MEASURE 2.10", "MEASURE 2.11", "MAP 1.1",
                "MAP 2.2"):
        assert before[sub].status == "evidence", (sub, before[sub])
    assert before["MEASURE 2.4"].status == "gap" and before["MANAGE 1.1"].status == "gap"

    _live_evidence(trained)
    report = governance_report(trained, "credit")
    by_id = {i.id: i for i in report.items}
    assert report.version == 1 and report.holder == 1
    assert all(i.status == "evidence" for i in report.items), [
        (i.id, i.status) for i in report.items if i.status != "evidence"]
    text = {k: " ".join(v.evidence) for k, v in by_id.items()}
    assert "2 monitor window(s)" in text["MEASURE 2.4"] and "1 with dataset drift" in text[
        "MEASURE 2.4"]
    assert "dataset_drift 1" in text["MEASURE 2.4"]
    assert "realised accuracy in production: 0.71" in text["MEASURE 2.3"]
    assert re.search(r"accuracy \d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", text["MEASURE 2.3"])
    assert "customer_id" in text["MEASURE 2.10"] and "HMAC-SHA256" in text["MEASURE 2.10"]
    assert "1 erasure request(s)" in text["MEASURE 2.10"]
    assert "per slice of" in text["MEASURE 2.11"]
    assert "all gates passed" not in text["MANAGE 1.1"]  # the promotion was forced
    assert "forced past failed gates" in text["MANAGE 1.1"]
    assert "deactivated staging" in text["MANAGE 2.4"] and "deactivation drill" in text[
        "MANAGE 2.4"]
    assert "1 loop run(s): cooldown 1" in text["MANAGE 4.1"]
    assert "1 of 1 webhook deliveries succeeded" in text["MANAGE 4.3"]
    assert "audit chain: all" in text["GOVERN 1.4"]

    assert re.search(r"robustness at ε 0\.1 .*PGD \d\.\d{3} \[", text["MEASURE 2.7"])
    assert "no API key created: servers listen on loopback only" in text["MEASURE 2.7"]
    controls = {i.id: " ".join(i.evidence) for i in report.controls}
    assert "robustness at ε 0.1" in controls["A.6.2.4"]
    assert "2 monitor window(s)" in controls["A.6.2.6"]  # the same evidence as MEASURE 2.4
    assert "train dataset" in controls["A.7.5"] and "test dataset" in controls["A.7.5"]
    assert "1 erasure request(s) audited" in controls["A.7.2"]
    assert "forced past failed gates" in controls["A.6.2.5"]
    assert "code commit" in controls["A.4.4"] and "torch" in controls["A.4.4"]
    assert "audit chain of" in controls["A.6.2.8"]

    page = report.to_html()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN, nothing remote
    assert 'id="measure-2-4"' in page


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_cli_formats_output_file_and_exit_codes(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    code, _, err = _cli(capsys, "report", "governance", "credit")
    assert code == 2 and "no model named 'credit'" in err  # an empty store

    registry = _bare(tmp_path)
    monkeypatch.setenv("DRIFTLOOP_HOME", registry.settings.home)
    code, out, _ = _cli(capsys, "report", "governance", "credit", "--json")
    body = json.loads(out)
    assert code == 0 and body["counts"]["gap"] >= 10
    assert body["iso_42001"]["framework"] == "ISO/IEC 42001:2023 Annex A"
    assert {c["id"] for c in body["iso_42001"]["controls"]} == {c.id for c in CONTROLS}
    code, _, err = _cli(capsys, "report", "governance", "credit", "--format", "html",
                        "--output", "gov.html")
    assert code == 0 and "gap(s)" in err
    assert (tmp_path / "gov.html").read_text().startswith("<!doctype html>")
    code, _, err = _cli(capsys, "report", "governance", "credit", "--fail-on-gap")
    assert code == 1 and "MEASURE 2.4" in err
    code, _, err = _cli(capsys, "report", "governance", "credit", "--version", "7")
    assert code == 2 and "no version 7" in err
