"""Reload signals: the generation every serving replica polls, bumped by any replica's reload."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from driftloop.errors import UsageError
from driftloop.store import AuditLog, Store


def _version(store: Store) -> int:
    return store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1).id


def test_the_poll_sees_the_holder_and_the_generation_in_one_state(any_store_url: str) -> None:
    with Store.open(any_store_url) as store:
        assert store.serving_state("m", "production").generation == 0
        v1, v2 = _version(store), _version(store)
        store.move_alias("m", "production", v1, expected_version_id=None, action="promote",
                         actor="ci")
        state = store.serving_state("m", "production")
        assert (state.version_id, state.version, state.generation) == (v1, 1, 0)
        store.move_alias("m", "production", v2, expected_version_id=v1, action="promote",
                         actor="ci")
        assert store.serving_state("m", "production").version == 2
        assert store.serving_state("m", "staging").version is None


def test_signals_are_audited_in_their_transaction(any_store_url: str) -> None:
    with Store.open(any_store_url) as store:
        audit = AuditLog(store)

        def hook(session, name, generation):
            return audit.append_in(session, "api_key:ab12", "serve_reload", f"model:{name}",
                                   {"generation": generation})

        assert store.signal_reload(["m", "n"], actor="api_key:ab12", audit=hook) == {"m": 1,
                                                                                     "n": 1}
        assert store.signal_reload(["m"], actor="api_key:ab12", audit=hook) == {"m": 2}
        entries = [(e.action, e.subject, e.details["generation"]) for e in audit.entries()]
        assert entries == [("serve_reload", "model:m", 1), ("serve_reload", "model:n", 1),
                           ("serve_reload", "model:m", 2)]
        assert audit.verify().ok


def test_concurrent_signals_get_distinct_generations(any_store_url: str) -> None:
    """Two replicas reloading at once (the first signal of a model inserts its row: the loser
    of that race retries) never get the same generation."""
    with Store.open(any_store_url) as store:
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda _: store.signal_reload(["m"], actor="ops")["m"],
                                range(12)))
        assert sorted(got) == list(range(1, 13))
        assert store.serving_state("m", "production").generation == 12


def test_a_bad_actor_is_a_usage_error_and_nothing_is_signalled(any_store_url: str) -> None:
    with Store.open(any_store_url) as store:
        with pytest.raises(UsageError, match="actor must be text"):
            store.signal_reload(["m"], actor="")
        assert store.serving_state("m", "production").generation == 0
