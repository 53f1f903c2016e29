"""The command line as a user meets it: exit codes, messages, JSON output, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    return tmp_path


def _table(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows).round(1),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    frame["label"] = np.where(frame["age"] > 40, "yes", "no")
    return frame


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "make,args,expected",
    [
        (None, ["missing.csv", "--target", "label"], ["missing.csv", "not found"]),
        ("ok", ["data.csv", "--target", "nope"], ["'nope' not found", "age, city, label"]),
        ("all_missing_target", ["data.csv", "--target", "label"], ["label", "missing"]),
        ("typo", ["data.csv", "--target", "label"], ["age", "row 7", "'4o'"]),
        ("ok", ["data.csv", "--target", "label", "--batch-size", "200"],
         ["2 × 200 = 400", "--batch-size"]),
        ("tiny", ["data.csv", "--target", "label"], ["split"]),
        ("ok", ["data.csv", "--target", "label", "--model", "resnet"],
         ["model 'resnet' not found", "Available names"]),
        ("ok", ["data.csv", "--target", "label", "--workers", "0"], ["workers"]),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(workdir, capsys, make, args, expected):
    frame = _table()
    if make == "all_missing_target":
        frame["label"] = np.nan
    elif make == "typo":
        frame["age"] = frame["age"].astype(object)
        frame.loc[7, "age"] = "4o"
    elif make == "tiny":
        frame = frame.head(2)
    if make:
        frame.to_csv(workdir / "data.csv", index=False)
    code, out, err = _run(capsys, "train", *args)
    assert code == 2, err
    assert "Traceback" not in err + out
    text = " ".join(err.split())
    for word in expected:
        assert word in text
    assert not (workdir / ".driftloop" / "runs").exists() or not any(
        (workdir / ".driftloop" / "runs").iterdir()
    )


def test_unknown_flag_is_a_usage_error(workdir, capsys):
    code, _, err = _run(capsys, "train", "x.csv", "--no-such-flag")
    assert code == 2 and "no-such-flag" in err


def test_data_check_json_and_fail_on(workdir, capsys):
    frame = _table()
    frame.loc[:60, "age"] = np.nan  # 30% missing: a warning
    frame.to_csv(workdir / "data.csv", index=False)
    code, out, _ = _run(capsys, "data", "check", "data.csv", "--target", "label", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == 200 and report["task"] == "binary"
    assert report["columns"] == {"age": "numeric", "city": "categorical"}
    assert any(f["code"] == "missing_values" and f["severity"] == "warning"
               for f in report["findings"])
    code, _, err = _run(capsys, "data", "check", "data.csv", "--target", "label",
                        "--fail-on", "warning")
    assert code == 1 and "warning" in err


def test_models_show_unknown_version_exits_2(workdir, capsys):
    code, _, err = _run(capsys, "models", "show", "credit:x")
    assert code == 2 and "NAME:VERSION" in " ".join(err.split())


@pytest.mark.slow
def test_demo_twice_keeps_the_store_and_adds_a_version(workdir):
    """`make demo` run twice: the second run finds the store of the first and adds to it."""
    cmd = [sys.executable, "-m", "driftloop", "demo", "--rows", "1500", "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    first = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["training"]["version"], b["training"]["version"]) == (1, 2)
    assert a["training"]["metrics"]["accuracy"] > 0.8
    assert a["check"]["passed"] is True
    listing = subprocess.run([sys.executable, "-m", "driftloop", "models", "list", "--json"],
                             cwd=workdir, capture_output=True, text=True, env=env, timeout=120)
    versions = json.loads(listing.stdout)
    assert [(v["model_name"], v["version"]) for v in versions] == [("credit", 1), ("credit", 2)]
    # same data, seed and world size: the second run reproduces the first bit for bit
    assert a["training"]["weights_sha256"] == b["training"]["weights_sha256"]
