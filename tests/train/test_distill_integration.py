"""`driftloop distill`: real 2-rank gloo students of a registered teacher, their lineage, card,
the student gate, exact resume, regression, and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from sklearn.datasets import load_breast_cancer, load_diabetes

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import NotFoundError, TrainingError, UsageError
from driftloop.registry import Registry
from driftloop.train.distill import distill
from driftloop.train.faults import ENV
from driftloop.train.launcher import train
from driftloop.train.spec import DATA_DIR, TrainSpec
from pg_server import store_overrides

pytestmark = pytest.mark.slow

FIT = dict(workers=2, epochs=4, batch_size=32, progress=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    """A teacher (the default MLP) trained from a CSV, a student (mlp-small) and a tiny student
    (one feature) distilled from it, in one store."""
    root = tmp_path_factory.mktemp("distill")
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    csv = root / "cancer.csv"
    frame.to_csv(csv, index=False)
    overrides = {"home": str(root / "home"), "train": {"patience": 100, "seed": 5},
                 "gates": {"min_holdout_rows": 50}, **store_overrides(request)}
    settings = Settings.load(overrides=overrides, environ={}, cwd=root)
    teacher = train(csv, "target", name="cancer", settings=settings, **FIT)
    student = distill("cancer:1", csv, temperature=3.0, alpha=0.7, settings=settings, **FIT)
    tiny = distill("cancer", csv, student="distill_models:one_feature", name="cancer-tiny",
                   settings=settings, **FIT)
    return {"settings": settings, "csv": csv, "teacher": teacher, "student": student,
            "tiny": tiny, "root": root}


def _gated(settings: Settings, name: str, **policy) -> dict:
    with Registry.open(settings.updated({"gates": policy})) as registry:
        report = registry.gate(name, 1, to="production")
    return {r.name: r for r in report.results}


def test_student_is_a_version_with_its_teacher_as_parent_and_a_distillation_record(world):
    teacher, student = world["teacher"], world["student"]
    with Registry.open(world["settings"]) as registry:
        t, s = registry.get("cancer", 1), registry.get("cancer-student", 1)
        assert s.parent_id == t.id and s.run_id == student.run_id
        assert [v.id for v in registry.lineage("cancer-student", 1).ancestors] == [t.id]
        assert [v.id for v in registry.lineage("cancer", 1).children] == [
            s.id, registry.get("cancer-tiny", 1).id]
        record = s.metrics["distillation"]
        assert record == student.distillation
        assert (record["teacher"], record["teacher_id"]) == ("cancer:1", t.id)
        assert (record["temperature"], record["alpha"]) == (3.0, 0.7)
        assert (record["student_model"], record["teacher_model"]) == ("mlp-small", "mlp")
        counted = {v.id: sum(x.numel() for x in load_safetensors(
            registry.artifacts.get_bytes(v.weights_sha256)).values()) for v in (t, s)}
        assert (record["teacher_params"], record["student_params"]) == (counted[t.id],
                                                                         counted[s.id])
        assert (record["teacher_bytes"], record["student_bytes"]) == (t.size_bytes, s.size_bytes)
        assert record["param_ratio"] == pytest.approx(counted[t.id] / counted[s.id], abs=1e-4)
        assert record["param_ratio"] > 1
        # the same rows in every split, and a normal version: test report, calibration
        assert student.fingerprints == teacher.fingerprints
        assert s.metrics["accuracy"] == student.metrics["accuracy"] and "ece" in s.metrics
        run = registry.store.get_run(student.run_id)
        assert run.params["distillation"]["teacher"] == "cancer:1"
        audit = [e for e in registry.audit.entries(subject="cancer-student:v1")
                 if e.action == "register"]
        assert len(audit) == 1 and audit[0].actor == "driftloop distill"


def test_the_ranks_read_the_teachers_own_outputs_on_the_same_rows(world):
    run_dir = Path(world["student"].run_dir)
    spec = TrainSpec.read(run_dir)
    assert spec.distill["temperature"] == 3.0 and spec.model == "mlp-small"
    with Registry.open(world["settings"]) as registry:
        teacher = registry.load("cancer", 1)
    for split in ("train", "val", "test"):
        *inputs, y = (np.load(run_dir / DATA_DIR / f) for f in spec.array_files(split))
        stored = np.load(run_dir / DATA_DIR / spec.teacher_file(split))
        assert stored.dtype == np.float32 and stored.shape == (len(y), 2)
        with torch.inference_mode():
            logits = teacher.module(*(torch.from_numpy(a) for a in inputs)).numpy()
        np.testing.assert_allclose(stored, logits, rtol=1e-5, atol=1e-5)


def test_card_says_which_teacher_and_settings(world):
    with Registry.open(world["settings"]) as registry:
        card = registry.card("cancer-student", 1).to_markdown()
        teacher_card = registry.card("cancer", 1).to_markdown()
    assert "Distilled from cancer:1 (T=3, alpha=0.7)" in card
    assert "Distilled from" not in teacher_card


def test_student_gate_is_off_unless_configured_and_for_versions_not_distilled(world):
    settings = world["settings"]
    assert _gated(settings, "cancer-student")["student"].detail == (
        "off: gates.student_max_drop is not set")
    found = _gated(settings, "cancer", student_max_drop=0.05)["student"]
    assert found.passed and "not distilled" in found.detail


def test_student_gate_passes_or_fails_as_the_paired_interval_and_the_sizes_say(world):
    settings = world["settings"]
    lax = _gated(settings, "cancer-tiny", student_max_drop=1.0, student_min_shrink=1.0)
    metric, size = lax["student:metric"], lax["student:size"]
    assert metric.passed and size.passed
    details = metric.details
    with Registry.open(settings) as registry:
        tiny, teacher = registry.get("cancer-tiny", 1), registry.get("cancer", 1)
    # the paired comparison is on the test rows both were scored on at registration
    assert details["rows"] == world["teacher"].evaluation["dataset"]["rows"]
    assert details["candidate"] == pytest.approx(tiny.metrics["accuracy"])
    assert details["holder"] == pytest.approx(teacher.metrics["accuracy"])
    high = details["drop_high"]
    assert high > 0  # one feature cannot match a teacher reading thirty
    assert details["drop"] == pytest.approx(teacher.metrics["accuracy"] - tiny.metrics["accuracy"])
    assert _gated(settings, "cancer-tiny", student_max_drop=high)["student:metric"].passed
    strict = _gated(settings, "cancer-tiny", student_max_drop=high * 0.999)["student:metric"]
    assert not strict.passed and "may lose more than allowed" in strict.detail
    ratio = tiny.metrics["distillation"]["param_ratio"]
    assert size.measured == ratio
    assert _gated(settings, "cancer-tiny", student_min_shrink=ratio)["student:size"].passed
    assert not _gated(settings, "cancer-tiny",
                      student_min_shrink=ratio * 1.01)["student:size"].passed


def test_a_killed_distillation_resumes_to_the_same_student(world, monkeypatch):
    settings = world["settings"].updated({"train": {"checkpoint_every": 5}})
    common = dict(temperature=2.0, alpha=0.5, settings=settings, **FIT)
    baseline = distill("cancer:1", world["csv"], name="cancer-base", **common)
    monkeypatch.setenv(ENV, json.dumps({"kill": {"rank": 1, "step": 12}}))
    with pytest.raises(TrainingError) as info:
        distill("cancer:1", world["csv"], name="cancer-resumed", **common)
    monkeypatch.delenv(ENV)
    run_id = Path(str(info.value).rsplit("Workers' output: ", 1)[1]).parent.parent.name
    with Registry.open(settings) as registry:
        assert registry.store.get_run(run_id).status == "failed"
    resumed = train(settings=settings, resume=run_id, progress=False)
    assert resumed.run_id == run_id
    a = load_file(str(Path(baseline.run_dir, "outputs", "weights.safetensors")))
    b = load_file(str(Path(resumed.run_dir, "outputs", "weights.safetensors")))
    assert all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()
    with Registry.open(settings) as registry:
        version = registry.get("cancer-resumed", 1)
        assert version.parent_id == registry.get("cancer", 1).id
    assert resumed.distillation["teacher"] == "cancer:1"


def test_a_regression_student_learns_from_teacher_and_target(tmp_path, dl_settings):
    frame = load_diabetes(as_frame=True).frame
    teacher = train(frame, "target", name="diabetes", settings=dl_settings, **FIT)
    student = distill("diabetes", frame, alpha=0.5, settings=dl_settings, **FIT)
    assert student.task == "regression" and "rmse" in student.metrics
    assert student.distillation["teacher"] == f"diabetes:{teacher.version}"
    spec = TrainSpec.read(Path(student.run_dir))
    rows = len(np.load(Path(student.run_dir, DATA_DIR, "train_y.npy")))
    assert np.load(Path(student.run_dir, DATA_DIR, spec.teacher_file("train"))).shape == (rows,)
    # far better than predicting the mean: the standardised target's RMSE would be ~its std
    assert student.metrics["r2"] > 0.1


def test_python_api_refuses_bad_input_before_training(world):
    settings = world["settings"]
    with pytest.raises(NotFoundError, match="nope"):
        distill("nope", world["csv"], settings=settings, **FIT)
    with pytest.raises(UsageError, match="--alpha must be between 0"):
        distill("cancer:1", world["csv"], alpha=1.5, settings=settings, **FIT)
    with pytest.raises(UsageError, match="--temperature must be a number above 0"):
        distill("cancer:1", world["csv"], temperature=0.0, settings=settings, **FIT)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


@pytest.fixture
def cli_env(world, monkeypatch, tmp_path):
    """The CLI run in a fresh folder against the world's store."""
    import os

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    settings = world["settings"]
    monkeypatch.setenv("DRIFTLOOP_HOME", settings.home)
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", settings.store_url)
    monkeypatch.setenv("DRIFTLOOP_GATES__MIN_HOLDOUT_ROWS", "50")
    return world


def test_cli_distills_with_json_and_the_gate_exits_by_the_student_gate(cli_env, capsys,
                                                                       monkeypatch):
    code, out, err = _cli(capsys, "distill", "cancer:1", str(cli_env["csv"]), "--workers", "2",
                          "--epochs", "3", "--batch-size", "32", "--name", "cancer-cli",
                          "--temperature", "4", "--alpha", "0.9", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["model"], body["version"]) == ("cancer-cli", 1)
    assert body["distillation"]["teacher"] == "cancer:1"
    assert (body["distillation"]["temperature"], body["distillation"]["alpha"]) == (4.0, 0.9)
    ratio = body["distillation"]["param_ratio"]
    monkeypatch.setenv("DRIFTLOOP_GATES__STUDENT_MIN_SHRINK", str(ratio * 2))
    code, out, _ = _cli(capsys, "models", "show", "cancer-cli:1")
    assert code == 0 and "distillation: Distilled from cancer:1 (T=4, alpha=0.9)" in out
    code, out, _ = _cli(capsys, "models", "gate", "cancer-cli", "1", "--to", "production",
                        "--json")
    assert code == 1
    results = {r["name"]: r for r in json.loads(out)["results"]}
    assert results["student:size"]["passed"] is False
    assert results["student:size"]["measured"] == ratio


@pytest.mark.parametrize("argv,message", [
    (["nope:1"], "nope"),
    (["cancer:1", "--alpha", "2"], "--alpha must be between 0"),
    (["cancer:1", "--temperature", "-1"], "--temperature must be a number above 0"),
    (["cancer:1", "--student", "resnet"], "model 'resnet' not found"),
])
def test_cli_bad_input_exits_2_with_one_message(cli_env, capsys, argv, message):
    code, out, err = _cli(capsys, "distill", argv[0], str(cli_env["csv"]), *argv[1:])
    assert code == 2 and message in err and "Traceback" not in err, err


def test_cli_refuses_data_that_is_not_the_teachers(cli_env, capsys, tmp_path):
    frame = pd.read_csv(cli_env["csv"])
    other = tmp_path / "other.csv"
    frame.iloc[10:].to_csv(other, index=False)  # other rows: other splits
    code, _, err = _cli(capsys, "distill", "cancer:1", str(other), "--workers", "2")
    assert code == 2 and "is not the data teacher cancer:1 was trained on" in err, err
    numeric = tmp_path / "numeric.csv"
    frame.assign(target=np.linspace(0, 1, len(frame))).to_csv(numeric, index=False)
    code, _, err = _cli(capsys, "distill", "cancer:1", str(numeric), "--workers", "2")
    # the teacher is a classifier: a continuous target is refused, naming the column
    assert code == 2 and "task 'binary' needs a few classes" in err and "'target'" in err, err
    assert "Traceback" not in err
