"""`driftloop models deactivate`: the alias goes, the move is recorded and audited in one
transaction, `promote` restores it and `rollback` refuses while nothing holds it."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import NotFoundError, UsageError
from driftloop.registry import GateRefused, Registry
from driftloop.registry.aliases import deactivate
from driftloop.store import AliasMoved


def test_deactivate_removes_the_alias_and_records_who_and_why(registry, factory):
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", reason="first")
    move = deactivate(registry, "credit", "production", reason="outputs inconsistent with use",
                      actor="oncall:sre")

    assert registry.holder("credit", "production") is None
    assert registry.aliases("credit") == []
    assert (move.action, move.from_version, move.to_version) == ("deactivate", 1, 1)
    assert registry.moves("credit", "production")[-1] == move
    entry = registry.audit.entries(action="deactivate")[-1]
    assert entry.seq == move.audit_seq and entry.subject == "credit:v1"
    assert entry.actor == "oncall:sre"
    assert entry.details["reason"] == "outputs inconsistent with use"
    assert registry.audit.verify().ok


def test_deactivate_needs_a_reason_a_known_model_and_a_held_alias(registry, factory):
    factory.version()
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        deactivate(registry, "nope", "production", reason="x")
    registry.promote("credit", 1, to="production", reason="first")
    with pytest.raises(UsageError, match="--reason"):
        deactivate(registry, "credit", "production", reason="  ")
    with pytest.raises(UsageError, match="no alias 'staging' to deactivate.*production"):
        deactivate(registry, "credit", "staging", reason="x")
    deactivate(registry, "credit", "production", reason="stop")
    with pytest.raises(UsageError, match="is deactivated .*models promote credit VERSION"):
        deactivate(registry, "credit", "production", reason="again")
    assert [m.action for m in registry.moves("credit")] == ["promote", "deactivate"]


def test_promote_restores_and_rollback_then_skips_the_deactivated_holder(registry, factory):
    for accuracy in (0.9, 0.91, 0.92):
        factory.version(accuracy=accuracy)
    for version in (1, 2, 3):
        registry.promote("credit", version, to="production", reason=f"v{version}")
    deactivate(registry, "credit", "production", reason="v3 misbehaves")
    with pytest.raises(UsageError, match="is deactivated.*nothing to roll back.*promote"):
        registry.rollback("credit", "production")

    restored = registry.promote("credit", 2, to="production", reason="restore v2")
    assert restored.move is not None and restored.move.from_version is None
    assert registry.holder("credit", "production").version == 2
    # the stack of holders lost v3 at the deactivation: v2 was restored, v1 is before it
    assert registry.rollback("credit", "production").to_version == 1
    assert registry.audit.verify().ok


def test_restoring_the_deactivated_version_itself_runs_the_gates(open_registry):
    registry, factory = open_registry(card=False)  # the card gate fails without card text
    factory.version(accuracy=0.9)
    registry.promote("credit", 1, to="production", force=True, reason="bootstrap")
    deactivate(registry, "credit", "production", reason="stop")
    with pytest.raises(GateRefused, match="card"):
        registry.promote("credit", 1, to="production", reason="back")
    assert registry.holder("credit", "production") is None
    registry.promote("credit", 1, to="production", force=True, reason="accepted: known gap")
    assert registry.holder("credit", "production").version == 1


def test_a_stale_deactivation_writes_nothing(registry, factory):
    factory.version(accuracy=0.9)
    factory.version(accuracy=0.91)
    registry.promote("credit", 1, to="production", reason="first")
    held = registry.store.alias_holder("credit", "production")
    registry.promote("credit", 2, to="production", reason="moved meanwhile")
    entries = len(registry.audit.entries())
    with pytest.raises(AliasMoved):
        registry._remove_alias("credit", "production", held.version_id, "ci", "stale")
    assert registry.holder("credit", "production").version == 2
    assert len(registry.audit.entries()) == entries
    assert [m.action for m in registry.moves("credit")] == ["promote", "promote"]


@pytest.fixture
def cli_factory(tmp_path, monkeypatch, make_factory, card_text):
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump({"card": card_text}))
    return make_factory(Registry.open(Settings.load()))


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_cli_deactivate_then_promote(cli_factory, capsys):
    cli_factory.version(accuracy=0.9)
    assert _run(capsys, "models", "promote", "credit", "1", "--to", "production")[0] == 0
    code, _, err = _run(capsys, "models", "deactivate", "credit")
    assert code == 2 and "--reason" in err  # required
    code, out, _ = _run(capsys, "models", "deactivate", "credit", "--reason", "drill",
                        "--actor", "oncall", "--json")
    assert code == 0 and json.loads(out)["action"] == "deactivate"
    code, _, err = _run(capsys, "models", "rollback", "credit", "--alias", "production")
    assert code == 2 and "is deactivated" in err and "Traceback" not in err
    code, out, _ = _run(capsys, "models", "list", "--json")
    assert json.loads(out)[0]["aliases"] == []
    assert _run(capsys, "models", "promote", "credit", "1", "--to", "production")[0] == 0
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0
