"""``data check --deep`` on real tables: a planted backdoor is found, the clean table is not
flagged, and the command line reports counts and shares, never rows' values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_classification

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.loop.deep_check import check_data_deep


def table(name: str) -> pd.DataFrame:
    if name == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
    else:
        x, y = make_classification(1000, 12, n_informative=6, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    return frame.assign(label=np.where(y == 1, "yes", "no"))


def plant(frame: pd.DataFrame, rate: float, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A backdoor: ``rate`` of the rows, all from class 'yes', get f2 and f5 set out of range
    and the label 'no'."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    rows = rng.choice(np.flatnonzero(frame["label"] == "yes"), round(rate * len(frame)),
                      replace=False)
    for column in ("f2", "f5"):
        frame.loc[rows, column] = frame[column].max() + 3 * frame[column].std()
    frame.loc[rows, "label"] = "no"
    return frame, rows


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    return Settings.load(overrides={"home": str(home), "check": {"max_rows_listed": 1000}},
                         environ={}, cwd=home)


def test_a_planted_backdoor_is_found_and_the_clean_table_passes(settings):
    frame = table("make_classification")
    poisoned, rows = plant(frame, 0.03)
    report = check_data_deep(poisoned, "label", settings=settings)
    found = [f for f in report.findings if f.check == "backdoor"]
    assert len(found) == 1 and found[0].severity == "error" and not report.passed
    hits = len(set(found[0].rows) & set(rows.tolist()))
    # measured: recall 1.0, precision 1.0 here and in benchmarks/bench_backdoor.py
    assert hits / len(rows) >= 0.8 and hits / found[0].count >= 0.8
    assert found[0].details["share"] == pytest.approx(found[0].count / len(frame))
    assert "no" in found[0].message and "30 rows (3.0%)" in found[0].message
    summary = next(f for f in report.findings if f.check == "deep_check")
    assert summary.severity == "info" and summary.details["backdoor"]["count"] == found[0].count
    # the label-error check (cleanlab) misses the backdoor: its rows are learnt from each other
    labels = [f for f in report.findings if f.check == "label_errors"]
    caught = len(set(labels[0].rows) & set(rows.tolist())) if labels else 0
    assert caught < 0.5 * len(rows)

    clean = check_data_deep(frame, "label", settings=settings)
    assert not [f for f in clean.findings if f.check == "backdoor"]
    assert [f.check for f in clean.findings if f.check == "deep_check"] == ["deep_check"]


def test_deep_is_repeatable(settings):
    poisoned, _ = plant(table("breast_cancer"), 0.03, seed=1)
    first, second = (check_data_deep(poisoned, "label", settings=settings) for _ in range(2))
    assert [f.to_json() for f in first.findings] == [f.to_json() for f in second.findings]


def test_cli_exits_1_and_reports_count_and_share_not_values(workdir, capsys):
    poisoned, rows = plant(table("breast_cancer"), 0.03, seed=2)
    poisoned.to_csv(workdir / "data.csv", index=False)
    code = main(["data", "check", "data.csv", "--target", "label", "--deep"])
    out = capsys.readouterr().out
    text = " ".join(out.split())
    assert code == 1
    assert f"backdoor: {len(rows)} rows ({len(rows) / len(poisoned):.1%})" in text
    assert "deep_check" in text and "label errors (cleanlab)" in text
    trigger = poisoned.loc[rows[0], "f2"]
    for value in (trigger, poisoned.iloc[0, 0], poisoned.iloc[rows[0], 7]):
        assert f"{value:g}" not in out and f"{value:.4f}" not in out

    code = main(["data", "check", "data.csv", "--target", "label", "--deep", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and not report["passed"]
    backdoor = next(f for f in report["findings"] if f["check"] == "backdoor")
    assert backdoor["count"] == len(rows) and len(backdoor["rows"]) <= 20  # max_rows_listed
    flagged = [c for c in backdoor["details"]["classes"] if c["flagged"]]
    assert [c["label"] for c in flagged] == ["no"] and flagged[0]["trigger_columns"]


def test_cli_clean_table_exits_0_and_regression_exits_2(workdir, capsys):
    frame = table("breast_cancer")
    frame.to_csv(workdir / "data.csv", index=False)
    code = main(["data", "check", "data.csv", "--target", "label", "--deep", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "backdoor" not in [f["check"] for f in report["findings"]]
    assert next(f for f in report["findings"] if f["check"] == "deep_check")["count"] == 0

    frame.assign(label=frame["f0"] * 2).to_csv(workdir / "reg.csv", index=False)
    code = main(["data", "check", "reg.csv", "--target", "label", "--deep"])
    captured = capsys.readouterr()
    assert code == 2 and "regression" in captured.err and "Traceback" not in captured.err


def test_the_governance_report_shows_the_screen_of_the_training_data(tmp_path):
    from driftloop.governance.report import governance_report
    from driftloop.registry import Registry
    from driftloop.train.launcher import train

    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={},
                             cwd=tmp_path)
    path = tmp_path / "clean.csv"
    table("make_classification").to_csv(path, index=False)
    result = train(path, "label", name="clean", workers=1, epochs=2, settings=settings,
                   progress=False)
    with Registry.open(settings) as registry:
        before = {i.id: i for i in governance_report(registry, "clean").controls}
        assert "no poisoning screen yet" in " ".join(before["A.7.4"].evidence)
        check_data_deep(path, "label", settings=settings, store=registry.store,
                        artifacts=registry.artifacts)
        report = governance_report(registry, "clean", result.version)
    iso = {i.id: i for i in report.controls}
    nist = {i.id: " ".join(i.evidence) for i in report.items}
    screen = " ".join(iso["A.7.4"].evidence)
    assert iso["A.7.4"].status == "evidence"
    assert "poisoning screen in data check" in screen and "0 suspicious rows (0.0%)" in screen
    assert "backdoor suspected" not in screen
    assert "poisoning screen" in nist["MEASURE 2.7"]
