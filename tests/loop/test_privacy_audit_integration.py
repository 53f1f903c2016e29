"""`driftloop evaluate NAME:V DATA --privacy` against models trained and registered for real.

One overfit model (174 training digits, 62 features, 30 epochs, no weight decay) and one barely
trained model (one epoch at a tiny learning rate) are trained once for the module; each audit
trains 2 reference models with one worker.
"""

from __future__ import annotations

import json
import os
import types

import pytest
import yaml

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.train.launcher import train
from privacy_models import BARELY, OVERFIT, digits_frames, train_and_audit

CONFIG = {"train": {"patience": 100},
          "evaluate": {"privacy_reference_models": 2, "resamples": 500}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("privacy")
    (folder / "driftloop.yaml").write_text(yaml.safe_dump(
        {**CONFIG, "home": str(folder / "home")}))
    settings = Settings.load(environ={}, cwd=folder)
    overfit, overfit_report = train_and_audit(settings, folder, "overfit", **OVERFIT)
    seen, unseen = digits_frames()
    barely = train(seen, "label", name="barely", workers=1, settings=settings, progress=False,
                   **BARELY)
    seen.to_csv(folder / "seen.csv", index=False)
    unseen.to_csv(folder / "unseen.csv", index=False)
    bounded = settings.updated({"gates": {"privacy_auc_max": 0.99}})
    with Registry.open(bounded) as registry:
        unaudited = registry.gate("barely", barely.version, to="production")
    return types.SimpleNamespace(folder=folder, settings=settings, overfit=overfit,
                                 report=overfit_report, barely=barely, unaudited=unaudited)


@pytest.fixture
def in_folder(models, monkeypatch):
    monkeypatch.chdir(models.folder)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    return models


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_overfit_model_is_exposed_and_the_reference_attack_finds_more(models):
    privacy = models.report.privacy
    loss, lira = privacy["attacks"]["loss"], privacy["attacks"]["lira"]
    assert loss["members"] == loss["non_members"] == 87
    # measured: loss 0.62 [0.53, 0.72], LiRA 0.71 [0.64, 0.78]
    assert loss["auc"]["low"] > 0.5 and lira["auc"]["low"] > 0.6
    # its reference models calibrate each row's difficulty, so the reference-model attack
    # ranks members better than the loss attack (Carlini et al. 2022)
    assert lira["auc"]["value"] > loss["auc"]["value"] + 0.05
    assert lira["exposed"] >= loss["exposed"]
    assert privacy["reference_models"] == 2
    assert privacy["settings"]["reference_rows"] == privacy["settings"]["target_rows"] == 174
    assert privacy["settings"]["non_member_sources"]["test"] == 38
    assert {s["value"] for s in privacy["slices"]} <= {str(c) for c in range(10)}


def test_the_audit_is_stored_with_the_version_and_keeps_no_rows(models):
    with Registry.open(models.settings) as registry:
        record = registry.get("overfit", models.overfit.version)
        stored = registry.artifacts.get_json(models.report.artifact_sha256)
        card = registry.card("overfit", models.overfit.version).to_markdown()
    assert stored["privacy"] == models.report.privacy
    assert stored["model"] == {"name": "overfit", "version": record.version}
    text = json.dumps(stored["privacy"])
    assert "pixel" not in text and len(text) < 20_000  # counts and metrics, no feature values
    assert "Privacy audit" in card and "lira attack AUC" in card


def test_the_governance_report_shows_the_audit_under_both_frameworks(models):
    from driftloop.governance.report import governance_report

    with Registry.open(models.settings) as registry:
        report = governance_report(registry, "overfit", models.overfit.version)
    nist = {i.id: " ".join(i.evidence) for i in report.items}
    iso = {i.id: i for i in report.controls}
    assert "membership inference (lira, 87 members vs 87 non-members" in nist["MEASURE 2.10"]
    assert iso["A.5.4"].status == "evidence"
    assert "attack AUC 0." in " ".join(iso["A.5.4"].evidence)
    assert "2 reference model(s)" in " ".join(iso["A.5.4"].evidence)


def test_privacy_gate_refuses_above_the_bound_and_passes_below(models):
    high = models.report.privacy["attacks"]["loss"]["auc"]["high"]
    strongest = max(a["auc"]["high"] for a in models.report.privacy["attacks"].values())
    for bound, passed in ((round(strongest - 0.02, 3), False), (round(strongest + 0.01, 3), True)):
        settings = models.settings.updated({"gates": {"privacy_auc_max": min(bound, 1.0)}})
        with Registry.open(settings) as registry:
            report = registry.gate("overfit", models.overfit.version, to="production")
        (result,) = [r for r in report.results if r.name == "privacy"]
        assert result.passed is passed and result.measured == pytest.approx(strongest)
        assert result.measured >= high
    with Registry.open(models.settings) as registry:  # off by default
        report = registry.gate("overfit", models.overfit.version, to="production")
    (off,) = [r for r in report.results if r.name == "privacy"]
    assert off.passed and "not set" in off.detail
    (missing,) = [r for r in models.unaudited.results if r.name == "privacy"]
    assert not missing.passed
    assert f"driftloop evaluate barely:{models.barely.version} DATA --privacy" in missing.detail


def test_cli_audits_a_barely_trained_model_as_indistinguishable(in_folder, capsys):
    ref = f"barely:{in_folder.barely.version}"
    code, out, err = run(capsys, "evaluate", ref, "unseen.csv", "--privacy", "--json")
    assert code == 0, err
    body = json.loads(out)
    for attack in ("loss", "lira"):
        auc = body["privacy"]["attacks"][attack]["auc"]
        assert auc["low"] < 0.5 < auc["high"]
    code, out, _ = run(capsys, "models", "card", "barely", str(in_folder.barely.version))
    assert code == 0 and "Privacy audit" in out and "membership inference" in out


def test_bad_input_exits_2_with_a_message(in_folder, capsys):
    code, _, err = run(capsys, "evaluate", "nosuch:3", "unseen.csv", "--privacy")
    assert code == 2 and "nosuch" in err and "Traceback" not in err
    # DATA holds only rows the model trained, validated or was tested on: 38 test rows remain
    code, _, err = run(capsys, "evaluate", f"barely:{in_folder.barely.version}", "seen.csv",
                       "--privacy")
    assert code == 2 and "too few rows to audit" in err and "privacy_min_rows" in err


def test_a_dp_model_with_small_epsilon_is_not_told_apart(models):
    """The same overfitting recipe under DP-SGD with ε = 1: neither attack beats chance (both
    AUC intervals hold 0.5; measured: loss 0.56 [0.47, 0.65], LiRA 0.55 [0.46, 0.64]), and
    the governance report shows the budget beside the audit."""
    from driftloop.governance.report import governance_report

    result, report = train_and_audit(models.settings, models.folder, "private",
                                     dp_epsilon=1.0, **OVERFIT)
    assert result.differential_privacy["epsilon"] <= 1.0
    for name, attack in report.privacy["attacks"].items():
        assert attack["auc"]["low"] < 0.5 < attack["auc"]["high"], (name, attack["auc"])
    with Registry.open(models.settings) as registry:
        gov = governance_report(registry, "private", result.version)
    impact = " ".join(next(i for i in gov.controls if i.id == "A.5.4").evidence)
    assert "trained with DP-SGD (Opacus): (ε = " in impact and "membership inference" in impact
