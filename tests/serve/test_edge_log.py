"""The edge log under two writer processes: every row kept once, files rotated in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_WRITER = """
import sys
from driftloop.serve.edge.log import EdgeLog
log = EdgeLog(sys.argv[1], model="m", version=1, key="k", max_bytes=2000, max_files=1000)
for b in range(40):
    ids = [f"w{sys.argv[2]}-b{b}-{i}" for i in range(3)]
    log.append(ids, {"x": [1.0, 2.0, 3.0]}, {"predictions": [0, 1, 0]})
"""


def test_two_processes_append_and_rotate_one_at_a_time(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(w)], env=env)
             for w in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0]
    files = sorted(tmp_path.glob("edge-*.jsonl"))
    assert len(files) > 5  # rotated many times while both wrote
    ids, seqs = [], []
    for path in files:
        lines = [json.loads(t) for t in path.read_text("utf-8").splitlines()]
        assert lines[0]["kind"] == "header" and all(r["kind"] == "row" for r in lines[1:])
        assert path.stat().st_size <= 2000 or len(lines) == 1 + 3  # one batch past the bound
        seqs.append(lines[0]["seq"])
        ids += [r["request_id"] for r in lines[1:]]
    assert seqs == list(range(1, len(files) + 1))
    assert sorted(ids) == sorted(f"w{w}-b{b}-{i}" for w in range(2) for b in range(40)
                                 for i in range(3))
