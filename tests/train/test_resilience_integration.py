"""Failures on purpose, with real gloo ranks: a killed rank, a stalled rank, a drifted rank.

Faults are injected through DRIFTLOOP_TEST_FAULTS (see driftloop.train.faults); the kill is a
real SIGKILL of a worker process, handled by torch.distributed.run's elastic agent.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_breast_cancer

from driftloop.config import Settings
from driftloop.errors import TrainingError
from driftloop.registry import Registry
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
    root = tmp_path_factory.mktemp("resilience")
    return Settings.load(overrides={"home": str(root), "train": {"patience": 100}},
                         environ={}, cwd=root)


@pytest.fixture(scope="module")
def baseline(cancer, home):
    """The uninterrupted run every failure must reproduce."""
    return train(cancer, settings=home, **COMMON)


def _weights(result) -> dict[str, torch.Tensor]:
    return load_file(str(Path(result.run_dir, "outputs", "weights.safetensors")))


def _assert_bitwise_equal(a, b) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert a.weights_sha256 == b.weights_sha256


def test_killed_rank_resumes_to_bitwise_equal_weights_and_a_clean_ledger(
    cancer, home, baseline, monkeypatch
):
    # kill rank 1 with SIGKILL after optimiser step 20 (epoch 1, mid-epoch): the newest
    # checkpoint is step 18, so steps 19-20 are redone after the restart
    faults = {"kill": {"rank": 1, "step": 20}, "ledger": True}
    monkeypatch.setenv(ENV, json.dumps(faults))
    result = train(cancer, settings=home, max_restarts=1, **COMMON)
    log = Path(result.run_dir, "logs", "workers.log").read_text()
    assert "Signals.SIGKILL" in log or "exitcode: -9" in log  # the kill really happened
    _assert_bitwise_equal(result, baseline)
    assert [h["train_loss"] for h in result.history] == [
        h["train_loss"] for h in baseline.history
    ]
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in baseline.history]

    train_rows = int(np.load(Path(result.run_dir, "data", "train_y.npy")).shape[0])
    seen: dict[int, list[int]] = {}
    for rank in (0, 1):
        for line in Path(result.run_dir, "ledger", f"rank{rank}.jsonl").read_text().splitlines():
            entry = json.loads(line)
            seen.setdefault(entry["epoch"], []).extend(entry["ids"])
    assert sorted(seen) == [0, 1, 2]
    for ids in seen.values():  # every sample exactly once per epoch: none twice, none skipped
        assert sorted(ids) == list(range(train_rows))


def test_stopped_run_resumes_from_the_previous_checkpoint_when_the_newest_is_torn(
    cancer, home, baseline, monkeypatch
):
    monkeypatch.setenv(ENV, json.dumps({"kill": {"rank": 0, "step": 16}}))
    with pytest.raises(TrainingError):
        train(cancer, settings=home, max_restarts=0, **COMMON)
    registry = Registry.open(home)
    failed = [r for r in _runs(registry) if r.status == "failed"][-1]
    checkpoints = sorted(Path(failed.run_dir, "checkpoints").glob("step-*"))
    assert [p.name for p in checkpoints] == ["step-00000013", "step-00000015"]
    newest = checkpoints[-1] / "optimizer.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # torn write
    monkeypatch.delenv(ENV)

    resumed = train(settings=home, resume=failed.id, progress=False)
    assert resumed.run_id == failed.id
    _assert_bitwise_equal(resumed, baseline)
    assert registry.store.get_run(failed.id).status == "succeeded"


def test_resume_with_a_different_world_size_completes(cancer, home, monkeypatch):
    monkeypatch.setenv(ENV, json.dumps({"kill": {"rank": 1, "step": 10}}))
    with pytest.raises(TrainingError):
        train(cancer, settings=home, **COMMON)
    failed = [r for r in _runs(Registry.open(home)) if r.status == "failed"][-1]
    monkeypatch.delenv(ENV)
    resumed = train(settings=home, resume=failed.id, workers=1, progress=False)
    assert resumed.world_size == 1 and resumed.epochs_run == 3
    assert resumed.metrics["accuracy"] > 0.85
    with pytest.raises(Exception, match="already succeeded"):
        train(settings=home, resume=failed.id, progress=False)


def test_a_stalled_rank_fails_the_run_within_the_timeout_naming_it(cancer, home,
                                                                    monkeypatch):
    monkeypatch.setenv(ENV, json.dumps({"stall": {"rank": 1, "step": 4, "seconds": 120}}))
    started = time.monotonic()
    with pytest.raises(TrainingError) as info:
        train(cancer, settings=home, collective_timeout=4, **COMMON)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "rank(s) 1 did not arrive" in message
    assert "optimiser step 4" in message and "timed out after 4 s" in message
    assert elapsed < 60, f"took {elapsed:.0f} s; the stalled rank must not hang the job"


def test_a_drifted_rank_is_named_by_the_consistency_check(cancer, home, monkeypatch):
    monkeypatch.setenv(ENV, json.dumps({"perturb": {"rank": 1, "step": 5}}))
    with pytest.raises(TrainingError, match=r"rank\(s\) 1 diverged from rank 0 at optimiser "
                                            r"step 6"):
        train(cancer, settings=home, consistency_every=2, **COMMON)


def test_accumulating_k_micro_batches_equals_one_k_times_larger_batch(cancer, tmp_path,
                                                                       monkeypatch):
    # no dropout, so the two runs draw no random numbers that could differ
    (tmp_path / "nodrop.py").write_text(textwrap.dedent("""
        import torch
        class Net(torch.nn.Module):
            def __init__(self, n):
                super().__init__()
                self.body = torch.nn.Sequential(torch.nn.Linear(n, 32), torch.nn.ReLU(),
                                                torch.nn.Linear(32, 2))
            def forward(self, x, x_cat=None):
                return self.body(x)
        def net(inputs, n_outputs):
            return Net(inputs["n_numeric"])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "h")}, environ={}, cwd=tmp_path)
    args = dict(target="target", workers=2, epochs=1, seed=4, model="nodrop:net",
                settings=settings, progress=False)
    micro = train(cancer, batch_size=16, accumulate=2, **args)
    whole = train(cancer, batch_size=32, accumulate=1, **args)
    a, b = _weights(micro), _weights(whole)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def _runs(registry):
    from sqlalchemy import select

    from driftloop.store.tables import Run

    with registry.store.session(write=False) as session:
        rows = session.execute(select(Run.id, Run.started_at)).all()
    return [registry.store.get_run(i) for i, _ in sorted(rows, key=lambda r: r[1])]


def test_checkpoints_leave_no_temporary_folders(baseline):
    folders = [p.name for p in Path(baseline.run_dir, "checkpoints").iterdir()]
    assert folders and not any(name.endswith(".tmp") for name in folders)
    assert len(folders) == 2
    shutil.rmtree(Path(baseline.run_dir, "checkpoints"))  # nothing else depends on them
