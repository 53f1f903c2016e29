"""Registered feature views: versions by declaration hash, audited, never two for one spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.errors import NotFoundError
from driftloop.store import AuditLog, Store
from process_barrier import BARRIER


def test_a_changed_declaration_gets_the_next_version_and_one_audit_entry(store_url):
    with Store.open(store_url) as store:
        first, new = store.register_feature_view("stats", {"f": ["a"]}, "1" * 64, actor="ann")
        again, new_again = store.register_feature_view("stats", {"f": ["a"]}, "1" * 64,
                                                       actor="bob")
        second, _ = store.register_feature_view("stats", {"f": ["a", "b"]}, "2" * 64,
                                                actor="bob")
        other, _ = store.register_feature_view("clicks", {"f": ["c"]}, "3" * 64, actor="ann")
        assert (new, new_again, again) == (True, False, first)
        assert (second.version, other.version, second.spec) == (2, 1, {"f": ["a", "b"]})
        assert [(v.name, v.version) for v in store.feature_views()] == [("clicks", 1),
                                                                          ("stats", 2)]
        assert store.feature_view("stats").spec_hash == "2" * 64
        assert store.feature_view("stats", 1).actor == "ann"
        entries = AuditLog(store).entries(action="feature_view_registered")
        assert [(e.actor, e.subject, e.details["version"]) for e in entries] == [
            ("ann", "feature_view:stats", 1), ("bob", "feature_view:stats", 2),
            ("ann", "feature_view:clicks", 1)]
        with pytest.raises(NotFoundError, match="no feature view 'nope'.*clicks, stats"):
            store.feature_view("nope")


REGISTER_WORKER = BARRIER + """
import sys
from driftloop.store import Store

url, go = sys.argv[1:3]
with Store.open(url) as store:
    barrier(go, 3)
    record, created = store.register_feature_view("stats", {"f": 1}, "a" * 64, actor="ci")
    print(record.version, created)
"""


@pytest.mark.slow
def test_processes_registering_one_spec_at_once_get_one_version(tmp_path: Path,
                                                                any_store_url: str) -> None:
    with Store.open(any_store_url):
        pass  # migrated once, so the race is on the view, not on the schema
    procs = [subprocess.Popen([sys.executable, "-c", REGISTER_WORKER, any_store_url,
                               str(tmp_path / "go")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    lines = sorted(out.strip() for out, _ in outs)
    assert lines == ["1 False", "1 False", "1 True"]
    with Store.open(any_store_url) as store:
        assert [v.version for v in store.feature_view_versions("stats")] == [1]
        assert len(AuditLog(store).entries(action="feature_view_registered")) == 1
