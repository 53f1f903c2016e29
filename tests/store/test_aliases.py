"""Store.remove_alias: the compare-and-write of move_alias, for taking an alias away."""

from __future__ import annotations

import pytest

from driftloop.store import AliasMoved, Store
from driftloop.store.audit import AuditLog


@pytest.fixture
def store():
    with Store.open("sqlite://") as store:
        yield store


def _versions(store: Store, n: int) -> list[int]:
    return [store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1).id
            for _ in range(n)]


def test_remove_alias_deletes_the_holder_and_links_the_audit_entry(store: Store) -> None:
    (v1,) = _versions(store, 1)
    store.move_alias("m", "production", v1, expected_version_id=None, action="promote",
                     actor="ci")
    log = AuditLog(store)
    move = store.remove_alias(
        "m", "production", expected_version_id=v1, actor="ops", reason="incident",
        audit=lambda s, m: log.append_in(s, m.actor, m.action, f"m:v{m.to_version}"))
    assert store.alias_holder("m", "production") is None
    assert (move.action, move.from_version_id, move.to_version_id) == ("deactivate", v1, v1)
    assert move.audit_seq == log.entries()[-1].seq
    assert store.alias_moves("m", "production")[-1] == move


def test_a_stale_removal_writes_nothing(store: Store) -> None:
    v1, v2 = _versions(store, 2)
    store.move_alias("m", "production", v1, expected_version_id=None, action="promote",
                     actor="ci")
    store.move_alias("m", "production", v2, expected_version_id=v1, action="promote",
                     actor="ci")
    with pytest.raises(AliasMoved) as raised:
        store.remove_alias("m", "production", expected_version_id=v1, actor="ops",
                           audit=lambda s, m: pytest.fail("no audit for a stale removal"))
    assert raised.value.holder_id == v2
    assert store.alias_holder("m", "production").version_id == v2
    assert [m.action for m in store.alias_moves("m")] == ["promote", "promote"]


def test_a_failing_audit_hook_rolls_the_removal_back(store: Store) -> None:
    (v1,) = _versions(store, 1)
    store.move_alias("m", "production", v1, expected_version_id=None, action="promote",
                     actor="ci")

    def failing(session, move):
        raise RuntimeError("audit down")

    with pytest.raises(RuntimeError):
        store.remove_alias("m", "production", expected_version_id=v1, actor="ops",
                           audit=failing)
    assert store.alias_holder("m", "production").version_id == v1
    assert len(store.alias_moves("m")) == 1
