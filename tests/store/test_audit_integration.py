"""Two real processes append to one audit log at the same time; the chain stays linear."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.store import Store
from driftloop.store.audit import GENESIS_HASH, AuditLog
from process_barrier import BARRIER

WORKER = BARRIER + """
import os, sys, time
from driftloop.store.audit import AuditLog
from driftloop.store import Store


url, go, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
barrier(go + "-start", 3)
with Store.open(url) as store:
    log = AuditLog(store)
    barrier(go + "-opened", 3)
    for i in range(count):
        log.append(name, "check", "model:v1", {"i": i})
        time.sleep(0.002)  # give the other process a chance at the tail between entries
"""


@pytest.mark.slow
def test_concurrent_appends_keep_one_linear_chain(tmp_path: Path, any_store_url: str) -> None:
    """Three processes append to one chain at once, on SQLite and on PostgreSQL."""
    url = any_store_url
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(go), name, "25"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob", "carol")
    ]
    errors = [proc.communicate(timeout=180)[1] for proc in procs]
    # every process's error is shown: the one that failed first, not only a barrier timeout
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors

    with Store.open(url) as store:
        log = AuditLog(store)
        report = log.verify()
        entries = log.entries()
    assert report.ok and report.entries == 75, report.reason
    assert [e.prev_hash for e in entries] == [GENESIS_HASH] + [e.hash for e in entries[:-1]]
    for actor in ("alice", "bob", "carol"):
        assert [e.details["i"] for e in entries if e.actor == actor] == list(range(25))
