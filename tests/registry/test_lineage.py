"""Lineage of a retrained version: parent chain, run, datasets, reports, moves, audit."""

from __future__ import annotations

import json

from driftloop.registry import Lineage


def test_lineage_of_a_retrained_version_reaches_its_parent_and_datasets(registry, factory):
    first = factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    second = factory.version(accuracy=0.93, parent=first)
    third = factory.version(accuracy=0.94, parent=second)
    registry.promote("credit", 3, to="production", reason="retrained twice")

    found = registry.lineage("credit", 3)
    assert isinstance(found, Lineage)
    assert found.parent == second and found.ancestors == [second, first]
    assert registry.lineage("credit", 1).children == [second]
    run = found.run
    assert run is not None and run.id == third.run_id
    assert (run.params["epochs"], run.world_size, run.git_commit) == (3, 2, "c0ffee")
    assert run.package_versions == {"torch": "2.4"}
    assert set(found.datasets) == {"source", "test"}
    assert found.datasets["source"].rows == 300 and len(found.datasets["source"].fingerprint) == 64
    assert {r.kind for r in found.reports} == {"evaluation", "data_check"}
    assert found.aliases == ["production"]
    (move,) = found.moves
    assert (move.from_version, move.to_version, move.reason) == (1, 3, "retrained twice")
    assert move.gates["passed"] and "holder" in [r["name"] for r in move.gates["results"]]
    actions = [e.action for e in found.audit]
    assert actions[:1] == ["run_started"] and {"register", "run_finished", "promote"} <= set(
        actions)
    # the parent's lineage shows it was moved away from
    assert [m.to_version for m in registry.lineage("credit", 1).moves] == [1, 3]


def test_lineage_json_is_complete_and_serialisable(registry, factory):
    factory.version()
    body = json.loads(json.dumps(registry.lineage("credit").to_json(), default=str))
    assert set(body) == {"version", "run", "epochs", "datasets", "parent", "ancestors",
                         "children", "reports", "aliases", "moves", "audit"}
    assert body["parent"] is None and body["version"]["version"] == 1
