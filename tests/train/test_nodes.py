"""Multi-node jobs without starting ranks: the flags, the messages, publishing and fetching.

The rendezvous itself is exercised by test_multinode_integration.py.
"""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pandas as pd
import pytest
import torch

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import IntegrityError, UsageError
from driftloop.store import ArtifactStore, Store
from driftloop.train.checkpoint import latest_checkpoint, node_folder, write_checkpoint
from driftloop.train.nodes import (
    fetch_run,
    job_run_id,
    publish_run,
    wait_for_endpoint,
    wait_for_job,
)
from driftloop.train.spec import TrainSpec
from driftloop.train.torchrun import (
    Rendezvous,
    agent_environment,
    rendezvous_from_flags,
    torchrun_command,
)
from driftloop.train.worker import ranks


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _taken_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener, listener.getsockname()[1]


@pytest.mark.parametrize("kwargs,expected", [
    (dict(nnodes=1, node_rank=0, endpoint="h:1", job="j"), "--nnodes must be 2 or more"),
    (dict(nnodes=2, node_rank=2, endpoint="h:1", job="j"), "between 0 and 1 (--nnodes 2), got 2"),
    (dict(nnodes=2, node_rank=0, endpoint="h", job="j"), "'h' is not HOST:PORT"),
    (dict(nnodes=2, node_rank=0, endpoint="h:70000", job="j"), "'h:70000' is not HOST:PORT"),
    (dict(nnodes=2, node_rank=0, endpoint="h:1", job="../up"), "'../up' is not a job name"),
    (dict(nnodes=2, node_rank=0, endpoint="h:1", job="a/b"), "'a/b' is not a job name"),
    (dict(nnodes=2, node_rank=0, endpoint="h:1", job="j", join_timeout=0), "--join-timeout"),
])
def test_a_bad_rendezvous_names_the_flag_and_the_value(kwargs, expected):
    with pytest.raises(UsageError) as info:
        Rendezvous(**kwargs)
    assert expected in str(info.value)


def test_node_flags_need_each_other():
    with pytest.raises(UsageError, match="needs --job NAME"):
        rendezvous_from_flags(2, 0, "h:1", None)
    with pytest.raises(UsageError, match="add --nnodes 2 or more"):
        rendezvous_from_flags(1, None, None, "j")
    nodes = rendezvous_from_flags(3, None, "[::1]:29500", "j", 30.0, "10.0.0.2")
    assert (nodes.node_rank, nodes.join_timeout, nodes.local_addr) == (0, 30.0, "10.0.0.2")


def test_node_0_hosts_the_rendezvous_and_the_others_only_connect(tmp_path):
    host = torchrun_command(tmp_path, 1, 2, Rendezvous(2, 0, "n0:29500", "j", 45))
    other = torchrun_command(tmp_path, 1, 2, Rendezvous(2, 1, "n0:29500", "j", 45, "10.0.0.2"))
    assert "--rdzv-conf=is_host=1,join_timeout=45" in host
    assert "--rdzv-conf=is_host=0,join_timeout=45" in other
    assert "--local-addr=10.0.0.2" in other and "--max-restarts=2" in other
    assert other[-2:] == ["--node-rank", "1"] and "--standalone" not in other


def test_threads_come_from_the_cores_of_the_node_that_runs_the_ranks(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert agent_environment(2, environ={"OMP_NUM_THREADS": "9"})["OMP_NUM_THREADS"] == "3"
    assert agent_environment(8, environ={})["OMP_NUM_THREADS"] == "1"


def test_ranks_are_numbered_from_the_node_rank():
    env = {"RANK": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "4"}
    assert ranks(None, env) == (2, 0, 4)  # torchrun's own numbering
    assert ranks(0, env) == (0, 0, 4)     # ... may put node 0's first rank anywhere
    with pytest.raises(ValueError, match="same number of workers"):
        ranks(2, env)


def test_a_node_leader_checkpoints_model_state_and_its_ranks_rng_into_its_own_folder(tmp_path):
    """The bug this fixes: only global rank 0 created the .tmp folder, so a rank on another
    node (another run folder) failed at its first checkpoint."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    root = node_folder(tmp_path, 1)
    # rank 1 is local rank 0 of node 1: it creates, writes and seals node 1's checkpoint
    write_checkpoint(root, 5, 1, 2, local_rank=0, model=model, optimizer=opt,
                     loop={"epoch": 0, "step": 5})
    ckpt = latest_checkpoint(root)
    assert ckpt is not None and ckpt.step == 5
    files = {p.name for p in ckpt.path.iterdir()}
    assert {"model.safetensors", "optimizer.safetensors", "state.json", "rng-rank1.json",
            "rng-rank1.safetensors", "manifest.json"} == files  # best stays with rank 0
    assert ckpt.rank_state(1) is None and ckpt.restore_rng(1)
    assert latest_checkpoint(node_folder(tmp_path, 0)) is None  # node 0's folder is apart


def _run_folder(tmp_path):
    run_dir = tmp_path / "node0" / "run"
    spec = TrainSpec(run_id="r", task="binary", input_kind="image", model="cnn",
                     model_inputs={}, n_outputs=2)
    (run_dir / "data").mkdir(parents=True)
    for i, name in enumerate(["train_x", "train_y", "val_x", "val_y"]):
        np.save(run_dir / "data" / f"{name}.npy", np.arange(4) + i)
    spec.write(run_dir)
    return run_dir, spec


def test_other_nodes_fetch_the_published_run_checking_every_hash(tmp_path):
    run_dir, spec = _run_folder(tmp_path)
    artifacts = ArtifactStore(tmp_path / "artifacts")
    job = publish_run(run_dir, spec, artifacts, Rendezvous(2, 0, "h:1", "j"), 1, 0)
    assert (job["name"], job["nnodes"], job["workers_per_node"]) == ("j", 2, 1)

    here = tmp_path / "node1" / "run"
    assert fetch_run(artifacts, job["manifest"], here)[-1] == "spec.json"  # the spec last
    assert TrainSpec.read(here) == spec
    assert np.array_equal(np.load(here / "data" / "val_y.npy"), np.arange(4) + 3)
    assert fetch_run(artifacts, job["manifest"], here) == []  # intact files are kept

    np.save(here / "data" / "val_y.npy", np.zeros(4))  # changed locally: fetched again
    assert fetch_run(artifacts, job["manifest"], here) == ["data/val_y.npy"]

    manifest = artifacts.get_json(job["manifest"])
    stored = artifacts.path_of(manifest["files"]["data/train_x.npy"])
    os.chmod(stored, 0o644)
    with open(stored, "r+b") as fh:  # corrupt the published copy
        fh.write(b"\0" * 8)
    with pytest.raises(IntegrityError, match="is corrupt"):
        fetch_run(artifacts, job["manifest"], tmp_path / "node2" / "run")


def test_a_manifest_naming_a_path_outside_the_run_folder_is_refused(tmp_path):
    artifacts = ArtifactStore(tmp_path / "artifacts")
    evil = artifacts.put_json({"run_id": "r", "files": {"../x": artifacts.put_bytes(b"x")}})
    with pytest.raises(UsageError, match="outside the run folder"):
        fetch_run(artifacts, evil, tmp_path / "run")
    assert not (tmp_path / "x").exists()


def test_an_unreachable_endpoint_is_one_clear_message(tmp_path):
    listener, port = _taken_port()
    listener.close()  # nobody listens there now
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        wait_for_endpoint(f"127.0.0.1:{port}", time.monotonic() + 1.0, "j")
    assert f"127.0.0.1:{port} of job 'j' did not answer" in str(info.value)
    assert time.monotonic() - started < 10


def test_waiting_for_a_job_names_what_is_missing(tmp_path):
    url = f"sqlite:///{tmp_path / 'dl.db'}"
    with pytest.raises(UsageError, match="no job 'j1' in the store"):
        wait_for_job(url, "j1", time.monotonic())  # the store does not even exist yet
    with Store.open(url) as store:
        store.create_run("m", {"job": {"name": "j1"}}, 2, "runs/x", {}, None,
                         run_id=job_run_id("j1"))
        store.finish_run(job_run_id("j1"), "failed", error="rank 1 died")
    with pytest.raises(UsageError, match=r"stopped and node 0 has not resumed it yet.*--resume"):
        wait_for_job(url, "j1", time.monotonic() + 0.6)
    with Store.open(url) as store:
        store.resume_run(job_run_id("j1"), 2)
    assert wait_for_job(url, "j1", time.monotonic()).id == job_run_id("j1")


def test_worker_command_bad_input_exits_2_without_a_traceback(workdir, capsys):
    code, _, err = _run(capsys, "worker", "--job", "nope", "--node-rank", "1", "--wait", "0")
    assert code == 2 and "no job 'nope'" in err and "Traceback" not in err
    code, _, err = _run(capsys, "worker", "--job", "../nope", "--node-rank", "1")
    assert code == 2 and "is not a job name" in err
    code, _, err = _run(capsys, "worker", "--job", "j", "--node-rank", "0")
    assert code == 2 and "node 0 prepares the run" in err


def test_train_node_flags_bad_input_exits_2_before_anything_is_stored(workdir, capsys):
    frame = pd.DataFrame({"a": np.arange(100.0), "label": ["x", "y"] * 50})
    frame.to_csv(workdir / "data.csv", index=False)
    base = ["train", "data.csv", "--target", "label", "--nnodes", "2"]
    code, _, err = _run(capsys, *base, "--job", "j")
    assert code == 2 and "needs --rdzv-endpoint" in err
    code, _, err = _run(capsys, *base, "--job", "j", "--rdzv-endpoint", "h:1", "--node-rank", "1")
    assert code == 2 and "driftloop worker --job j --node-rank 1" in err
    listener, port = _taken_port()
    with listener:
        code, _, err = _run(capsys, *base, "--job", "j", "--rdzv-endpoint", f"127.0.0.1:{port}")
    assert code == 2 and f"port {port} on this machine is taken" in err
    settings = Settings.load(environ={}, cwd=workdir)
    with Store.open(settings.store_url) as store:
        assert store.model_names() == []
        store.create_run("m", {}, 2, "runs/x", {}, None, run_id=job_run_id("used"))
    code, _, err = _run(capsys, *base, "--job", "used", "--rdzv-endpoint", "127.0.0.1:29511")
    assert code == 2 and "job 'used' already exists" in err and "--resume" in err
    assert "Traceback" not in err


def test_resuming_a_one_node_run_as_a_job_is_refused(workdir, capsys):
    settings = Settings.load(environ={}, cwd=workdir)
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "spec.json").write_text(json.dumps({}))
    with Store.open(settings.store_url) as store:
        run = store.create_run("m", {}, 2, str(run_dir), {}, None)
    code, _, err = _run(capsys, "train", "--resume", run.id, "--nnodes", "2", "--job", "j",
                        "--rdzv-endpoint", "127.0.0.1:29512")
    assert code == 2 and "ran on one node" in err
