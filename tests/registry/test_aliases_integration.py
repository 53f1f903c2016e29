"""Two real processes promote different versions to one alias at once, on one SQLite file.

Both decide (run the gates) against the same holder before either moves the alias, so one
of them must find the alias moved, decide again against the winner, and move it after.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from process_barrier import BARRIER

pytestmark = pytest.mark.slow

WORKER = BARRIER + """
import json, os, sys, time
from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.store import AliasMoved


home, store_url, card, go, version, rounds = sys.argv[1:7]
# non_inferior: a version as good as the holder may replace it (superior would refuse both)
settings = Settings.load(overrides={"home": home, "store_url": store_url, "card": json.loads(card),
                                    "gates": {"holder_policy": "non_inferior"}},
                         environ={}, cwd=home)
barrier(go + "-start", 2)
registry = Registry.open(settings)
real_move, conflicts, calls = registry.store.move_alias, [], []


def move_when_both_decided(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        barrier(go + "-decided", 2)  # both ran the gates against the same holder
    try:
        return real_move(*args, **kwargs)
    except AliasMoved:
        conflicts.append(1)
        raise


registry.store.move_alias = move_when_both_decided
barrier(go + "-opened", 2)
moved = 0
for i in range(int(rounds)):
    result = registry.promote("credit", int(version), to="production", reason=f"round {i}",
                              actor=f"ci:worker{version}")
    moved += result.move is not None
print(json.dumps({"moved": moved, "conflicts": len(conflicts)}))
"""


def test_concurrent_promotes_leave_exactly_one_holder(registry, factory, dl_settings,
                                                      card_text, tmp_path):
    factory.version(accuracy=0.9)
    factory.version(accuracy=0.9)  # equal evidence: each may replace the other (non_inferior)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, dl_settings.home, dl_settings.store_url,
             json.dumps(card_text), str(go),
             str(version), "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for version in (1, 2)
    ]
    moved = conflicts = 0
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        moved += json.loads(out)["moved"]
        conflicts += json.loads(out)["conflicts"]
    assert conflicts >= 1  # the race happened: the loser saw the alias moved and decided again

    with registry.store.engine.connect() as conn:
        holders = conn.execute(text(
            "SELECT version_id FROM model_aliases WHERE model_name = 'credit' "
            "AND alias = 'production'")).all()
    assert len(holders) == 1
    moves = registry.moves("credit", "production")
    assert len(moves) == moved >= 2
    assert moves[0].from_version is None
    for before, after in zip(moves, moves[1:], strict=False):
        assert after.from_version == before.to_version != after.to_version  # a chain, no fork
    assert registry.holder("credit", "production").version == moves[-1].to_version
    promotes = registry.audit.entries(action="promote")
    assert [e.seq for e in promotes] == [m.audit_seq for m in moves]
    assert registry.audit.verify().ok
