from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from datetime import timezone
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.errors import DriftloopError, NotFoundError, UsageError
from driftloop.store import DatasetRecord, RunRecord, Store, VersionRecord
from driftloop.store.tables import Dataset, ModelVersion, RunMetric

FP = "f" * 64
COLUMNS = [{"name": "age", "kind": "numeric"}, {"name": "plan", "kind": "categorical"}]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'home' / 'driftloop.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


def _run(store: Store, model: str = "churn") -> RunRecord:
    return store.create_run(
        model, {"lr": 0.01, "layers": [64, 32]}, 2, "runs/x", {"torch": "2.4"}, "deadbeef"
    )


def _version(store: Store, model: str = "churn", **kwargs: object) -> VersionRecord:
    args: dict[str, object] = {
        "run_id": None,
        "task": "binary",
        "input_kind": "tabular",
        "weights_sha256": "a" * 64,
        "bundle_sha256": "b" * 64,
        "metrics": {"auc": 0.9},
        "size_bytes": 100,
    }
    args.update(kwargs)
    return store.add_version(model, **args)  # type: ignore[arg-type]


# -- datasets ----------------------------------------------------------------------------------


def test_upsert_dataset_round_trip_and_is_idempotent(store: Store) -> None:
    first = store.upsert_dataset(FP, "s3://bucket/train.parquet", 1000, COLUMNS)
    again = store.upsert_dataset(FP, "elsewhere.csv", 1000, None)
    assert isinstance(first, DatasetRecord)
    assert again == first
    assert (first.source_uri, first.rows, first.columns) == (
        "s3://bucket/train.parquet",
        1000,
        COLUMNS,
    )
    assert first.created_at.tzinfo == timezone.utc
    with store.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 1


@pytest.mark.parametrize(("fingerprint", "rows"), [("", 1), ("x" * 65, 1), (FP, -1)])
def test_upsert_dataset_refuses_bad_values(store: Store, fingerprint: str, rows: int) -> None:
    with pytest.raises(UsageError):
        store.upsert_dataset(fingerprint, "a.csv", rows, None)


# -- runs --------------------------------------------------------------------------------------


def test_run_round_trip(store: Store) -> None:
    run = _run(store)
    assert run.status == "running" and len(run.id) == 32
    assert run.started_at.tzinfo == timezone.utc
    assert store.get_run(run.id) == run
    assert run.params == {"lr": 0.01, "layers": [64, 32]}

    train = store.upsert_dataset("1" * 64, "train.csv", 80, COLUMNS)
    val = store.upsert_dataset("2" * 64, "val.csv", 20, COLUMNS)
    store.link_run_dataset(run.id, "train", train.fingerprint)
    store.link_run_dataset(run.id, "val", val.fingerprint)
    assert store.run_datasets(run.id) == {"train": train, "val": val}

    store.add_run_metrics(run.id, 1, {"loss": 0.7, "val_loss": 0.8})
    store.add_run_metrics(run.id, 0, {"loss": 0.9})
    store.add_run_metrics(run.id, 1, {"loss": 0.6})  # overwrites
    assert store.run_metrics(run.id) == [
        {"epoch": 0, "loss": 0.9},
        {"epoch": 1, "loss": 0.6, "val_loss": 0.8},
    ]

    done = store.finish_run(run.id, "succeeded", duration_s=12.5, samples_per_s=800.0)
    assert (done.status, done.duration_s, done.samples_per_s, done.error) == (
        "succeeded",
        12.5,
        800.0,
        None,
    )
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert store.get_run(run.id) == done


def test_linking_a_role_again_replaces_the_dataset(store: Store) -> None:
    run = _run(store)
    store.upsert_dataset("1" * 64, "a.csv", 1, None)
    store.upsert_dataset("2" * 64, "b.csv", 1, None)
    store.link_run_dataset(run.id, "train", "1" * 64)
    store.link_run_dataset(run.id, "train", "2" * 64)
    assert store.run_datasets(run.id)["train"].source_uri == "b.csv"


def test_run_errors_name_the_problem(store: Store) -> None:
    run = _run(store)
    with pytest.raises(NotFoundError, match=f"no run 'missing'. Recent runs: {run.id}."):
        store.get_run("missing")
    with pytest.raises(NotFoundError, match="upsert_dataset"):
        store.link_run_dataset(run.id, "train", FP)
    with pytest.raises(UsageError, match="'holdout' is not one of train, val, test, source"):
        store.link_run_dataset(run.id, "holdout", FP)
    with pytest.raises(UsageError, match="metric 'loss' at epoch 3 is NaN"):
        store.add_run_metrics(run.id, 3, {"loss": float("nan")})
    with pytest.raises(UsageError, match="not 'running'"):
        store.finish_run(run.id, "running")
    with pytest.raises(UsageError, match="world_size must be 1 or more"):
        store.create_run("m", {}, 0, "runs/y", {}, None)
    store.finish_run(run.id, "failed", error="rank 1 crashed")
    with pytest.raises(UsageError, match="already finished as 'failed'"):
        store.finish_run(run.id, "succeeded")
    for call in (store.run_metrics, store.run_datasets):
        with pytest.raises(NotFoundError):
            call("missing")


def test_records_are_frozen_copies(store: Store) -> None:
    params = {"lr": 0.1}
    run = store.create_run("m", params, 1, "runs/z", {}, None)
    params["lr"] = 99.0
    run.params["lr"] = 42.0
    assert store.get_run(run.id).params == {"lr": 0.1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "failed"  # type: ignore[misc]


# -- versions ----------------------------------------------------------------------------------


def test_versions_count_per_model(store: Store) -> None:
    run = _run(store)
    a1 = _version(store, "a", run_id=run.id)
    a2 = _version(store, "a", parent_id=a1.id, description="retrained")
    b1 = _version(store, "b")
    assert [(v.model_name, v.version) for v in (a1, a2, b1)] == [("a", 1), ("a", 2), ("b", 1)]
    assert store.get_version("a") == a2
    assert store.get_version("a", 1) == a1
    assert a1.run_id == run.id and a2.parent_id == a1.id and a2.description == "retrained"
    assert a1.created_at.tzinfo == timezone.utc
    assert store.list_versions("a") == [a1, a2]
    assert store.list_versions() == [a1, a2, b1]
    assert store.model_names() == ["a", "b"]


def test_missing_versions_name_what_exists(store: Store) -> None:
    with pytest.raises(NotFoundError, match=r"^no model named 'x'. No models are registered yet.$"):
        store.get_version("x")
    for _ in range(3):
        _version(store, "churn")
    _version(store, "fraud")
    expected = "model 'churn' has no version 7. Versions: 1, 2, 3."
    with pytest.raises(NotFoundError, match=f"^{re.escape(expected)}$"):
        store.get_version("churn", 7)
    with pytest.raises(NotFoundError, match=r"^no model named 'x'. Models: churn, fraud.$"):
        store.get_version("x", 1)


def test_add_version_checks_references(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        _version(store, run_id="nope")
    with pytest.raises(NotFoundError, match="parent version id 5 does not exist"):
        _version(store, parent_id=5)
    assert store.list_versions() == []


def test_the_audit_hook_commits_or_fails_with_the_version(store: Store) -> None:
    seen: list[int] = []

    def hook(session: Session, version: VersionRecord) -> None:
        seen.append(version.version)
        assert session.get(ModelVersion, version.id) is not None

    _version(store, audit=hook)
    assert seen == [1]

    def failing(session: Session, version: VersionRecord) -> None:
        raise UsageError("audit refused")

    with pytest.raises(UsageError, match="audit refused"):
        _version(store, audit=failing)
    assert [v.version for v in store.list_versions()] == [1]


# -- transactions ------------------------------------------------------------------------------


def test_session_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Dataset(fingerprint=FP, source_uri="a", rows=1, columns=None))
        s.flush()
        raise RuntimeError("boom")
    with store.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 0


def test_transact_retries_unique_collisions_only(store: Store) -> None:
    store.upsert_dataset(FP, "a.csv", 1, None)
    calls: list[int] = []

    def collide_once(session: Session) -> str:
        calls.append(1)
        if len(calls) == 1:  # as if another process inserted the same key first
            session.add(Dataset(fingerprint=FP, source_uri="b.csv", rows=1, columns=None))
            session.flush()
        return "done"

    assert store.transact(collide_once) == "done"
    assert len(calls) == 2

    def always_collide(session: Session) -> None:
        session.add(Dataset(fingerprint=FP, source_uri="b.csv", rows=1, columns=None))
        session.flush()

    with pytest.raises(DriftloopError, match="gave up after 3 attempts"):
        store.transact(always_collide, attempts=3)

    calls.clear()

    def foreign_key_violation(session: Session) -> None:
        calls.append(1)
        session.add(RunMetric(run_id="nope", epoch=0, name="loss", value=1.0))
        session.flush()

    with pytest.raises(sa_exc.IntegrityError, match="FOREIGN KEY"):
        store.transact(foreign_key_violation)
    assert len(calls) == 1


def test_readers_do_not_wait_for_a_writer_in_another_connection(store: Store, db_url: str) -> None:
    _version(store)
    with Store(db_url) as other, other.session() as writing:
        writing.add(Dataset(fingerprint=FP, source_uri="a", rows=1, columns=None))
        writing.flush()  # holds the write lock until the block ends
        started = time.perf_counter()
        assert store.get_version("churn").version == 1
        assert store.list_versions() and store.model_names() == ["churn"]
        assert time.perf_counter() - started < 5


def test_the_public_names_are_pinned() -> None:
    import driftloop.store

    assert sorted(driftloop.store.__all__) == [
        "ALIAS_ACTIONS", "AliasMoveRecord", "AliasMoved", "AliasRecord", "Anchor",
        "ArtifactStore", "AuditHook", "AuditLog", "AuditRecord", "ChainReport", "DATASET_ROLES",
        "DatasetRecord", "EventHook", "EvidenceCursor", "FeatureViewRecord", "GENESIS_HASH",
        "MaterializationRecord", "MoveHook", "OnlineFeatureRecord",
        "REPORT_KINDS", "RUN_STATUSES", "ReportRecord", "RolloutEvidence", "RolloutRecord",
        "RunRecord", "Store", "VersionRecord", "canonical_json", "entry_hash",
        "pseudonymous_actor", "utcnow",
    ]  # fmt: skip
