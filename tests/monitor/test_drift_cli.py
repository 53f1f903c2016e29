"""``driftloop drift``: the table, --json, --html, exit codes 0/1/2, and MODEL:VERSION."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main


def _table(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40 + shift, 10, rows).round(1),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    frame["label"] = np.where(frame["age"] + rng.normal(0, 3, rows) > 40, "yes", "no")
    return frame


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(workdir):
    _table(1000, 0).to_csv(workdir / "ref.csv", index=False)
    _table(1000, 1).to_parquet(workdir / "same.parquet")
    _table(1000, 2, shift=8.0).to_csv(workdir / "moved.csv", index=False)
    return workdir


def test_no_drift_prints_the_table_and_exits_0_even_with_fail_on_drift(files, capsys):
    code, out, err = _run(capsys, "drift", "--reference", "ref.csv", "--current", "same.parquet",
                          "--target", "label", "--fail-on-drift")
    assert code == 0, err
    text = " ".join(out.split())  # the table folds long cells at the test's 80 columns
    assert "age" in text and "city" in text and "chi2" in text and "ok" in text
    assert "no drift: 0 of 2 testable features drifted" in text and "bh-corrected" in text


def test_drift_exits_1_with_fail_on_drift_and_json_is_the_report(files, capsys):
    args = ["drift", "--reference", "ref.csv", "--current", "moved.csv", "--target", "label"]
    code, out, _ = _run(capsys, *args, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["drift_detected"] and report["share_drifted"] == 0.5
    assert [f["name"] for f in report["features"] if f["drifted"]] == ["age"]
    code, out, err = _run(capsys, *args, "--fail-on-drift")
    assert code == 1 and "DRIFT" in out and "drift detected" in err
    assert "Traceback" not in out + err


def test_html_report_is_written(files, capsys):
    code, out, _ = _run(capsys, "drift", "--reference", "ref.csv", "--current", "moved.csv",
                        "--html", "report.html")
    assert code == 0 and "HTML report written to report.html" in " ".join(out.split())
    assert (files / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    code, _, err = _run(capsys, "drift", "--reference", "ref.csv", "--current", "moved.csv",
                        "--html", "no/such/folder/report.html")
    assert code == 2 and "cannot write" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--reference", "missing.csv", "--current", "ref.csv"], "missing.csv: file not found"),
        (["--reference", "ref.csv", "--current", "gone.parquet"], "gone.parquet: file not found"),
        (["--reference", "ref.csv", "--current", "ref.csv", "--target", "lable"],
         "'lable' is in neither"),
        (["--reference", "nomodel:1", "--current", "ref.csv"], "nomodel"),
        (["--reference", "nomodel:x", "--current", "ref.csv"], "not NAME or NAME:VERSION"),
    ],
)
def test_bad_input_exits_2_with_one_message(files, capsys, args, message):
    code, out, err = _run(capsys, "drift", *args)
    assert code == 2, out + err
    assert message in " ".join(err.split()) and "Traceback" not in out + err


def _register_with_profile(frame: pd.DataFrame, name: str, *, with_profile: bool) -> None:
    """Register a quickly trained model in the working folder's store (no ranks)."""
    from driftloop.config import Settings
    from driftloop.registry import Registry
    from quick_model import register_quick

    with Registry.open(Settings.load()) as registry:
        register_quick(registry, frame, name, with_profile=with_profile)


def test_a_model_version_is_a_reference_and_its_outputs_are_compared(workdir, capsys):
    frame = _table(800, 5)
    _register_with_profile(frame, "ages", with_profile=True)
    _table(600, 6).to_csv(workdir / "today.csv", index=False)
    _table(600, 7, shift=10.0).to_csv(workdir / "later.csv", index=False)
    code, out, err = _run(capsys, "drift", "--reference", "ages:1", "--current", "today.csv",
                          "--target", "label", "--json", "--fail-on-drift")
    assert code == 0, err
    report = json.loads(out)
    assert [o["name"] for o in report["prediction"]["outputs"]] == ["proba:yes"]
    assert not report["drift_detected"]
    code, out, err = _run(capsys, "drift", "--reference", "ages:v1", "--current", "later.csv",
                          "--target", "label", "--fail-on-drift")
    assert code == 1, err
    text = " ".join(out.split())
    assert "proba" in text and "output" in text and "prediction drift" in text

    _register_with_profile(frame, "bare", with_profile=False)
    code, _, err = _run(capsys, "drift", "--reference", "bare:1", "--current", "today.csv")
    assert code == 2 and "bare:1 has no stored reference profile" in " ".join(err.split())


def test_the_installed_command_exits_1_on_drift(files):
    proc = subprocess.run(
        [sys.executable, "-m", "driftloop", "drift", "--reference", "ref.csv", "--current",
         "moved.csv", "--target", "label", "--fail-on-drift"],
        cwd=files, capture_output=True, text=True, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")},
    )
    assert proc.returncode == 1, proc.stderr
    assert "DRIFT" in proc.stdout and "Traceback" not in proc.stderr


def test_one_hugely_shifted_column_of_ten_fails_the_step_by_default(workdir, capsys):
    # one drifted feature is below the dataset share rule (0.5), yet a CI step guarding a
    # pipeline must fail on it; --fail-on dataset keeps the share rule
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=2000) for i in range(10)})
    cur = pd.DataFrame({f"x{i}": rng.normal(size=2000) for i in range(10)})
    cur["x3"] += 25.0
    ref.to_csv(workdir / "ref10.csv", index=False)
    cur.to_csv(workdir / "cur10.csv", index=False)
    args = ["drift", "--reference", "ref10.csv", "--current", "cur10.csv", "--fail-on-drift"]
    code, out, err = _run(capsys, *args)
    assert code == 1 and "drift detected in x3" in " ".join(err.split()), err
    assert "no drift: 1 of 10 testable features drifted" in " ".join(out.split())
    code, _, err = _run(capsys, *args, "--fail-on", "dataset")
    assert code == 0, err
    code, _, err = _run(capsys, *args, "--fail-on", "everything")
    assert code == 2 and "Traceback" not in err
