from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.orm import Session

from driftloop.errors import UsageError
from driftloop.store import Store
from driftloop.store.audit import GENESIS_HASH, Anchor, AuditLog, ChainReport, entry_hash
from driftloop.store.tables import AuditEntry

N_ENTRIES = 6
FIELDS = ["at", "actor", "action", "subject", "details", "prev_hash", "hash"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'driftloop.db'}") as opened:
        yield opened


@pytest.fixture
def log(store: Store) -> AuditLog:
    return AuditLog(store)


def test_append_links_entries_and_verifies(log: AuditLog) -> None:
    a = log.append("alice", "register", "churn:v1", {"auc": 0.91, "tags": ("a", "b")})
    b = log.append("bob", "promote", "churn:v1", {"alias": "prod"})
    c = log.append("carol", "erase", "dataset:ff")
    assert a.prev_hash == GENESIS_HASH and b.prev_hash == a.hash and c.prev_hash == b.hash
    assert a.details == {"auc": 0.91, "tags": ["a", "b"]}  # stored as JSON would read it back
    assert c.details == {}
    assert a.at.tzinfo == timezone.utc
    assert a.hash == entry_hash(a.at, a.actor, a.action, a.subject, a.details, a.prev_hash)
    assert log.entries() == [a, b, c]
    assert log.entries(subject="churn:v1") == [a, b]
    assert log.entries(limit=2) == [b, c]
    assert log.entries(subject="churn:v1", limit=1) == [b]
    assert log.verify() == ChainReport(
        True, 3, None, "all 3 entries match their hashes and link in order.", c.hash
    )


def test_an_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify() == ChainReport(True, 0, None, "the log is empty.", GENESIS_HASH)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "register", "m"), "audit actor must be text"),
        (("alice", "x" * 65, "m"), "audit action must be text of 1 to 64"),
        (("alice", "register", "m", {"auc": float("nan")}), r"\$\.auc is nan"),
    ],
)
def test_bad_entries_are_refused(log: AuditLog, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        log.append(*args)
    assert log.entries() == []


def test_entry_and_version_commit_together(store: Store, log: AuditLog) -> None:
    def register(audit_fails: bool) -> None:
        def hook(session: Any, v: Any) -> None:
            log.append_in(session, "alice", "register", f"{v.model_name}:v{v.version}")
            if audit_fails:
                raise UsageError("stop")

        store.add_version("churn", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1, audit=hook)

    register(audit_fails=False)
    with pytest.raises(UsageError):
        register(audit_fails=True)
    assert [e.subject for e in log.entries()] == ["churn:v1"]
    assert [v.version for v in store.list_versions()] == [1]
    assert log.verify().ok


def test_an_unreadable_entry_is_named(store: Store, log: AuditLog) -> None:
    for n in range(3):
        log.append("ci", "retrain", "churn", {"n": n})
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET details = '{not json' WHERE seq = 2"))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "cannot be read" in report.reason


# -- tampering, property-based -----------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed SQLite file holding a valid chain of N_ENTRIES entries."""
    path = tmp_path_factory.mktemp("audit") / "template.db"
    with Store.open(f"sqlite:///{path}") as store:
        log = AuditLog(store)
        for n in range(N_ENTRIES):
            log.append(f"user{n % 2}", "promote", f"model:v{n}", {"n": n, "why": "better auc"})
    return path


def tampered(template: Path, tamper: Callable[[Connection], None]) -> ChainReport:
    """Copy the template, change it with raw SQL, and verify the copy."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.db"
        shutil.copyfile(template, copy)
        with Store(f"sqlite:///{copy}") as store:
            with store.engine.begin() as conn:
                tamper(conn)
            return AuditLog(store).verify()


def rows(conn: Connection) -> dict[int, dict[str, Any]]:
    return {r.seq: r._asdict() for r in conn.execute(select(*AuditEntry.__table__.c))}


text_values = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
json_values = st.dictionaries(
    st.text(max_size=4), st.integers() | st.text(max_size=4) | st.booleans(), max_size=3
)
hex_values = st.text("0123456789abcdef", min_size=64, max_size=64)


def new_value(field: str, old: Any) -> st.SearchStrategy[Any]:
    if field == "at":
        shift = st.integers(1, 10**12).map(lambda us: timedelta(microseconds=us))
        return st.tuples(shift, st.booleans()).map(lambda p: old + p[0] if p[1] else old - p[0])
    if field == "details":
        return json_values
    if field in ("prev_hash", "hash"):
        return hex_values
    return text_values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=st.integers(1, N_ENTRIES), field=st.sampled_from(FIELDS), data=st.data())
def test_editing_any_field_is_found_at_that_entry(
    template: Path, seq: int, field: str, data: st.DataObject
) -> None:
    def tamper(conn: Connection) -> None:
        current = rows(conn)
        value = data.draw(new_value(field, current[seq][field]), label="new value")
        assume(value != current[seq][field])
        assume(field != "prev_hash" or value not in {r["prev_hash"] for r in current.values()})
        conn.execute(update(AuditEntry).where(AuditEntry.seq == seq).values({field: value}))

    report = tampered(template, tamper)
    assert (report.ok, report.first_bad_seq) == (False, seq)
    assert report.reason.startswith(f"entry {seq} ")


@settings(max_examples=20, deadline=None)
@given(seq=st.integers(1, N_ENTRIES - 1))
def test_deleting_an_entry_is_found_at_the_next_one(template: Path, seq: int) -> None:
    report = tampered(
        template, lambda conn: conn.execute(delete(AuditEntry).where(AuditEntry.seq == seq))
    )
    assert (report.ok, report.first_bad_seq, report.entries) == (False, seq + 1, N_ENTRIES - 1)
    expected = "is the first entry" if seq == 1 else f"does not link to entry {seq - 1}"
    assert expected in report.reason


def test_deleting_the_newest_entry_changes_the_head(template: Path) -> None:
    # no chain can detect a cut tail by itself: that is what keeping `head` elsewhere is for
    before = tampered(template, lambda conn: None)
    after = tampered(
        template, lambda conn: conn.execute(delete(AuditEntry).where(AuditEntry.seq == N_ENTRIES))
    )
    assert before.ok and after.ok and after.entries == N_ENTRIES - 1
    assert after.head != before.head


@settings(max_examples=30, deadline=None)
@given(pair=st.lists(st.integers(1, N_ENTRIES), min_size=2, max_size=2, unique=True))
def test_swapping_two_entries_is_found_at_the_earlier(template: Path, pair: list[int]) -> None:
    i, j = sorted(pair)

    def swap(conn: Connection) -> None:
        current = rows(conn)
        conn.execute(delete(AuditEntry).where(AuditEntry.seq.in_([i, j])))
        conn.execute(insert(AuditEntry), [{**current[j], "seq": i}, {**current[i], "seq": j}])

    report = tampered(template, swap)
    assert (report.ok, report.first_bad_seq) == (False, i)
    assert "does not link" in report.reason or "is the first entry" in report.reason


@settings(max_examples=20, deadline=None)
@given(seq=st.integers(1, N_ENTRIES), forged_prev=hex_values)
def test_inserting_a_forged_entry_is_found(template: Path, seq: int, forged_prev: str) -> None:
    """Entries from ``seq`` on move up by 100; a self-consistent forgery takes ``seq``."""

    def forge(conn: Connection) -> None:
        current = rows(conn)
        assume(forged_prev not in {r["prev_hash"] for r in current.values()})
        conn.execute(
            update(AuditEntry).where(AuditEntry.seq >= seq).values(seq=AuditEntry.seq + 100)
        )
        at = current[seq]["at"]
        digest = entry_hash(at, "mallory", "promote", "model:evil", {}, forged_prev)
        conn.execute(
            insert(AuditEntry).values(
                seq=seq,
                at=at,
                actor="mallory",
                action="promote",
                subject="model:evil",
                details={},
                prev_hash=forged_prev,
                hash=digest,
            )
        )

    report = tampered(template, forge)
    assert (report.ok, report.first_bad_seq) == (False, seq)


def test_relinking_around_a_forgery_is_found_where_the_link_was_rewritten(
    template: Path,
) -> None:
    def forge(conn: Connection) -> None:
        current = rows(conn)
        conn.execute(update(AuditEntry).where(AuditEntry.seq >= 3).values(seq=AuditEntry.seq + 100))
        # the forgery links to entry 2 correctly; entry 3 (now 103) is relinked to it
        conn.execute(update(AuditEntry).where(AuditEntry.seq == 103).values(prev_hash="f" * 64))
        at = current[3]["at"]
        digest = entry_hash(at, "mallory", "promote", "model:evil", {}, current[2]["hash"])
        conn.execute(
            insert(AuditEntry).values(
                seq=3,
                at=at,
                actor="mallory",
                action="promote",
                subject="model:evil",
                details={},
                prev_hash=current[2]["hash"],
                hash=digest,
            )
        )
        conn.execute(update(AuditEntry).where(AuditEntry.seq == 103).values(prev_hash=digest))

    report = tampered(template, forge)
    assert (report.ok, report.first_bad_seq) == (False, 103)
    assert "was changed after it was written" in report.reason


@pytest.fixture
def many(store: Store, log: AuditLog) -> Iterator[AuditLog]:
    def fill(session: Session) -> None:
        for n in range(1203):  # more than two verify chunks
            log.append_in(session, "ci", "check", f"s{n % 7}", {"n": n})

    store.transact(fill)
    yield log


def test_verify_reads_long_logs_in_chunks(store: Store, many: AuditLog) -> None:
    assert many.verify().ok
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET details = 'garbage' WHERE seq = 1100"))
    report = many.verify()
    assert (report.ok, report.first_bad_seq, report.entries) == (False, 1100, 1203)


def test_recorder_audits_a_registration(store: Store, log: AuditLog) -> None:
    version = store.add_version(
        "churn",
        None,
        "binary",
        "tabular",
        "a" * 64,
        "b" * 64,
        {"auc": 0.9},
        1,
        audit=log.recorder("alice", "register", reason="nightly", details={"ticket": "ML-7"}),
    )
    (entry,) = log.entries()
    assert (entry.actor, entry.action, entry.subject) == ("alice", "register", "churn:v1")
    assert entry.details == {
        "reason": "nightly",
        "run_id": None,
        "weights_sha256": version.weights_sha256,
        "bundle_sha256": version.bundle_sha256,
        "ticket": "ML-7",
    }
    with pytest.raises(UsageError, match="audit actor"):
        log.recorder("", "register")


def test_the_public_names_are_pinned() -> None:
    import driftloop.governance

    assert sorted(driftloop.governance.__all__) == [
        "Anchor", "AuditLog", "ChainReport", "GENESIS_HASH", "entry_hash", "pseudonymous_actor",
    ]  # fmt: skip


# -- anchors: a truncated tail ------------------------------------------------------------------


def anchored(template: Path) -> Anchor:
    with Store(f"sqlite:///{template}") as store:
        return AuditLog(store).anchor()


def test_an_untouched_chain_verifies_against_its_anchor(template: Path) -> None:
    anchor = anchored(template)
    assert (anchor.seq, anchor.entries) == (N_ENTRIES, N_ENTRIES)
    with Store(f"sqlite:///{template}") as store:
        report = AuditLog(store).verify(anchor)
    assert report.ok and "still matches the anchor" in report.reason


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(1, N_ENTRIES), appended=st.integers(0, 3), reuse_seqs=st.booleans())
def test_a_truncated_tail_is_found_against_the_anchor(
    template: Path, cut: int, appended: int, reuse_seqs: bool
) -> None:
    """Cut ``cut`` newest entries, then append ``appended`` well-formed entries that link to
    the new tail (with the freed seqs, or new ones): the chain itself still verifies."""
    anchor = anchored(template)
    keep = N_ENTRIES - cut

    def truncate(conn: Connection) -> None:
        current = rows(conn)
        conn.execute(delete(AuditEntry).where(AuditEntry.seq > keep))
        head = current[keep]["hash"] if keep else GENESIS_HASH
        for n in range(appended):
            seq = keep + 1 + n if reuse_seqs else N_ENTRIES + 10 + n
            at = current[N_ENTRIES]["at"] + timedelta(seconds=n + 1)
            digest = entry_hash(at, "mallory", "promote", "model:evil", {"n": n}, head)
            conn.execute(insert(AuditEntry).values(
                seq=seq, at=at, actor="mallory", action="promote", subject="model:evil",
                details={"n": n}, prev_hash=head, hash=digest,
            ))
            head = digest

    without_anchor = tampered(template, truncate)
    assert without_anchor.ok  # a cut chain links: only the anchor can tell
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.db"
        shutil.copyfile(template, copy)
        with Store(f"sqlite:///{copy}") as store:
            with store.engine.begin() as conn:
                truncate(conn)
            report = AuditLog(store).verify(anchor)
    assert not report.ok
    start = keep + 1 if reuse_seqs else N_ENTRIES + 10
    seqs = list(range(1, keep + 1)) + list(range(start, start + appended))
    if N_ENTRIES in seqs:  # the anchored seq was reused by a forgery
        assert report.first_bad_seq == N_ENTRIES and "rewritten" in report.reason
    elif max(seqs, default=0) < N_ENTRIES:
        assert report.first_bad_seq == max(seqs, default=0) + 1
        assert "truncated" in report.reason
    else:
        assert report.first_bad_seq == N_ENTRIES and "was deleted" in report.reason


def test_anchor_files_round_trip_and_bad_ones_are_named(tmp_path: Path, log: AuditLog) -> None:
    log.append("ci", "retrain", "churn")
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(log.anchor().to_json()))
    assert Anchor.read(path) == Anchor(**json.loads(path.read_text()))
    assert log.verify(Anchor.read(path)).ok
    with pytest.raises(UsageError, match="not found"):
        Anchor.read(tmp_path / "none.json")
    path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read as JSON"):
        Anchor.read(path)
    path.write_text(json.dumps({"seq": 1, "entries": 1, "hash": "ab"}))
    with pytest.raises(UsageError, match="field 'hash'"):
        Anchor.read(path)


def test_events_are_recorded_and_filtered_by_action(store: Store, log: AuditLog) -> None:
    store.on_event = log.event_recorder("ci:nightly")
    store.upsert_dataset("f" * 64, "data.csv", 10, None)
    store.upsert_dataset("f" * 64, "again.csv", 10, None)  # known: not recorded again
    run = store.create_run("churn", {}, 2, "runs/x", {}, "abc")
    store.finish_run(run.id, "succeeded", duration_s=2.0)
    assert [e.action for e in log.entries()] == ["dataset_recorded", "run_started",
                                                "run_finished"]
    (started,) = log.entries(action="run_started")
    assert started.subject == f"run:{run.id}" and started.details["world_size"] == 2
    assert log.verify().ok
