"""Multi-node jobs: node 0 prepares and publishes the run, every other node fetches and joins.

Node 0 (``driftloop train DATA … --nnodes 2 --node-rank 0 --rdzv-endpoint HOST0:29500 --job
NAME``) prepares the run folder as on one machine, then :func:`publish_run` puts the files the
ranks read (``spec.json``, the training and validation arrays) into the artifact store and
returns the job record that the run's params keep under ``"job"``: the manifest's sha256, the
endpoint, the node count, workers per node and restart budget. The run id is
:func:`job_run_id` of the job name, so every node finds the run from the name alone.

Node K (``driftloop worker --job NAME --node-rank K``) :func:`join`\\ s: it waits until the
store holds the job as running (:func:`wait_for_job`; it only reads the store), fetches the
files into its own run folder checking every hash (:func:`fetch_run`; files already there
and intact are kept, so a resumed job keeps the node's checkpoints), waits until node 0's
rendezvous endpoint answers, and starts its torchrun agent (:mod:`driftloop.train.torchrun`).
Global rank 0 is on node 0; node 0's launcher records the run and the version.

Examples
--------
>>> job_run_id("credit-1")
'820b284cb5185b95b8ee76a528cc19a5'
>>> job_run_id("credit-1") == job_run_id("credit-1") != job_run_id("credit-2")
True
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from driftloop.config import Settings
from driftloop.errors import NotFoundError, TrainingError, UsageError
from driftloop.models.architectures import MODELS, factory_allowed, load_factory
from driftloop.store import ArtifactStore, RunRecord, Store
from driftloop.store.engine import safe_url
from driftloop.train.spec import DATA_DIR, LOG_DIR, SPEC_FILE, TrainSpec, file_sha256
from driftloop.train.torchrun import (
    Rendezvous,
    agent_environment,
    check_job_name,
    parse_endpoint,
    torchrun_command,
)

# the run ids of jobs: uuid5 of the job name in this namespace (uuid5 of a fixed URL)
JOB_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://driftloop.dev/jobs")
DEFAULT_WAIT = 600.0
POLL_S = 0.5


@dataclass(frozen=True)
class JoinResult:
    """What ``driftloop worker`` did: the node, the run and where its files are."""

    job: str
    run_id: str
    node_rank: int
    workers: int
    run_dir: str
    log: str
    fetched: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def job_run_id(job: str) -> str:
    """The run id of job ``job``: the same on every node, 32 hex digits like any run id."""
    return uuid.uuid5(JOB_NAMESPACE, check_job_name(job)).hex


def job_files(spec: TrainSpec) -> list[str]:
    """The run-folder files a rank reads, relative to the folder; the spec last.

    Examples
    --------
    >>> spec = TrainSpec(run_id="r", task="binary", input_kind="image", model="cnn",
    ...                  model_inputs={}, n_outputs=2)
    >>> job_files(spec)
    ['data/train_x.npy', 'data/train_y.npy', 'data/val_x.npy', 'data/val_y.npy', 'spec.json']
    """
    arrays = [f"{DATA_DIR}/{name}" for split in ("train", "val") for name in
              spec.array_files(split)]
    return [*arrays, SPEC_FILE]


def publish_run(
    run_dir: Path, spec: TrainSpec, artifacts: ArtifactStore, rendezvous: Rendezvous,
    workers: int, max_restarts: int,
) -> dict[str, Any]:
    """Put the files the ranks read into ``artifacts``; return the job record for the run's
    params (what :func:`join` reads on the other nodes)."""
    files = {name: artifacts.put_file(run_dir / name) for name in job_files(spec)}
    manifest = artifacts.put_json({"run_id": spec.run_id, "files": files})
    return {
        "name": rendezvous.job, "nnodes": rendezvous.nnodes, "workers_per_node": workers,
        "endpoint": rendezvous.endpoint, "join_timeout": rendezvous.join_timeout,
        "max_restarts": max_restarts, "manifest": manifest,
    }


def check_port_free(endpoint: str) -> None:
    """Refuse, before anything is prepared, an endpoint port that node 0 cannot host on.

    Examples
    --------
    >>> import socket
    >>> with socket.socket() as taken:
    ...     taken.bind(("", 0))
    ...     taken.listen()
    ...     check_port_free(f"127.0.0.1:{taken.getsockname()[1]}")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: node 0 hosts the rendezvous at --rdzv-endpoint 127.0.0.1:..., but port ... on this machine is taken (...); choose another port.
    """  # noqa: E501
    _, port = parse_endpoint(endpoint)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the rendezvous store will: a port only held by closed connections is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise UsageError(
                f"node 0 hosts the rendezvous at --rdzv-endpoint {endpoint}, but port {port} "
                f"on this machine is taken ({exc.strerror}); choose another port."
            ) from None


def join(
    job: str, node_rank: int, settings: Settings, *, endpoint: str | None = None,
    wait: float = DEFAULT_WAIT, local_addr: str | None = None,
) -> JoinResult:
    """Run node ``node_rank``'s workers of job ``job`` (``driftloop worker``).

    Waits up to ``wait`` seconds for node 0 to publish the job and open its rendezvous
    ``endpoint`` (default: the one node 0 recorded). Never writes to the store.
    """
    check_job_name(job)
    if node_rank < 1:
        raise UsageError(
            f"--node-rank {node_rank}: node 0 prepares the run with `driftloop train DATA … "
            f"--nnodes N --node-rank 0 --job {job}`; `driftloop worker` runs nodes 1 to N-1."
        )
    deadline = time.monotonic() + wait
    run = wait_for_job(settings.store_url, job, deadline)
    record = run.params["job"]
    rendezvous = Rendezvous(
        nnodes=int(record["nnodes"]), node_rank=node_rank, endpoint=endpoint or
        record["endpoint"], job=job, join_timeout=float(record["join_timeout"]),
        local_addr=local_addr,
    )
    run_dir = (settings.runs_dir / run.id).resolve()
    fetched = fetch_run(ArtifactStore(settings.artifacts_url), record["manifest"], run_dir)
    # the spec came through the store: this node builds its model only if its own operator
    # allows the factory (built-ins always), like a version that loads
    model = TrainSpec.read(run_dir).model
    if model not in MODELS and not factory_allowed(model, settings.security.model_factories):
        load_factory(model, settings.security.model_factories)  # raises, naming the setting
    wait_for_endpoint(rendezvous.endpoint, deadline, job)
    workers = int(record["workers_per_node"])
    log = run_agent(run_dir, workers, int(record["max_restarts"]), rendezvous)
    return JoinResult(job=job, run_id=run.id, node_rank=node_rank, workers=workers,
                      run_dir=str(run_dir), log=str(log), fetched=fetched)


def wait_for_job(store_url: str, job: str, deadline: float) -> RunRecord:
    """The running run of ``job``, read from the store once node 0 has published it.

    Raises :class:`~driftloop.errors.UsageError` when the job is not running by ``deadline``
    (a :func:`time.monotonic` time): unknown, still preparing, finished or failed.
    """
    run_id = job_run_id(job)
    with Store(store_url) as store:  # read only: no migration, no write
        while True:
            run = _find_run(store, run_id) if _has_schema(store) else None
            if run is not None and run.status == "running" and "job" in run.params:
                return run
            if time.monotonic() >= deadline:
                raise UsageError(_not_running(job, run, store_url))
            time.sleep(POLL_S)


def _has_schema(store: Store) -> bool:
    """False while node 0 has not created the store yet; refuses another schema version."""
    revision = store.schema_revision()
    if revision is not None and revision != Store.head_revision():
        raise UsageError(
            f"the store at {safe_url(store.url)} is at schema {revision}, this driftloop "
            f"expects {Store.head_revision()}: install the same driftloop version on every node."
        )
    return revision is not None


def _find_run(store: Store, run_id: str) -> RunRecord | None:
    try:
        return store.get_run(run_id)
    except NotFoundError:
        return None


def _not_running(job: str, run: RunRecord | None, store_url: str) -> str:
    if run is None:
        return (
            f"no job '{job}' in the store {safe_url(store_url)}: start node 0 first with "
            f"`driftloop train DATA … --nnodes N --node-rank 0 --job {job}` (and point every "
            "node at the same DRIFTLOOP_STORE_URL), or wait longer with --wait."
        )
    if run.status == "succeeded":
        return f"job '{job}' (run {run.id}) already succeeded; there is nothing to join."
    if run.status == "failed":
        return (
            f"job '{job}' (run {run.id}) stopped and node 0 has not resumed it yet: resume it "
            f"on node 0 with `driftloop train --resume {run.id}`, then start this node again "
            "(or give it more time with --wait)."
        )
    return f"job '{job}' (run {run.id}) was not published by node 0 in time; try --wait."


def fetch_run(artifacts: ArtifactStore, manifest_sha: str, run_dir: Path) -> list[str]:
    """Copy the job's files into ``run_dir``, each checked against its sha256; return the names
    fetched (files already there with the right hash are kept, the spec is written last)."""
    manifest = artifacts.get_json(manifest_sha)
    fetched = []
    for name, sha in manifest["files"].items():
        path = _inside(run_dir, name)
        if path.is_file() and file_sha256(path) == sha:
            continue
        data = artifacts.get_bytes(sha)  # verified against sha
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        fetched.append(name)
    return fetched


def _inside(run_dir: Path, name: str) -> Path:
    """``run_dir / name``, refusing a manifest entry that would leave the run folder."""
    path = (run_dir / name).resolve()
    if not path.is_relative_to(run_dir.resolve()):
        raise UsageError(f"the job manifest names '{name}', outside the run folder; refused.")
    return path


def wait_for_endpoint(endpoint: str, deadline: float, job: str) -> None:
    """Return once something listens at ``endpoint``; a clear error at ``deadline``."""
    host, port = parse_endpoint(endpoint)
    while True:
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise UsageError(
                    f"the rendezvous endpoint {endpoint} of job '{job}' did not answer "
                    f"({exc.strerror or exc}): check that node 0's `driftloop train` is running "
                    "and that this node can reach that host and port (firewall, --rdzv-endpoint)."
                ) from None
        time.sleep(POLL_S)


def run_agent(run_dir: Path, workers: int, max_restarts: int, rendezvous: Rendezvous) -> Path:
    """Run this node's torchrun agent to the end; return its log. Raises TrainingError."""
    (run_dir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    log_path = run_dir / LOG_DIR / f"workers-node-{rendezvous.node_rank}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.run(
            torchrun_command(run_dir, workers, max_restarts, rendezvous), stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=agent_environment(workers, rendezvous), check=False,
        )
    if proc.returncode != 0:
        raise TrainingError(
            f"node {rendezvous.node_rank}'s workers of job '{rendezvous.job}' failed (exit "
            f"{proc.returncode}); node 0 reports why the job stopped. Workers' output: {log_path}"
        )
    return log_path


__all__ = [
    "DEFAULT_WAIT",
    "JoinResult",
    "check_port_free",
    "fetch_run",
    "job_files",
    "job_run_id",
    "join",
    "publish_run",
    "wait_for_endpoint",
    "wait_for_job",
]
