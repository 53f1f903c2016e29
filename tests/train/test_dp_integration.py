"""DP-SGD with real gloo ranks: the ε spent, its record, exact resume, and what is refused.

Two workers train on load_breast_cancer (≈400 training rows) for 3 epochs; the kill is a real
SIGKILL of a worker (driftloop.train.faults), handled by torch.distributed.run's elastic agent.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_breast_cancer

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import TrainingError
from driftloop.registry import Registry
from driftloop.registry.dp import dp_record
from driftloop.train.faults import ENV
from driftloop.train.launcher import train

pytestmark = pytest.mark.slow

COMMON = dict(target="target", workers=2, epochs=3, batch_size=16, seed=11, name="cancer",
              checkpoint_every=3, progress=False)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("dp")
    return Settings.load(overrides={"home": str(root), "train": {"patience": 100}},
                         environ={}, cwd=root)


@pytest.fixture(scope="module")
def private(cancer, home):
    """The uninterrupted DP run (ε = 3) every interrupted one must reproduce."""
    return train(cancer, settings=home, dp_epsilon=3.0, **COMMON)


def _weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(Path(result.run_dir, "outputs", "weights.safetensors")))


def _assert_same_run(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert a.weights_sha256 == b.weights_sha256
    assert a.differential_privacy == b.differential_privacy
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_epsilon_spent_is_within_the_target_and_recorded_on_run_version_and_card(
    private, home
):
    dp = private.differential_privacy
    assert dp is not None and dp["accountant"] == "prv"
    assert 0 < dp["epsilon"] <= dp["target_epsilon"] == 3.0
    assert dp["noise_multiplier"] > 0 and dp["max_grad_norm"] == 1.0
    assert dp["steps"] == dp["planned_steps"] == 3 * 13  # ceil(ceil(399 / 2) / 16) per epoch
    assert dp["sample_rate"] == pytest.approx(32 / 399)
    assert dp["delta"] == 1e-5  # min(1e-5, 1 / (10 × 399))
    # ε grows epoch by epoch and ends at what the record says
    spent = [h["epsilon"] for h in private.history]
    assert spent == sorted(spent) and spent[-1] == dp["epsilon"]

    registry = Registry.open(home)
    version = registry.get("cancer", private.version)
    record = dp_record(version)
    assert record is not None and record.epsilon == dp["epsilon"] and record.within_target
    plan = registry.store.get_run(private.run_id).params["differential_privacy"]
    assert plan["noise_multiplier"] == dp["noise_multiplier"] and plan["target_epsilon"] == 3.0
    card = registry.card("cancer", private.version).to_markdown()
    assert "Differential privacy" in card and f"ε = {dp['epsilon']:.3g}" in card
    assert f"σ = {dp['noise_multiplier']:.4g}" in card
    registry.close()


def test_models_show_names_the_budget(private, home, capsys, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_HOME", home.home)
    assert main(["models", "show", f"cancer:{private.version}"]) == 0
    shown = capsys.readouterr().out
    assert f"differential privacy: (ε = {private.differential_privacy['epsilon']:.3g}, δ = " \
        "1e-05)-DP (prv accountant)" in shown


def test_a_killed_worker_resumes_to_bitwise_equal_weights_and_the_same_epsilon(
    cancer, home, private, monkeypatch
):
    # SIGKILL rank 1 after optimiser step 20 (epoch 1); the newest checkpoint is step 18, so
    # steps 19-20 are redone: the same Poisson batches and the same noise must be drawn again
    monkeypatch.setenv(ENV, json.dumps({"kill": {"rank": 1, "step": 20}}))
    result = train(cancer, settings=home, dp_epsilon=3.0, max_restarts=1, **COMMON)
    log = Path(result.run_dir, "logs", "workers.log").read_text()
    assert "Signals.SIGKILL" in log or "exitcode: -9" in log
    _assert_same_run(result, private)


def test_a_stopped_run_resumed_with_resume_matches_and_refuses_other_worker_counts(
    cancer, home, private, monkeypatch
):
    monkeypatch.setenv(ENV, json.dumps({"kill": {"rank": 0, "step": 23}}))
    with pytest.raises(TrainingError):
        train(cancer, settings=home, dp_epsilon=3.0, max_restarts=0, **COMMON)
    monkeypatch.delenv(ENV)
    registry = Registry.open(home)
    failed = next(r for r in _runs(registry) if r.status == "failed")
    with pytest.raises(Exception, match="resume it with --workers 2"):
        train(settings=home, resume=failed.id, workers=1, progress=False)
    resumed = train(settings=home, resume=failed.id, progress=False)
    _assert_same_run(resumed, private)


def test_a_small_epsilon_really_changes_training(cancer, home, private):
    plain = train(cancer, settings=home, **COMMON)
    strict = train(cancer, settings=home, dp_epsilon=1.0, **COMMON)
    assert plain.differential_privacy is None
    assert strict.differential_privacy["noise_multiplier"] > (
        private.differential_privacy["noise_multiplier"]) > 0
    assert strict.differential_privacy["epsilon"] <= 1.0
    # the same seed and data: only clipping, Poisson sampling and noise differ
    assert strict.metrics["accuracy"] < plain.metrics["accuracy"]
    assert strict.history[-1]["val_loss"] > plain.history[-1]["val_loss"]


def _runs(registry):
    from sqlalchemy import select

    from driftloop.store.tables import Run

    with registry.store.session(write=False) as session:
        rows = session.execute(select(Run.id, Run.started_at)).all()
    return [registry.store.get_run(i) for i, _ in sorted(rows, key=lambda r: r[1])]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.mark.parametrize("flags,expected", [
    (["--dp-epsilon", "3", "--accumulate", "2"], ["--accumulate 2", "--batch-size"]),
    (["--dp-epsilon", "3", "--precision", "bf16"], ["--precision bf16", "fp32"]),
    (["--dp-epsilon", "0"], ["train.dp.epsilon", "greater than 0"]),
    (["--dp-epsilon", "1000"], ["train.dp.epsilon", "less than or equal to 100"]),
    (["--dp-epsilon", "3", "--dp-delta", "1"], ["train.dp.delta", "less than 1"]),
    (["--dp-epsilon", "3", "--dp-delta", "0.01"], ["--dp-delta 0.01", "1/399"]),
    (["--dp-epsilon", "3", "--dp-max-grad-norm", "-1"], ["train.dp.max_grad_norm"]),
    (["--dp-delta", "1e-6"], ["--dp-delta", "add --dp-epsilon"]),
    (["--dp-epsilon", "3", "--model", "bn_model:net"], ["layer 'body.1' (BatchNorm1d)",
                                                        "GroupNorm"]),
])
def test_what_dp_cannot_do_exits_2_with_a_clear_message(
    cancer, workdir, capsys, monkeypatch, flags, expected
):
    (workdir / "bn_model.py").write_text(textwrap.dedent("""
        import torch
        class Net(torch.nn.Module):
            def __init__(self, n):
                super().__init__()
                self.body = torch.nn.Sequential(torch.nn.Linear(n, 8), torch.nn.BatchNorm1d(8),
                                                torch.nn.ReLU(), torch.nn.Linear(8, 2))
            def forward(self, x, x_cat=None):
                return self.body(x)
        def net(inputs, n_outputs):
            return Net(inputs["n_numeric"])
    """))
    monkeypatch.syspath_prepend(str(workdir))
    cancer.to_csv(workdir / "cancer.csv", index=False)
    code, text = _cli(capsys, "train", "cancer.csv", "--target", "target", "--seed", "11",
                      "--batch-size", "16", *flags)
    assert code == 2, text
    assert "Traceback" not in text
    for word in expected:
        assert word in text
    assert not (workdir / ".driftloop" / "runs").exists() or not any(
        (workdir / ".driftloop" / "runs").iterdir())  # refused before anything was started


def test_early_stopping_records_the_smaller_epsilon_actually_spent(cancer, home):
    # a large learning rate makes the noisy validation loss rise within a few epochs
    impatient = home.updated({"train": {"patience": 1}})
    result = train(cancer, settings=impatient, dp_epsilon=3.0,
                   **{**COMMON, "epochs": 12, "checkpoint_every": 0, "lr": 0.3})
    dp = result.differential_privacy
    assert result.epochs_run < 12  # it did stop early
    assert dp["steps"] == result.epochs_run * 13 < dp["planned_steps"] == 12 * 13
    assert dp["epsilon"] < dp["target_epsilon"]
    assert dp["epsilon"] == result.history[-1]["epsilon"]
