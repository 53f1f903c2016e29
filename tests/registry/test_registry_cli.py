"""`driftloop models promote|rollback|gate|lineage|card|list|show`: output and exit codes."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.registry import Registry


@pytest.fixture
def cli_factory(tmp_path, monkeypatch, make_factory, card_text):
    """A factory registering into the store of a working folder whose driftloop.yaml holds
    the card text; the CLI run there finds both."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump({"card": card_text}))
    return make_factory(Registry.open(Settings.load()))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_promote_refused_exits_1_listing_values_and_bounds(cli_factory, capsys):
    cli_factory.version(accuracy=0.9)
    assert run(capsys, "models", "promote", "credit", "1", "--to", "production")[0] == 0
    cli_factory.version(accuracy=0.8)
    code, out, err = run(capsys, "models", "promote", "credit", "2", "--to", "production",
                         "--json")
    assert code == 1 and "Traceback" not in err
    assert "holder: measured -0.1" in err and "bound > 0" in err and "interval [" in err
    body = json.loads(out)
    assert body["moved"] is False and body["gates"]["failed"] == ["holder"]
    code, out, _ = run(capsys, "models", "list", "--json")
    assert [(v["version"], v["aliases"]) for v in json.loads(out)] == [
        (1, ["production"]), (2, [])]


def test_force_needs_a_reason_and_then_overrides(cli_factory, capsys):
    cli_factory.version(accuracy=0.9)
    run(capsys, "models", "promote", "credit", "1", "--to", "production")
    cli_factory.version(accuracy=0.8)
    code, _, err = run(capsys, "models", "promote", "credit", "2", "--to", "production",
                       "--force")
    assert code == 2 and "--reason" in err
    code, out, _ = run(capsys, "models", "promote", "credit", "v2", "--to", "production",
                       "--force", "--reason", "incident 42", "--actor", "oncall:sre")
    assert code == 0 and "forced" in out and "v1 → v2" in out
    code, out, _ = run(capsys, "audit", "show", "--action", "gate_override", "--json")
    (entry,) = json.loads(out)
    assert entry["actor"] == "oncall:sre" and entry["details"]["failed"][0]["name"] == "holder"


def test_unknown_model_and_bad_version_exit_2(cli_factory, capsys):
    code, _, err = run(capsys, "models", "promote", "nope", "1", "--to", "production")
    assert code == 2 and "no model named 'nope'" in err
    code, _, err = run(capsys, "models", "gate", "credit", "one", "--to", "production")
    assert code == 2 and "VERSION 'one'" in err
    code, _, err = run(capsys, "models", "lineage", "nope")
    assert code == 2


def test_gate_json_for_ci_exits_1_when_a_gate_fails(cli_factory, capsys):
    cli_factory.version(check="fail")
    code, out, err = run(capsys, "models", "gate", "credit", "1", "--to", "production", "--json")
    assert code == 1 and "data_check" in err
    body = json.loads(out)
    assert body["failed"] == ["data_check"] and body["alias"] == "production"
    cli_factory.version()
    assert run(capsys, "models", "gate", "credit", "2", "--to", "production")[0] == 0


def test_rollback_show_lineage_and_card(cli_factory, capsys):
    parent = cli_factory.version(accuracy=0.9)
    cli_factory.version(accuracy=0.95, parent=parent, bad_slice=None)
    for version in ("1", "2"):
        run(capsys, "models", "promote", "credit", version, "--to", "production")
    code, out, _ = run(capsys, "models", "rollback", "credit", "--alias", "production",
                       "--reason", "latency")
    assert code == 0 and "v2 → v1" in out
    code, out, _ = run(capsys, "models", "show", "credit:1")
    assert code == 0 and "aliases: production" in out and "worst slice: city" in out
    code, out, _ = run(capsys, "models", "lineage", "credit", "2")
    assert code == 0 and "retrained from v1" in out and "rollback production" in out
    code, out, _ = run(capsys, "models", "lineage", "credit", "2", "--json")
    assert json.loads(out)["parent"]["version"] == 1
    code, out, _ = run(capsys, "models", "card", "credit", "2", "--format", "html", "--set",
                       "owners=<team>")
    assert code == 0 and out.count("<section") == 9 and "&lt;team&gt;" in out
    code, out, _ = run(capsys, "models", "card", "credit", "2")
    assert code == 0 and "## Quantitative analyses" in out and "| city | Lima |" in out
    code, _, err = run(capsys, "models", "rollback", "credit", "--alias", "staging")
    assert code == 2 and "no alias 'staging'" in err


def test_gate_json_with_data_shows_the_paired_difference_interval_and_policy(
    cli_factory, mlp, capsys, tmp_path
):
    registry = cli_factory.registry
    mlp.register(registry, "seed1")
    registry.promote("credit", 1, to="production", force=True, reason="first")
    mlp.register(registry, "seed2")
    mlp.holdout(300).to_csv(tmp_path / "holdout.csv", index=False)
    code, out, err = run(capsys, "models", "gate", "credit", "2", "--to", "production",
                         "--data", "holdout.csv", "--json")
    assert code == 1 and "holder" in err  # the same model from another seed is not better
    (holder,) = [r for r in json.loads(out)["results"] if r["name"] == "holder"]
    details = holder["details"]
    low, high = details["interval"]
    assert low <= details["difference"] <= high and low < 0 < high
    assert (details["policy"], details["confidence"], details["rows"]) == ("superior", 0.95, 300)
    assert details["metric"] == "accuracy" and holder["bound"] == "> 0"
    code, out, _ = run(capsys, "models", "gate", "credit", "2", "--to", "production")
    assert code == 1 and "95% interval [" in out and "policy superior" in out


def test_rollout_cli_refuses_bad_input_with_exit_2_and_stores_nothing(cli_factory, capsys):
    cli_factory.version(accuracy=0.9)
    run(capsys, "models", "promote", "credit", "1", "--to", "production")
    cli_factory.version(accuracy=0.91)
    for argv, says in [
            (["credit"], "name the candidate version"),
            (["credit", "--status"], "never been rolled out"),
            (["credit", "2", "--canary", "150%"], "150%"),
            (["credit", "2", "--shadow", "banana"], "banana"),
            (["credit", "2", "--policy", "sometimes"], "policy"),
            (["credit", "1"], "already holds"),
            (["credit", "7"], "7"),
    ]:
        code, out, err = run(capsys, "models", "rollout", *argv)
        assert code == 2, (argv, out, err)
        assert says in err and "Traceback" not in err, (argv, err)
    assert cli_factory.registry.store.list_rollouts("credit") == []


def test_rollout_cli_starts_shows_refuses_a_second_and_aborts_with_a_reason(
        cli_factory, capsys):
    cli_factory.version(accuracy=0.9)
    run(capsys, "models", "promote", "credit", "1", "--to", "production")
    cli_factory.version(accuracy=0.91)
    code, out, err = run(capsys, "models", "rollout", "credit", "v2", "--shadow", "300",
                         "--canary", "10%,50%", "--step", "5m", "--json")
    assert code == 0, err
    started = json.loads(out)
    assert (started["stage"], started["holder_version"], started["candidate_version"]) == (
        "shadow", 1, 2)
    assert started["policy"]["shares"] == [0.1, 0.5] and started["policy"]["step_s"] == 300
    code, _, err = run(capsys, "models", "rollout", "credit", "2")
    assert code == 1 and "under way" in err and "Traceback" not in err  # a conflict
    code, out, _ = run(capsys, "models", "rollout", "credit", "--status")
    assert code == 0 and "shadow" in out and "v2 against v1" in out
    code, _, err = run(capsys, "models", "rollout", "credit", "--abort")
    assert code == 2 and "reason" in err
    code, out, _ = run(capsys, "models", "rollout", "credit", "--abort", "--reason",
                       "change freeze", "--json")
    assert code == 0 and json.loads(out)["stage"] == "aborted"
    code, out, _ = run(capsys, "audit", "show", "--action", "rollout_stage", "--json")
    (entry,) = json.loads(out)
    assert entry["details"]["to"] == "aborted" and "change freeze" in json.dumps(entry)
    assert cli_factory.registry.holder("credit", "production").version == 1
    # no server carries it out here: --wait reports it undecided with exit 1
    code, out, err = run(capsys, "models", "rollout", "credit", "2", "--wait", "0.5")
    assert code == 1 and "still in shadow" in err, (out, err)
