"""Two nodes on loopback: two torchrun agents joined in one c10d rendezvous, real gloo ranks.

Node 0 is ``driftloop train … --nnodes 2 --node-rank 0``, node 1 is ``driftloop worker``, each
a separate process tree with its own DRIFTLOOP_HOME (its own run folder), sharing only the
store (an SQLite file) and the artifact store, as two machines would. The commands are the
ones docs/scaling-out.md shows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_breast_cancer

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.train.faults import ENV
from driftloop.train.nodes import job_run_id

pytestmark = pytest.mark.slow

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
if len(CORES) < 2:
    pytest.skip("the two loopback nodes need 2 cores (one each)", allow_module_level=True)
CPUS = {0: {CORES[0]}, 1: {CORES[1]}}
COMMON = ["--target", "target", "--epochs", "2", "--batch-size", "16", "--seed", "11",
          "--name", "cancer", "--checkpoint-every", "3"]
TIMEOUT_S = 150


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("nodes")
    data = root / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(data, index=False)
    return {"root": root, "data": data, "store": f"sqlite:///{root / 'shared' / 'dl.db'}",
            "artifacts": str(root / "shared" / "artifacts")}


@pytest.fixture(scope="module")
def baseline(shared):
    """One node with two workers on two cores, the same seed: what the two-node runs must
    equal bitwise. Each "node" below gets one core of its own, so every rank on either side
    runs one thread: CPU kernels may sum in another order with another thread count."""
    proc = _start(shared, "one-node", [
        "train", str(shared["data"]), *COMMON, "--workers", "2", "--json",
    ], cpus=CPUS[0] | CPUS[1])
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def _env(shared: dict, node: int | str, faults: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(DRIFTLOOP_HOME=str(shared["root"] / f"node{node}"),
               DRIFTLOOP_STORE_URL=shared["store"], DRIFTLOOP_ARTIFACTS_URL=shared["artifacts"],
               DRIFTLOOP_TRAIN__PATIENCE="100",
               # the test split's intervals do not touch the weights: few resamples suffice
               DRIFTLOOP_EVALUATE__RESAMPLES="20")
    if faults is not None:
        env[ENV] = json.dumps(faults)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(shared: dict, node: int | str, args: list[str], faults: dict | None = None,
           cpus: set[int] | None = None):
    """``driftloop ARGS`` as node ``node``: its own home, on its own cores (a "machine")."""
    cpus = CPUS[node] if cpus is None else cpus
    return subprocess.Popen(
        [sys.executable, "-m", "driftloop", *args], env=_env(shared, node, faults),
        cwd=shared["root"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )


def _two_nodes(shared: dict, job: str, port: int, node0: list[str] | None = None,
               faults1: dict | None = None, node1: list[str] | None = None):
    """Start node 0 (train) and node 1 (worker); return both (returncode, stdout, stderr)."""
    endpoint = f"127.0.0.1:{port}"
    first = _start(shared, 0, node0 or [
        "train", str(shared["data"]), *COMMON, "--workers", "1", "--nnodes", "2",
        "--node-rank", "0", "--rdzv-endpoint", endpoint, "--job", job,
        "--join-timeout", "60", "--local-addr", "127.0.0.1", "--json",
    ])
    second = _start(shared, 1, node1 or [
        "worker", "--job", job, "--node-rank", "1", "--local-addr", "127.0.0.1",
        "--wait", "90", "--json",
    ], faults1)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=TIMEOUT_S)
        results.append((proc.returncode, out, err))
    return results


def _weights(run_dir: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run_dir, "outputs", "weights.safetensors")))


def _assert_bitwise_equal(run_dir: str, baseline) -> None:
    ours, theirs = _weights(run_dir), _weights(baseline["run_dir"])
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def _finished(results):
    (rc0, out0, err0), (rc1, out1, err1) = results
    assert rc0 == 0, err0[-3000:]
    assert rc1 == 0, err1[-3000:]
    return json.loads(out0), json.loads(out1)


def test_two_nodes_with_one_worker_each_equal_one_node_with_two_bitwise(shared, baseline):
    node0, node1 = _finished(_two_nodes(shared, "cancer-a", _free_port()))
    assert node0["run_id"] == node1["run_id"] == job_run_id("cancer-a")
    assert node0["world_size"] == 2 and node0["epochs_run"] == 2
    _assert_bitwise_equal(node0["run_dir"], baseline)
    assert node0["weights_sha256"] == baseline["weights_sha256"]
    # node 0 has one core of its own and one worker: one thread per rank, as the baseline
    result = json.loads(Path(node0["run_dir"], "outputs", "result.json").read_text())
    assert result["threads_per_worker"] == 1
    assert [h["train_loss"] for h in node0["history"]] == [
        h["train_loss"] for h in baseline["history"]]
    # node 1 fetched the job into its own folder, kept its own checkpoints, wrote no outputs
    assert Path(node1["run_dir"]) != Path(node0["run_dir"])
    assert str(shared["root"] / "node1") in node1["run_dir"]
    assert sorted(node1["fetched"]) == sorted(
        ["spec.json"] + [f"data/{s}_{a}.npy" for s in ("train", "val") for a in ("x", "xcat", "y")])
    node1_checkpoints = Path(node1["run_dir"], "checkpoints", "node-1")
    assert [p.name for p in sorted(node1_checkpoints.iterdir())] == [
        "step-00000024", "step-00000026"]
    assert not Path(node1["run_dir"], "outputs", "weights.safetensors").exists()
    # node 0 recorded one run and one version in the shared store
    settings = Settings.load(overrides={"home": str(shared["root"] / "node0"),
                                        "store_url": shared["store"],
                                        "artifacts_url": shared["artifacts"]},
                             environ={}, cwd=shared["root"])
    with Registry.open(settings) as registry:
        run = registry.store.get_run(node0["run_id"])
        assert run.status == "succeeded" and run.world_size == 2
        assert run.params["job"]["nnodes"] == 2
        assert registry.get("cancer").run_id == run.id


def test_a_killed_worker_on_node_1_is_restarted_and_resumes_exactly(shared, baseline):
    # SIGKILL rank 1 (node 1's only worker) after optimiser step 20; the newest checkpoint on
    # both nodes is step 18, so both agents restart their workers and redo steps 19-20
    port = _free_port()
    node0_args = [
        "train", str(shared["data"]), *COMMON, "--workers", "1", "--nnodes", "2",
        "--node-rank", "0", "--rdzv-endpoint", f"127.0.0.1:{port}", "--job", "cancer-b",
        "--join-timeout", "60", "--local-addr", "127.0.0.1", "--max-restarts", "1", "--json",
    ]
    node0, node1 = _finished(_two_nodes(shared, "cancer-b", port, node0=node0_args,
                                        faults1={"kill": {"rank": 1, "step": 20}}))
    log = Path(node1["log"]).read_text()
    assert "Signals.SIGKILL" in log or "exitcode: -9" in log  # the kill really happened
    _assert_bitwise_equal(node0["run_dir"], baseline)
    assert [h["val_loss"] for h in node0["history"]] == [
        h["val_loss"] for h in baseline["history"]]


def test_a_stopped_two_node_job_resumes_from_the_newest_step_complete_on_both(shared, baseline):
    port = _free_port()
    results = _two_nodes(shared, "cancer-c", port, faults1={"kill": {"rank": 1, "step": 16}})
    (rc0, _, err0), (rc1, _, err1) = results
    assert rc0 == 1 and "training failed" in err0, err0[-2000:]
    assert rc1 == 1 and "node 0 reports why" in err1, err1[-2000:]
    run_id = job_run_id("cancer-c")
    node0_ckpt = shared["root"] / "node0" / "runs" / run_id / "checkpoints"
    node1_ckpt = shared["root"] / "node1" / "runs" / run_id / "checkpoints" / "node-1"
    assert [p.name for p in sorted(node1_ckpt.glob("step-*"))] == [
        "step-00000013", "step-00000015"]
    # tear node 1's newest: the job must resume from step 13 (an epoch end), the newest step
    # complete on both nodes
    torn = node1_ckpt / "step-00000015" / "optimizer.safetensors"
    torn.write_bytes(torn.read_bytes()[:100])
    assert (node0_ckpt / "step-00000015" / "manifest.json").is_file()

    port = _free_port()
    endpoint = f"127.0.0.1:{port}"
    node0, node1 = _finished(_two_nodes(
        shared, "cancer-c", port,
        node0=["train", "--resume", run_id, "--nnodes", "2", "--node-rank", "0",
               "--rdzv-endpoint", endpoint, "--job", "cancer-c", "--join-timeout", "60",
               "--local-addr", "127.0.0.1", "--json"],
        node1=["worker", "--job", "cancer-c", "--node-rank", "1", "--rdzv-endpoint", endpoint,
               "--local-addr", "127.0.0.1", "--wait", "90", "--json"],
    ))
    assert node0["run_id"] == run_id and node1["fetched"] == []  # node 1 kept its folder
    _assert_bitwise_equal(node0["run_dir"], baseline)
