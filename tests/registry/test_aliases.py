"""Aliases: promote, holder, history, rollback, forced promotion, atomic moves."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from driftloop.errors import NotFoundError, UsageError
from driftloop.registry import GateRefused
from driftloop.store import AliasMoved, Store
from driftloop.store.audit import AuditLog
from driftloop.store.tables import AuditEntry


def test_promote_points_the_alias_and_keeps_the_history(registry, factory):
    v1, v2 = factory.version(accuracy=0.9), factory.version(accuracy=0.92)
    first = registry.promote("credit", 1, to="production", reason="first", actor="ci:deploy")
    registry.promote("credit", 2, to="staging", reason="try it")
    second = registry.promote("credit", 2, to="production", reason="better")
    assert registry.holder("credit", "production") == v2
    assert [(a.alias, a.version) for a in registry.aliases("credit")] == [
        ("production", 2), ("staging", 2)]
    moves = registry.moves("credit", "production")
    assert [(m.from_version, m.to_version, m.action) for m in moves] == [
        (None, 1, "promote"), (1, 2, "promote")]
    assert moves[0].actor == "ci:deploy" and moves[0].reason == "first"
    assert moves[1].gates["passed"] is True and moves[1].gates["holder_version"] == 1
    assert first.move.audit_seq < second.move.audit_seq
    entry = next(e for e in registry.audit.entries(action="promote")
                 if e.seq == second.move.audit_seq)
    assert entry.subject == "credit:v2" and entry.details["from_version"] == 1
    assert entry.details["gates"]["passed"] and len(entry.details["gates"]["evidence_sha256"]) == 64
    assert registry.audit.verify().ok
    assert v1.id != v2.id


def test_promoting_the_holder_again_moves_nothing(registry, factory):
    factory.version()
    registry.promote("credit", 1, to="production", reason="first")
    again = registry.promote("credit", 1, to="production", reason="again")
    assert again.move is None and again.gates.passed
    assert len(registry.moves("credit")) == 1


def test_rollback_restores_the_previous_holder_and_goes_further_back(registry, factory):
    for accuracy in (0.9, 0.91, 0.92):
        factory.version(accuracy=accuracy)
    for version in (1, 2, 3):
        registry.promote("credit", version, to="production", reason=f"v{version}")
    back = registry.rollback("credit", "production", reason="latency regression")
    assert (back.from_version, back.to_version, back.action) == (3, 2, "rollback")
    assert registry.holder("credit", "production").version == 2
    assert registry.rollback("credit", "production").to_version == 1
    with pytest.raises(UsageError, match="only one holder"):
        registry.rollback("credit", "production")
    rollbacks = registry.audit.entries(action="rollback")
    assert [(e.details["from_version"], e.details["to_version"]) for e in rollbacks] == [
        (3, 2), (2, 1)]
    assert rollbacks[0].details["reason"] == "latency regression"


def test_rollback_of_an_unknown_alias_or_model_is_a_usage_error(registry, factory):
    factory.version()
    with pytest.raises(UsageError, match="no alias 'production'"):
        registry.rollback("credit", "production")
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.rollback("nope", "production")


def test_forced_promotion_is_audited_with_the_failed_gates(registry, factory):
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    factory.version(accuracy=0.8, check="fail")
    with pytest.raises(UsageError, match="--force needs --reason"):
        registry.promote("credit", 2, to="production", force=True)
    with pytest.raises(GateRefused):
        registry.promote("credit", 2, to="production", reason="hotfix")
    forced = registry.promote("credit", 2, to="production", force=True,
                              reason="hotfix for incident 42", actor="oncall:sre")
    assert forced.forced and forced.move.forced
    assert registry.holder("credit", "production").version == 2
    (override,) = registry.audit.entries(action="gate_override")
    assert (override.actor, override.subject) == ("oncall:sre", "credit:v2")
    assert override.details["reason"] == "hotfix for incident 42"
    failed = {g["name"]: g for g in override.details["failed"]}
    assert set(failed) == {"data_check", "holder"}
    # the lower bound of the paired interval of candidate - holder is far below 0
    assert failed["holder"]["bound"] == "> 0" and failed["holder"]["measured"] < -0.1
    promote = registry.audit.entries(action="promote")[-1]
    assert promote.details["forced"] is True and promote.seq == override.seq + 1
    assert registry.audit.verify().ok


def test_force_on_passing_gates_is_not_an_override(registry, factory):
    factory.version()
    promotion = registry.promote("credit", 1, to="production", force=True, reason="ship")
    assert not promotion.forced and registry.audit.entries(action="gate_override") == []


@pytest.mark.parametrize("alias", ["Production", "prod env", "", "1st", "x" * 65])
def test_bad_alias_names_are_refused(registry, factory, alias):
    factory.version()
    with pytest.raises(UsageError, match="alias"):
        registry.promote("credit", 1, to=alias, reason="x")


def test_a_stale_move_is_refused_and_nothing_is_written(registry, factory):
    v1, v2 = factory.version(), factory.version()
    store = registry.store
    store.move_alias("credit", "production", v1.id, expected_version_id=None,
                     action="promote", actor="ci")
    entries = registry.audit.entries()
    with pytest.raises(AliasMoved) as moved:
        store.move_alias("credit", "production", v2.id, expected_version_id=None,
                         action="promote", actor="ci",
                         audit=lambda s, m: registry.audit.append_in(s, "ci", "promote", "x"))
    assert moved.value.holder_id == v1.id
    assert store.alias_holder("credit", "production").version == 1
    assert len(store.alias_moves("credit")) == 1 and registry.audit.entries() == entries


def test_promote_decides_again_when_the_alias_moved_meanwhile(registry, factory, monkeypatch):
    for accuracy in (0.9, 0.95, 0.96):
        factory.version(accuracy=accuracy)
    registry.promote("credit", 1, to="production", reason="first")
    real = registry.store.move_alias
    calls = []

    def racing(*args, **kwargs):
        if not calls:  # another process promotes v2 between our gates and our move
            calls.append("raced")
            real("credit", "production", registry.get("credit", 2).id,
                 expected_version_id=registry.get("credit", 1).id, action="promote",
                 actor="other")
        return real(*args, **kwargs)

    monkeypatch.setattr(registry.store, "move_alias", racing)
    result = registry.promote("credit", 3, to="production", reason="best")
    assert result.gates.holder_version == 2  # gated again against the new holder
    assert [m.to_version for m in registry.moves("credit", "production")] == [1, 2, 3]


# -- tampering with a real registry's audit log in the SQLite file -------------------------------


@pytest.fixture(scope="module")
def registry_log(tmp_path_factory, make_factory_for_module):
    """A closed SQLite file whose audit log holds runs, registrations, a policy change,
    promotions with gate evidence, a gate override and a rollback."""
    registry, factory = make_factory_for_module(tmp_path_factory.mktemp("tamper"),
                                                sqlite_file=True)
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    factory.version(accuracy=0.8, check="fail")
    registry.promote("credit", 2, to="production", force=True, reason="hotfix")
    registry.rollback("credit", "production", reason="revert")
    path = Path(registry.settings.home) / "driftloop.db"
    registry.store.close()
    return path


def leaves(value, path=()):
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from leaves(inner, (*path, i))
    else:
        yield path, value


def replaced(value, path, new):
    if not path:
        return new
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_editing_any_field_or_evidence_leaf_of_a_registry_entry_is_found(registry_log, data):
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.db"
        shutil.copyfile(registry_log, copy)
        with Store(f"sqlite:///{copy}") as store:
            entries = AuditLog(store).entries()
            entry = data.draw(st.sampled_from(entries), label="entry")
            field = data.draw(st.sampled_from(["actor", "action", "subject", "details"]),
                              label="field")
            if field == "details":
                path, old = data.draw(st.sampled_from(list(leaves(entry.details))), label="leaf")
                new = data.draw(st.one_of(st.integers(), st.text(max_size=8), st.booleans(),
                                          st.none(), st.floats(allow_nan=False,
                                                               allow_infinity=False)),
                                label="new leaf")
                assume(new != old or type(new) is not type(old))
                value = replaced(entry.details, path, new)
            else:
                value = data.draw(st.text(min_size=1, max_size=12), label="new text")
                assume(value != getattr(entry, field))
            with store.engine.begin() as conn:
                conn.execute(update(AuditEntry).where(AuditEntry.seq == entry.seq)
                             .values({field: value}))
            report = AuditLog(store).verify()
    assert (report.ok, report.first_bad_seq) == (False, entry.seq)


def test_the_untouched_registry_log_verifies(registry_log):
    with Store(f"sqlite:///{registry_log}") as store:
        log = AuditLog(store)
        report = log.verify(log.anchor())
        actions = {e.action for e in log.entries()}
    assert report.ok
    assert {"run_started", "run_finished", "dataset_recorded", "register", "policy_change",
            "promote", "gate_override", "rollback"} <= actions
