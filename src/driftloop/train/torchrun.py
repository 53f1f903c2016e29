"""The ``torch.distributed.run`` (torchrun) command line and environment of one node's agent.

One machine: ``--standalone`` (a private rendezvous on a free port). Several nodes: every node's
agent joins one c10d rendezvous at ``HOST:PORT``; node 0's agent hosts its store
(``is_host=1``), the others only connect (``is_host=0``), so a node that cannot reach node 0
waits for it instead of quietly hosting a rendezvous of its own. Each node passes its own
``--node-rank`` to the workers, which number their ranks from it (see
:func:`driftloop.train.worker.ranks`): global rank 0 is always on node 0, whatever order the
agents join in.

Examples
--------
>>> from pathlib import Path
>>> cmd = torchrun_command(Path("/runs/r1"), workers=2)
>>> cmd[1:6]
['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2', '--max-restarts=0']
>>> nodes = Rendezvous(nnodes=2, node_rank=1, endpoint="10.0.0.5:29500", job="credit-1")
>>> cmd = torchrun_command(Path("/runs/r1"), workers=4, max_restarts=1, rendezvous=nodes)
>>> [a for a in cmd if a.startswith("--rdzv")]  # doctest: +NORMALIZE_WHITESPACE
['--rdzv-backend=c10d', '--rdzv-endpoint=10.0.0.5:29500', '--rdzv-id=credit-1',
 '--rdzv-conf=is_host=0,join_timeout=600']
>>> cmd[-2:]
['--node-rank', '1']
>>> parse_endpoint("10.0.0.5:29500")
('10.0.0.5', 29500)
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driftloop.errors import UsageError

DEFAULT_JOIN_TIMEOUT = 600.0
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Rendezvous:
    """Where and as which node this machine's agent joins a multi-node job.

    ``nnodes`` nodes with the same number of workers each; ``node_rank`` 0 prepares the run and
    records it, the others fetch it (:mod:`driftloop.train.nodes`). ``join_timeout`` is how
    long an agent waits for all nodes to join; ``local_addr`` is the address other nodes reach
    this one at (default: its fully qualified host name).
    """

    nnodes: int
    node_rank: int
    endpoint: str
    job: str
    join_timeout: float = DEFAULT_JOIN_TIMEOUT
    local_addr: str | None = None

    def __post_init__(self) -> None:
        if self.nnodes < 2:
            raise UsageError(f"--nnodes must be 2 or more for a multi-node job, got {self.nnodes}.")
        if not 0 <= self.node_rank < self.nnodes:
            raise UsageError(
                f"--node-rank must be between 0 and {self.nnodes - 1} (--nnodes {self.nnodes}), "
                f"got {self.node_rank}."
            )
        if self.join_timeout <= 0:
            raise UsageError(f"--join-timeout must be positive seconds, got {self.join_timeout}.")
        parse_endpoint(self.endpoint)
        check_job_name(self.job)


def rendezvous_from_flags(
    nnodes: int | None, node_rank: int | None, endpoint: str | None, job: str | None,
    join_timeout: float | None = None, local_addr: str | None = None,
) -> Rendezvous | None:
    """The :class:`Rendezvous` that ``driftloop train``'s node flags ask for (None: one node).

    Examples
    --------
    >>> rendezvous_from_flags(None, None, None, None) is None
    True
    >>> rendezvous_from_flags(2, 0, "node0:29500", "j1").nnodes
    2
    >>> rendezvous_from_flags(2, 0, None, "j1")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --nnodes 2 needs --rdzv-endpoint HOST:PORT (where node 0 hosts the rendezvous).
    >>> rendezvous_from_flags(None, None, "node0:29500", None)
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --rdzv-endpoint, --job, --node-rank, --join-timeout and --local-addr are for multi-node jobs: add --nnodes 2 or more.
    """  # noqa: E501
    if nnodes is None or nnodes == 1:
        if any(v is not None for v in (node_rank, endpoint, job, join_timeout, local_addr)):
            raise UsageError(
                "--rdzv-endpoint, --job, --node-rank, --join-timeout and --local-addr are for "
                "multi-node jobs: add --nnodes 2 or more."
            )
        return None
    if endpoint is None:
        raise UsageError(
            f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (where node 0 hosts the "
            "rendezvous)."
        )
    if job is None:
        raise UsageError(
            f"--nnodes {nnodes} needs --job NAME (the other nodes join it by that name)."
        )
    return Rendezvous(
        nnodes=nnodes, node_rank=0 if node_rank is None else node_rank, endpoint=endpoint,
        job=job, join_timeout=DEFAULT_JOIN_TIMEOUT if join_timeout is None else join_timeout,
        local_addr=local_addr,
    )


def check_job_name(job: str) -> str:
    """``job`` when it is a safe job name (it names the rendezvous and the run, never a path).

    Examples
    --------
    >>> check_job_name("credit-2026.1")
    'credit-2026.1'
    >>> check_job_name("../etc")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --job '../etc' is not a job name: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.
    """  # noqa: E501
    if not JOB_NAME.fullmatch(job):
        raise UsageError(
            f"--job '{job}' is not a job name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return job


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6-address]:PORT`` for IPv6) into host and port.

    Examples
    --------
    >>> parse_endpoint("[::1]:29500")
    ('::1', 29500)
    >>> parse_endpoint("node0")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --rdzv-endpoint 'node0' is not HOST:PORT (e.g. node0:29500).
    """
    host, sep, port = endpoint.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--rdzv-endpoint '{endpoint}' is not HOST:PORT (e.g. node0:29500)."
        )
    return host, int(port)


def torchrun_command(
    run_dir: Path, workers: int, max_restarts: int = 0, rendezvous: Rendezvous | None = None
) -> list[str]:
    """The command line that starts this node's agent with ``workers`` ranks."""
    if rendezvous is None:
        launch = ["--standalone"]
        worker_args: list[str] = []
    else:
        # torchrun reads whole seconds
        join_timeout = max(1, math.ceil(rendezvous.join_timeout))
        conf = f"is_host={int(rendezvous.node_rank == 0)},join_timeout={join_timeout}"
        launch = [
            f"--nnodes={rendezvous.nnodes}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rendezvous.endpoint}", f"--rdzv-id={rendezvous.job}",
            f"--rdzv-conf={conf}",
        ]
        if rendezvous.local_addr:
            launch.append(f"--local-addr={rendezvous.local_addr}")
        worker_args = ["--node-rank", str(rendezvous.node_rank)]
    return [
        sys.executable, "-m", "torch.distributed.run", *launch,
        f"--nproc-per-node={workers}", f"--max-restarts={max_restarts}",
        "-m", "driftloop.train.worker", "--run-dir", str(run_dir), *worker_args,
    ]


def agent_environment(
    workers: int, rendezvous: Rendezvous | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of this node's agent: threads per worker from *this* node's cores.

    Examples
    --------
    >>> env = agent_environment(2, environ={})
    >>> int(env["OMP_NUM_THREADS"]) == max(1, cores() // 2)
    True
    >>> nodes = Rendezvous(nnodes=2, node_rank=0, endpoint="h:1", job="j")
    >>> agent_environment(1, nodes, environ={})["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"]
    '1'
    """
    env = dict(os.environ if environ is None else environ)
    # torchrun would otherwise force 1 thread per rank (and print a warning about it); the
    # cores are counted here, on the node that runs the ranks, not on the one that prepared them
    env["OMP_NUM_THREADS"] = str(max(1, cores() // workers))
    # a user's model factory must be importable in the workers exactly as it is here
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), *sys.path] if p)
    if rendezvous is not None:
        # every node's agent counts its own restarts (a node whose rank died restarts, the
        # others follow), so the counts differ between nodes; with a fresh store per attempt
        # instead of the agent's shared one, no attempt can read another attempt's keys
        env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    return env


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


__all__ = [
    "DEFAULT_JOIN_TIMEOUT",
    "Rendezvous",
    "agent_environment",
    "check_job_name",
    "cores",
    "parse_endpoint",
    "rendezvous_from_flags",
    "torchrun_command",
]
