"""`driftloop audit show|verify|anchor` as a user meets them: output, JSON and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.store import Store
from driftloop.store.audit import AuditLog
from driftloop.store.tables import AuditEntry


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    with Store.open(Settings.load().store_url) as store:
        log = AuditLog(store)
        for n in range(4):
            log.append("ci:nightly", "promote" if n % 2 else "register", f"credit:v{n}",
                       {"n": n})
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tamper(change) -> None:
    with Store(Settings.load().store_url) as store, store.engine.begin() as conn:
        conn.execute(change)


def test_show_filters_by_subject_and_action(workdir, capsys):
    code, out, _ = run(capsys, "audit", "show", "--action", "promote", "--json")
    assert code == 0
    assert [e["subject"] for e in json.loads(out)] == ["credit:v1", "credit:v3"]
    code, out, _ = run(capsys, "audit", "show", "--subject", "credit:v2")
    assert code == 0 and "credit:v2" in out and "credit:v1" not in out


def test_verify_passes_then_fails_with_exit_1_after_an_edit(workdir, capsys):
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0 and "all 4 entries" in out
    tamper(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="mallory"))
    code, out, err = run(capsys, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 2
    assert "entry 2" in err and "Traceback" not in err


def test_anchor_then_truncation_is_found_only_with_an_anchor(workdir, capsys):
    code, out, _ = run(capsys, "audit", "anchor")  # printed, and kept in the artifact store
    assert code == 0 and json.loads(out)["seq"] == 4
    (workdir / "anchor.json").write_text(out)
    tamper(delete(AuditEntry).where(AuditEntry.seq >= 3))
    code, _, err = run(capsys, "audit", "verify")  # against the kept anchor
    assert code == 1 and "truncated" in err and "entry 3" in err
    code, _, err = run(capsys, "audit", "verify", "--anchor", "anchor.json")
    assert code == 1 and "truncated" in err and "entry 3" in err
    for kept in (workdir / ".driftloop").rglob("anchors/*.json"):
        kept.unlink()  # whoever cut the log also removes the kept anchor
    code, _, err = run(capsys, "audit", "verify")
    assert code == 0 and "no anchor kept yet" in err  # the cut chain still links: it says so


def test_a_bad_anchor_file_is_a_usage_error(workdir, capsys):
    (workdir / "anchor.json").write_text('{"seq": -1}')
    code, _, err = run(capsys, "audit", "verify", "--anchor", "anchor.json")
    assert code == 2 and "field 'seq'" in err
