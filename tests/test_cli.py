"""The command line as a user meets it: exit codes, messages, JSON output, no tracebacks."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main


def _table(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(40, 10, rows).round(1),
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    frame["label"] = np.where(frame["age"] > 40, "yes", "no")
    return frame


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "make,args,expected",
    [
        (None, ["missing.csv", "--target", "label"], ["missing.csv", "not found"]),
        ("ok", ["data.csv", "--target", "nope"], ["'nope' not found", "age, city, label"]),
        ("all_missing_target", ["data.csv", "--target", "label"], ["label", "missing"]),
        ("typo", ["data.csv", "--target", "label"], ["age", "row 7", "'4o'"]),
        ("ok", ["data.csv", "--target", "label", "--batch-size", "200"],
         ["2 × 200 = 400", "--batch-size"]),
        ("tiny", ["data.csv", "--target", "label"], ["split"]),
        ("ok", ["data.csv", "--target", "label", "--model", "resnet"],
         ["model 'resnet' not found", "Available names"]),
        ("ok", ["data.csv", "--target", "label", "--workers", "0"], ["workers"]),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(workdir, capsys, make, args, expected):
    frame = _table()
    if make == "all_missing_target":
        frame["label"] = np.nan
    elif make == "typo":
        frame["age"] = frame["age"].astype(object)
        frame.loc[7, "age"] = "4o"
    elif make == "tiny":
        frame = frame.head(2)
    if make:
        frame.to_csv(workdir / "data.csv", index=False)
    code, out, err = _run(capsys, "train", *args)
    assert code == 2, err
    assert "Traceback" not in err + out
    text = " ".join(err.split())
    for word in expected:
        assert word in text
    assert not (workdir / ".driftloop" / "runs").exists() or not any(
        (workdir / ".driftloop" / "runs").iterdir()
    )


def test_unknown_flag_is_a_usage_error(workdir, capsys):
    code, _, err = _run(capsys, "train", "x.csv", "--no-such-flag")
    assert code == 2 and "no-such-flag" in err


def test_data_check_json_and_fail_on(workdir, capsys):
    frame = _table()
    frame.loc[:60, "age"] = np.nan  # 30% missing: a warning
    frame.to_csv(workdir / "data.csv", index=False)
    code, out, _ = _run(capsys, "data", "check", "data.csv", "--target", "label", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows"] == 200 and report["task"] == "binary"
    assert report["columns"] == {"age": "numeric", "city": "categorical"}
    assert any(f["check"] == "missing_values" and f["severity"] == "warning"
               for f in report["findings"])
    code, _, err = _run(capsys, "data", "check", "data.csv", "--target", "label",
                        "--fail-on", "warning")
    assert code == 1 and "warning" in err


def test_models_show_unknown_version_exits_2(workdir, capsys):
    code, _, err = _run(capsys, "models", "show", "credit:x")
    assert code == 2 and "NAME:VERSION" in " ".join(err.split())


def test_data_check_json_has_the_issue_shape_and_leaks_against_a_test_set_exit_1(workdir,
                                                                                capsys):
    frame = _table(400, seed=1)
    rng = np.random.default_rng(99)  # labels that age alone does not give away
    frame["label"] = np.where(frame["age"] + rng.normal(0, 8, 400) > 40, "yes", "no")
    frame["email"] = [f"user{i}@example.com" for i in range(400)]
    train, test = frame.iloc[:300], frame.iloc[300:]
    pd.concat([train, test.iloc[:10]]).to_csv(workdir / "train.csv", index=False)
    test.to_csv(workdir / "test.csv", index=False)
    code, out, _ = _run(capsys, "data", "check", "train.csv", "--target", "label",
                        "--against", "test.csv", "--json")
    assert code == 1  # the copied rows are an error
    report = json.loads(out)
    assert set(report["dataset"]) >= {"fingerprint", "source", "rows", "schema"}
    assert report["dataset"]["rows"] == 310
    by_check = {f["check"]: f for f in report["findings"]}
    leak = by_check["row_overlap"]
    assert set(leak) >= {"check", "severity", "columns", "rows", "count", "message", "advice"}
    assert leak["severity"] == "error" and leak["rows"] == list(range(300, 310))
    assert by_check["pii"]["columns"] == ["email"] and "user0@example.com" not in out
    # provenance went to the store in the working folder
    from driftloop.config import Settings
    from driftloop.store import Store

    with Store.open(Settings.load().store_url) as store:
        assert store.get_dataset(report["dataset"]["fingerprint"]).rows == 310
        assert [r.kind for r in store.list_reports()] == ["data_check"]
    code, out, _ = _run(capsys, "data", "check", "test.csv", "--target", "label")
    assert code == 0 and "pii" in out and "fingerprint" in out


def _register_in_process(frame: pd.DataFrame, name: str, metrics: dict | None = None) -> None:
    """Register a quickly trained model in the working folder's store (no ranks)."""
    from driftloop.config import Settings
    from driftloop.registry import Registry
    from quick_model import quick_version

    _, weights, bundle = quick_version(
        frame, calibration={"kind": "temperature", "inputs": "proba", "temperature": 1.5})
    Registry.open(Settings.load()).register(name, run_id=None, bundle=bundle, weights=weights,
                                            metrics=metrics or {}, actor="test",
                                            reason="cli test")


def test_evaluate_prints_intervals_writes_the_diagram_and_stores_the_report(workdir, capsys):
    frame = _table(600, seed=2)
    _register_in_process(frame, "ages")
    _table(300, seed=3).to_csv(workdir / "holdout.csv", index=False)
    code, out, err = _run(capsys, "evaluate", "ages:1", "holdout.csv", "--slices", "city,age",
                          "--diagram", "reliability.png")
    assert code == 0, err
    text = " ".join(out.split())
    assert "ages v1" in text and "95% interval" in text and "accuracy" in text
    assert "calibration: temperature 1.500" in text and "slices by accuracy" in text
    assert (workdir / "reliability.png").read_bytes().startswith(b"\x89PNG")
    code, out, _ = _run(capsys, "evaluate", "ages", "holdout.csv", "--json")
    report = json.loads(out)
    assert report["model"] == {"name": "ages", "version": 1}
    assert report["metrics"]["accuracy"]["low"] <= report["metrics"]["accuracy"]["value"]
    assert report["calibration"]["after"]["ece"] >= 0 and report["artifact_sha256"]
    code, _, err = _run(capsys, "evaluate", "ages:7", "holdout.csv")
    assert code == 2 and "has no version 7" in err
    code, _, err = _run(capsys, "evaluate", "ages", "holdout.csv", "--slices", "town")
    assert code == 2 and "slice column 'town' not found" in " ".join(err.split())


def test_train_refuses_data_with_errors_unless_ignored_and_names_unknown_checks(workdir,
                                                                               capsys):
    frame = _table()
    frame["age_copy"] = (frame["label"] == "yes") + np.random.default_rng(0).normal(0, .01, 200)
    frame.to_csv(workdir / "data.csv", index=False)
    code, _, err = _run(capsys, "train", "data.csv", "--target", "label")
    text = " ".join(err.split())
    assert code == 1 and "target_leakage" in text and "--ignore-check" in text
    code, _, err = _run(capsys, "train", "data.csv", "--target", "label",
                        "--ignore-check", "leakage")
    assert code == 2 and "'leakage' is not a check" in " ".join(err.split())
    assert not (workdir / ".driftloop" / "runs").exists()



@pytest.mark.parametrize(
    "args,expected",
    [
        (["models", "promote", "credit", "1", "--to", "production", "--force"], "--reason"),
        (["models", "promote", "credit", "1", "--to", "Prod 1"], "alias 'Prod 1'"),
        (["models", "promote", "credit", "1", "--to", "production"], "no model named 'credit'"),
        (["models", "rollback", "credit", "--alias", "production"], "no model named 'credit'"),
        (["models", "lineage", "credit", "2"], "no model named 'credit'"),
        (["models", "card", "credit", "--set", "mood=ok"], "'mood' is not a model card field"),
        (["models", "promote", "credit", "1"], "--to"),
    ],
)
def test_registry_commands_exit_2_on_bad_input(workdir, capsys, args, expected):
    code, out, err = _run(capsys, *args)
    assert code == 2 and "Traceback" not in err + out
    assert expected in " ".join(err.split())


def test_audit_of_a_new_store_verifies_and_anchors_at_zero(workdir, capsys):
    code, out, _ = _run(capsys, "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = _run(capsys, "audit", "anchor")
    assert code == 0 and json.loads(out)["seq"] == 0


def test_keys_create_list_revoke(workdir, capsys):
    code, out, _ = _run(capsys, "keys", "create", "svc", "--role", "admin", "--json")
    created = json.loads(out)
    assert code == 0 and created["key"].startswith("dl_" + created["prefix"])
    code, out, _ = _run(capsys, "keys", "list", "--json")
    assert code == 0 and [k["name"] for k in json.loads(out)] == ["svc"]
    assert created["key"] not in out
    code, out, _ = _run(capsys, "keys", "revoke", "svc")
    assert code == 0 and "revoked admin key svc" in out
    code, _, err = _run(capsys, "keys", "revoke", "svc")
    assert code == 2 and "no active key" in err
    code, _, err = _run(capsys, "keys", "create", "x", "--role", "root")
    assert code == 2


def test_models_export_of_a_missing_model_exits_2(workdir, capsys):
    code, out, err = _run(capsys, "models", "export", "credit", "1", "--format", "onnx")
    assert code == 2 and "no model named 'credit'" in " ".join(err.split())


def test_serve_with_nothing_promoted_exits_2(workdir, capsys):
    code, _, err = _run(capsys, "serve", "--port", "0")
    assert code == 2 and "no model has a version under alias 'production'" in " ".join(
        err.split())


def _command_paths() -> list[list[str]]:
    import typer

    from driftloop.cli import app

    def walk(command, path):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def test_help_of_every_command_shows_flags_without_a_bool_type(capsys):
    paths = _command_paths()
    assert len(paths) > 30 and ["models", "promote"] in paths
    for path in paths:
        code, out, _ = _run(capsys, *path, "--help")
        assert code == 0 and "--help" in out, path
        assert "<bool>" not in out, path
    _, out, _ = _run(capsys, "models", "promote", "--help")
    assert "--force" in out and "--json" in out and "<str>" in out


def _piped(workdir, *argv: str) -> list[str]:
    """stdout of ``python -m driftloop ARGV`` piped (not a terminal), its lines unwrapped."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DRIFTLOOP_") and k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "driftloop", *argv], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_piped_tables_keep_every_header_and_value_whole(workdir):
    frame = _table(600, seed=2)
    _register_in_process(frame, "ages", metrics={"accuracy": 0.9125})
    lines = _piped(workdir, "models", "list")
    header = next(line for line in lines if "model" in line)
    cells = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert cells == ["model", "version", "aliases", "task", "created", "key metric", "ECE",
                     "worst slice", "size", "train data"]
    row = next(line for line in lines if "ages" in line)
    assert "binary" in row and "accuracy 0.9125" in row and "…" not in "\n".join(lines)

    frame.to_csv(workdir / "ref.csv", index=False)
    _table(600, seed=3).to_csv(workdir / "cur.csv", index=False)
    lines = _piped(workdir, "drift", "--reference", "ref.csv", "--current", "cur.csv",
                   "--target", "label")
    header = next(line for line in lines if "feature" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "feature", "kind", "test", "statistic", "p", "p adjusted", "effect", "missing rate",
        "status"]
    assert any("categorical" in line and "jensen_shannon" in line for line in lines)
    assert any("testable features drifted" in line and "bh-corrected" in line
               for line in lines)


def test_an_error_quoting_markup_like_input_is_printed_as_it_is(workdir, capsys):
    # user input inside a message is text, not rich markup: "[/b]" used to raise a MarkupError
    # traceback, and "[x]" vanished from the message
    code, out, err = _run(capsys, "models", "show", "a[/b][x]:1")
    assert code == 2, err
    assert "a[/b][x]" in err and "Traceback" not in out + err


def test_a_kept_anchor_catches_a_cut_off_tail_in_verify_and_on_the_dashboard(workdir, capsys):
    """Issue 15: `audit anchor` keeps its anchor in the artifact store; `audit verify` and the
    dashboard's verify check against it — a tail cut off after it fails both."""
    from sqlalchemy import delete

    from driftloop.config import Settings
    from driftloop.registry import Registry
    from driftloop.store.tables import AuditEntry
    from driftloop.ui.views import verify_view

    for name in ("a", "b", "c"):
        assert _run(capsys, "keys", "create", name, "--role", "read")[0] == 0
    settings = Settings.load(cwd=workdir)
    with Registry.open(settings) as registry:
        unanchored = verify_view(registry)
    assert unanchored["ok"] and unanchored["anchor"] is None
    assert "no anchor kept yet" in unanchored["anchor_note"]
    code, _, err = _run(capsys, "audit", "verify")
    assert code == 0 and "no anchor kept yet" in err
    code, out, _ = _run(capsys, "audit", "anchor")
    assert code == 0 and json.loads(out)["seq"] == 3
    with Registry.open(settings) as registry:
        assert verify_view(registry)["anchor"]["seq"] == 3
        with registry.store.session() as session:  # someone deletes the newest entry
            session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        cut = verify_view(registry)
        assert registry.audit.verify().ok  # without the anchor the cut is invisible
    assert not cut["ok"] and "entry 3" in cut["anchor_note"]
    code, _, err = _run(capsys, "audit", "verify")
    assert code == 1 and "verification failed" in err
