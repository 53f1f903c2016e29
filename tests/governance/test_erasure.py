"""`driftloop erase`: exactly the subject's rows go, from a real store and real Parquet files,
and the audit chain (which never holds the id) still verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.data.hashing import hash_value
from driftloop.errors import ConfigError, DataError, UsageError
from driftloop.governance.erasure import (
    SALT_FILE,
    SALT_OBJECT,
    erase_subject,
    erasure_salt,
    find_erasures,
    id_texts,
    subject_hash,
)
from driftloop.serve.prediction_log import PredictionLog
from driftloop.store import ArtifactStore, Store
from driftloop.store.audit import AuditLog
from driftloop.store.clock import utcnow
from driftloop.store.secrets import pii_key

# (request id, customer id, feature x): 42 has look-alikes that must survive
ROWS = [
    ("r1", 42, 1.0), ("r2", 420, 2.0), ("r3", "42", 3.0), ("r4", 4, 4.0), ("r5", 142, 5.0),
    ("r6-0", 42.0, 6.0), ("r6-1", 7, 7.0), ("r7", "042", 8.0), ("r8", None, 9.0),
]
ERASED = {"r1", "r3", "r6-0"}


def _settings(home: Path, **overrides) -> Settings:
    return Settings.load(overrides={"home": str(home), **overrides}, environ={}, cwd=home)


def _log(store: Store, rows, column: str = "customer_id") -> None:
    store.add_predictions([
        {"request_id": rid, "model_name": "credit", "version": 1, "at": utcnow(),
         "features": {column: cid, "x": x}, "output": {"predictions": "yes"}}
        for rid, cid, x in rows])


def _snapshot(home: Path, name: str, frame: pd.DataFrame) -> Path:
    path = home / "loop" / "snapshots" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def populated(tmp_path: Path) -> Settings:
    settings = _settings(tmp_path / "home")
    with Store.open(settings.store_url) as store:
        _log(store, ROWS)
        store.add_feedback([(rid, "yes") for rid, _, _ in ROWS])
    home = Path(settings.home)
    _snapshot(home, "credit-1-train.parquet", pd.DataFrame(
        {"customer_id": [42, 420, 4, 42, 142], "x": [1.0, 2.0, 3.0, 4.0, 5.0],
         "label": ["yes", "no", "yes", "no", "yes"]}))
    _snapshot(home, "credit-1-holdout.parquet", pd.DataFrame(
        {"x": [1.0, 2.0], "label": ["yes", "no"]}))  # no id column: left alone
    return settings


def test_erase_removes_exactly_the_subjects_rows_everywhere(populated: Settings) -> None:
    home = Path(populated.home)
    train = home / "loop" / "snapshots" / "credit-1-train.parquet"
    holdout = home / "loop" / "snapshots" / "credit-1-holdout.parquet"
    schema_before = pq.read_schema(train)
    holdout_bytes = holdout.read_bytes()

    result = erase_subject(populated, "42")

    assert (result.prediction_log, result.feedback) == (3, 3)
    assert result.snapshots == {str(train): 2}
    assert result.skipped_snapshots == [str(holdout)]
    with Store.open(populated.store_url) as store:
        left = {r.request_id for r in store.list_predictions()}
        labelled = {f.request_id for f in store.list_feedback()}
        log = AuditLog(store)
        assert log.verify().ok
        (entry,) = log.entries(action="erase")
    everyone = {rid for rid, _, _ in ROWS}
    assert left == labelled == everyone - ERASED  # 420, 4, 142, 042 and r6-1 (same request) stay
    frame = pd.read_parquet(train)
    assert frame["customer_id"].tolist() == [420, 4, 142]
    assert frame["label"].tolist() == ["no", "yes", "yes"]
    assert pq.read_schema(train).equals(schema_before, check_metadata=True)
    assert holdout.read_bytes() == holdout_bytes
    assert not [p for p in train.parent.iterdir() if p.name.startswith(".")]  # no temp left
    assert entry.subject == f"subject:{result.subject_hash}"
    assert entry.details["counts"] == {"prediction_log": 3, "feedback": 3, "snapshots": 2}
    assert entry.details["snapshots"] == {"credit-1-train.parquet": 2}


def test_the_audit_entry_holds_a_salted_hash_never_the_id(populated: Settings) -> None:
    subject = "ana.lima@example.org"
    with Store.open(populated.store_url) as store:
        _log(store, [("m1", subject, 1.0), ("m2", subject + ".uk", 2.0)])
    result = erase_subject(populated, subject, actor="dpo:ticket-881")
    assert result.prediction_log == 1

    salt_path = Path(ArtifactStore(populated.artifacts_url).named_url(SALT_OBJECT))
    salt = bytes.fromhex(salt_path.read_text().strip())
    expected = hmac.new(salt, subject.encode(), hashlib.sha256).hexdigest()
    assert result.subject_hash == expected == subject_hash(populated, subject)
    assert not (Path(populated.home) / SALT_FILE).exists()  # not on this host's disk alone
    assert stat.S_IMODE(os.stat(salt_path).st_mode) == 0o600
    assert expected != hashlib.sha256(subject.encode()).hexdigest()  # salted, not guessable
    with Store.open(populated.store_url) as store:
        stored = json.dumps([[e.actor, e.action, e.subject, e.details]
                             for e in AuditLog(store).entries()])
    assert "ana.lima" not in stored and "example.org" not in stored
    # the same id gives the same hash later: an auditor can confirm the erasure
    (entry,) = find_erasures(populated, subject)
    assert entry.actor == "dpo:ticket-881" and find_erasures(populated, subject + ".uk") == []


def test_an_older_local_salt_moves_into_the_artifact_store(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    old = "ab" * 32
    (Path(settings.home)).mkdir(parents=True)
    (Path(settings.home) / SALT_FILE).write_text(old + "\n")
    assert erasure_salt(settings) == bytes.fromhex(old)  # past erasures still confirm
    shared = ArtifactStore(settings.artifacts_url).read_named(SALT_OBJECT)
    assert shared.decode().strip() == old

    other = _settings(tmp_path / "other", artifacts_url=settings.artifacts_url)
    Path(other.home).mkdir(parents=True)
    (Path(other.home) / SALT_FILE).write_text("cd" * 32 + "\n")  # this host made its own
    with pytest.raises(ConfigError, match="two erasure salts.*keep a backup"):
        erasure_salt(other)


def test_a_pii_hashed_id_column_is_matched_by_its_plain_value(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", serve={"pii_hash_key": "s3cret"})
    with Store.open(settings.store_url) as store:
        log = PredictionLog(store, flush_ms=10, key="s3cret")  # the server's real writer
        log.start()
        log.submit("credit", 1, ["a-0", "a-1", "a-2"],
                   {"email": ["ana@x.org", "bo@x.org", "ana@x.org.br"], "age": [30, 41, 52]},
                   {"predictions": ["yes", "no", "no"]}, pii=frozenset({"email"}))
        log.stop()
        store.add_feedback([("a-0", "yes"), ("a-1", "no")])
        stored = [r.features["email"] for r in store.list_predictions()]
    assert stored[0] == hash_value("ana@x.org", "s3cret")  # the log never held the address

    result = erase_subject(settings, "ana@x.org", id_column="email")

    assert (result.prediction_log, result.feedback) == (1, 1)
    with Store.open(settings.store_url) as store:
        assert [r.request_id for r in store.list_predictions()] == ["a-1", "a-2"]
        assert [f.request_id for f in store.list_feedback()] == ["a-1"]


def test_a_hashed_snapshot_column_is_matched_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    key = pii_key("", ArtifactStore(settings.artifacts_url))  # the store's generated key
    hashed = [hash_value(v, key) for v in ("ana@x.org", "bo@x.org")]
    path = _snapshot(Path(settings.home), "nested/credit-2-train.parquet",
                     pd.DataFrame({"email": hashed, "x": [1, 2]}))
    result = erase_subject(settings, "ana@x.org", id_column="email")
    assert result.snapshots == {str(path): 1}
    assert pd.read_parquet(path)["email"].tolist() == [hashed[1]]


def test_an_unknown_id_erases_nothing_and_is_still_audited(populated: Settings) -> None:
    with Store.open(populated.store_url) as store:
        before = len(store.list_predictions())
    result = erase_subject(populated, "no-such-customer")
    assert result.erased == 0 and result.audit_seq is not None
    with Store.open(populated.store_url) as store:
        assert len(store.list_predictions()) == before
        (entry,) = AuditLog(store).entries(action="erase")
    assert entry.details["counts"] == {"prediction_log": 0, "feedback": 0, "snapshots": 0}


def test_an_unknown_id_column_is_a_usage_error_that_names_it(populated: Settings) -> None:
    with pytest.raises(UsageError, match="'client_no'.*customer_id, x.*--id-column"):
        erase_subject(populated, "42", id_column="client_no")
    with Store.open(populated.store_url) as store:
        assert AuditLog(store).entries() == []  # refused before anything was written


def test_a_dry_run_counts_without_changing_or_auditing(populated: Settings) -> None:
    result = erase_subject(populated, 42, dry_run=True)
    assert (result.prediction_log, result.feedback, result.audit_seq) == (3, 3, None)
    assert sum(result.snapshots.values()) == 2
    with Store.open(populated.store_url) as store:
        assert len(store.list_predictions()) == len(ROWS)
        assert AuditLog(store).entries() == []


def test_an_unreadable_snapshot_stops_the_erasure_before_anything_changes(
        populated: Settings) -> None:
    bad = Path(populated.home) / "loop" / "snapshots" / "broken.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="broken.parquet.*nothing was erased"):
        erase_subject(populated, "42")
    with Store.open(populated.store_url) as store:
        assert len(store.list_predictions()) == len(ROWS)
        assert AuditLog(store).entries() == []
    train = Path(populated.home) / "loop" / "snapshots" / "credit-1-train.parquet"
    assert len(pd.read_parquet(train)) == 5


def test_a_snapshot_keeps_column_types_and_pandas_metadata(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    table = pa.table({"customer_id": pa.array(["c1", "c2", "c1"], pa.dictionary(pa.int8(),
                                                                                pa.string())),
                      "when": pa.array([1, 2, 3], pa.timestamp("ms", tz="UTC"))},
                     metadata={b"origin": b"loop"})
    path = Path(settings.home) / "loop" / "snapshots" / "s.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    assert erase_subject(settings, "c1").snapshots == {str(path): 2}
    after = pq.read_table(path)
    assert after.schema.equals(table.schema, check_metadata=True)
    assert after.column("when").to_pylist()[0].second == 0 and after.num_rows == 1


@given(st.integers(-(2**53), 2**53), st.integers(-(2**53), 2**53))
def test_ids_match_the_same_number_only(a: int, b: int) -> None:
    texts = id_texts(str(a))
    assert (str(b) in texts) == (a == b)
    assert (repr(float(b)) in texts) == (a == b)  # a stored 42.0 is the same number as 42


@given(st.text(min_size=1, max_size=20).filter(str.strip), st.text(min_size=1, max_size=5))
def test_an_id_never_matches_a_longer_text_that_starts_or_ends_with_it(
        subject: str, extra: str) -> None:
    texts = id_texts(subject)
    for longer in (subject + extra, extra + subject):
        if longer in texts:  # only another spelling of the same number, e.g. "42" and "42.0"
            assert float(longer) == float(subject)


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def workdir(populated: Settings, monkeypatch) -> Path:
    monkeypatch.chdir(populated.home)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DRIFTLOOP_HOME", populated.home)
    return Path(populated.home)


def test_cli_erase_then_audit_verify(workdir: Path, capsys) -> None:
    code, out, _ = _cli(capsys, "erase", "--subject-id", "42", "--json")
    assert code == 0
    body = json.loads(out)
    assert (body["prediction_log"], body["feedback"], body["erased"]) == (3, 3, 8)
    code, out, _ = _cli(capsys, "erase", "--subject-id", "42")
    assert code == 0 and "nothing removed" in out and "audited as entry" in out
    code, out, _ = _cli(capsys, "audit", "verify")
    assert code == 0 and "all 2 entries" in out


def test_cli_unknown_column_exits_2_with_a_message(workdir: Path, capsys) -> None:
    code, _, err = _cli(capsys, "erase", "--subject-id", "42", "--id-column", "client_no")
    assert code == 2 and "client_no" in err and "Traceback" not in err
    code, _, err = _cli(capsys, "erase", "--subject-id", "  ")
    assert code == 2 and "subject id" in err
