"""`driftloop train --json` says where its wall time went: phases that sum to the whole call."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.timing import Phases, phase

pytestmark = pytest.mark.slow

TOP = ["start", "prepare", "data_check", "run_folder", "workers", "evaluation", "registration"]
PARTS = ["data_check.leakage_aucs", "data_check.label_errors", "workers.epochs",
         "workers.startup_and_exit", "evaluation.calibration", "evaluation.metric_intervals",
         "evaluation.slices", "evaluation.robustness"]


def _table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows).round(1),
                          "income": rng.normal(50, 15, rows).round(2),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    noisy = frame["age"] + rng.normal(0, 5, rows)
    frame["label"] = np.where(noisy > 40, "yes", "no")
    return frame


def test_train_json_reports_phases_that_sum_to_the_call(workdir, capsys):
    _table().to_csv(workdir / "data.csv", index=False)
    started = time.perf_counter()
    code = main(["train", "data.csv", "--target", "label", "--workers", "1", "--epochs", "2",
                 "--batch-size", "32", "--json"])
    wall = time.perf_counter() - started
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    phases = result["phases"]
    for name in [*TOP, *PARTS, "other", "total"]:
        assert name in phases and phases[name] >= 0.0, (name, phases)
    top = sum(phases[name] for name in TOP) + phases["other"]
    assert top == pytest.approx(phases["total"], abs=0.01)
    # "start" is the process's age when the command began recording (here pytest's, and the
    # CLI's imports within the call), so the total covers the call and the rest is inside it
    assert phases["total"] >= wall
    assert phases["total"] - phases["start"] <= wall
    # a part lies inside its parent
    assert phases["data_check.leakage_aucs"] + phases["data_check.label_errors"] <= (
        phases["data_check"] + 1e-3)
    assert phases["workers.epochs"] + phases["workers.startup_and_exit"] == pytest.approx(
        phases["workers"], abs=0.01)
    assert phases["evaluation.slices"] <= phases["evaluation"] + 1e-3
    # the same figures are kept in the run folder
    stored = json.loads((Path(result["run_dir"]) / "phases.json").read_text(encoding="utf-8"))
    assert stored == phases


def test_phases_outside_a_recorder_record_nothing_and_nested_recorders_stay_apart():
    outer, inner = Phases(), Phases()
    with phase("nobody"):
        pass
    with outer.active():
        with phase("a"):
            with inner.active(), phase("b"):
                pass
        with phase("a"):
            pass
    assert set(outer.seconds) == {"a"} and set(inner.seconds) == {"b"}
    figures = outer.to_json()
    assert figures["total"] >= figures["a"] and figures["other"] >= 0.0
