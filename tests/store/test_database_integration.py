"""Two real processes open a fresh store at once and register versions concurrently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.store import Store
from process_barrier import BARRIER

WORKER = (
    BARRIER
    + """
import json, sys
from driftloop.store import Store

url, go, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
barrier(go + "-start", 2)
versions = []
with Store.open(url) as store:  # both processes migrate the fresh database at the same time
    barrier(go + "-opened", 2)
    for i in range(count):
        v = store.add_version("churn", None, "binary", "tabular", "a" * 64, "b" * 64,
                              {"worker": name, "i": i}, 1)
        versions.append(v.version)
        time.sleep(0.002)  # give the other process a chance at the lock between versions
print(json.dumps(versions))
"""
)


def run_workers(url: str, go: Path, count: int, script: str, n: int = 2) -> list[list[int]]:
    """Run ``n`` copies of ``script``; they meet at barriers made of files next to ``go``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(go), f"w{i}", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.slow
def test_two_processes_get_distinct_consecutive_versions(tmp_path: Path,
                                                         any_store_url: str) -> None:
    url = any_store_url
    first, second = run_workers(url, tmp_path / "go", 25, WORKER)
    assert sorted(first + second) == list(range(1, 51))
    assert first == sorted(first) and second == sorted(second)
    with Store.open(url) as store:
        versions = store.list_versions("churn")
    assert [v.version for v in versions] == list(range(1, 51))
    assert {v.metrics["worker"] for v in versions} == {"w0", "w1"}
