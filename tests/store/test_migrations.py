from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from driftloop.errors import ConfigError, UsageError
from driftloop.store import Store, utcnow
from driftloop.store.migrate import MIGRATIONS_DIR, alembic_config, new_revision
from driftloop.store.tables import Base


@pytest.fixture
def db_url(store_url: str) -> str:
    return store_url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


def test_upgrade_creates_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert store.schema_revision() == Store.head_revision() == "0012"


def test_migrated_database_matches_the_models_exactly(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_a_fresh_store_is_not_migrated_until_upgrade(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.schema_revision() is None
        store.upgrade()
        store.upgrade()
        assert store.schema_revision() == Store.head_revision()


def test_reopening_keeps_the_data(db_url: str) -> None:
    with Store.open(db_url) as first:
        run = first.create_run("churn", {"lr": 0.1}, 2, "runs/a", {"torch": "2.4"}, "abc")
        first.add_version("churn", run.id, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
    with Store.open(db_url) as second:
        assert second.get_run(run.id) == run
        assert [v.version for v in second.list_versions("churn")] == [1]
        assert second.schema_revision() == Store.head_revision()


def test_downgrade_to_base_and_upgrade_again(store: Store) -> None:
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    store.upgrade()
    assert set(inspect(store.engine).get_table_names()) >= set(Base.metadata.tables)


def test_a_store_written_by_a_newer_driftloop_is_refused(db_url: str) -> None:
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(UsageError, match=r"schema revision '9999'.*Upgrade driftloop"):
        Store.open(db_url)


def test_sqlite_file_uses_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'home' / 'driftloop.db'}"
    with Store.open(db_url) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    assert Path(db_url.removeprefix("sqlite:///")).parent.is_dir()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a SQLAlchemy URL"),
        ("nosuchdb://host/x", "does not know"),
    ],
)
def test_bad_store_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Store(url)


def test_an_unusable_location_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot create the folder"):
        Store.open(f"sqlite:///{blocker / 'driftloop.db'}")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot open the store"):
        Store.open(f"sqlite:///{folder}")  # a folder is not a database file


def test_new_revision_finds_nothing_to_change(tmp_path: Path) -> None:
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    path = new_revision("nothing changed", script_location=location)
    assert path.name == "0013_nothing_changed.py"
    source = path.read_text()
    assert "down_revision = '0012'" in source
    upgrade_body = source.split("def upgrade()")[1].split("def downgrade()")[0]
    assert "op." not in upgrade_body


def test_the_comparison_does_notice_a_difference(store: Store) -> None:
    from sqlalchemy import Column, MetaData, String

    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["runs"].append_column(Column("owner", String(64)))
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), changed)
    assert [(d[0], d[3].name) for d in diffs] == [("add_column", "owner")]


_INSERT_LOG_ROW = text(  # a row as the releases before 0009 wrote it (no replica)
    "INSERT INTO prediction_log (request_id, model_name, version, at, features, output) "
    "VALUES (:request_id, :model_name, :version, :at, :features, :output)")


def _log_row(i: int, model: str = "m") -> dict:
    return {"request_id": f"r{i}", "model_name": model, "version": 1,
            "at": "2026-01-01 00:00:00", "features": "{}", "output": "{}"}


def test_upgrading_0005_keeps_windowed_rows_windowed_and_dedupes(db_url: str) -> None:
    """A store written by the previous release (0005): its windowed rows are claimed by their
    windows, a duplicated window and alert (two monitors at once) and a key name held twice
    by active keys are resolved, and nothing else changes."""
    with Store(db_url) as store:
        with store.engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005")
        with store.engine.begin() as conn:
            conn.execute(_INSERT_LOG_ROW, [_log_row(i) for i in range(1, 8)])
            window = ("INSERT INTO monitor_windows (model_name, version, first_log_id, "
                      "last_log_id, start_at, end_at, rows, status, drift_detected, "
                      "prediction_drift, report, estimated, created_at) VALUES ('m', 1, 1, 5, "
                      "'2026-01-01', '2026-01-01', 5, 'ok', false, false, '{}', '{}', "
                      "'2026-01-01')")
            conn.execute(text(window))
            conn.execute(text(window))  # the same window twice: two monitors raced
            for window_id in (1, 1, 2):
                conn.execute(text(
                    "INSERT INTO alerts (model_name, window_id, kind, message, details, "
                    f"deliveries, at) VALUES ('m', {window_id}, 'dataset_drift', 'x', '{{}}', "
                    "'[]', '2026-01-01')"))
            for i, name in enumerate(["ci", "ci", "ops"]):
                conn.execute(text(
                    "INSERT INTO api_keys (name, prefix, key_sha256, role, created_at) VALUES "
                    f"('{name}', 'p{i}', '{i:064d}', 'predict', '2026-01-01')"))
        store.upgrade()
        assert store.schema_revision() == Store.head_revision()
        assert [r.id for r in store.unwindowed_predictions("m")] == [6, 7]
        assert [r.id for r in store.window_predictions(1)] == [1, 2, 3, 4, 5]
        assert [w.id for w in store.list_windows("m")] == [1]
        assert [(a.window_id, a.kind) for a in store.list_alerts("m")] == [(1, "dataset_drift")]
        assert sorted(k.name for k in store.list_api_keys()) == ["ci", "ci#2", "ops"]


def test_log_ids_are_64_bit(db_url: str, store_backend: str) -> None:
    with Store.open(db_url) as store:
        if store_backend == "postgresql":  # SQLite's INTEGER is 64-bit already
            with store.engine.begin() as conn:
                conn.execute(text("SELECT setval('prediction_log_id_seq', 3000000000)"))
        store.add_predictions([{"request_id": "big", "model_name": "m", "version": 1,
                                "at": utcnow(), "features": {}, "output": {}}])
        [row] = store.list_predictions("m")
        assert row.id == (3000000001 if store_backend == "postgresql" else 1)
        assert [r.id for r in store.unwindowed_predictions("m")] == [row.id]


def test_upgrading_0006_keeps_keys_and_allows_the_read_and_feedback_roles(db_url: str) -> None:
    with Store(db_url) as store:
        with store.engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0006")
        with store.engine.begin() as conn:
            for i, (name, revoked) in enumerate([("ci", "'2026-01-02'"), ("ci", "NULL")]):
                conn.execute(text(
                    "INSERT INTO api_keys (name, prefix, key_sha256, role, created_at, "
                    f"revoked_at) VALUES ('{name}', 'p{i}', '{i:064d}', 'predict', "
                    f"'2026-01-01', {revoked})"))
        store.upgrade()
        assert [(k.name, k.role, k.active) for k in store.list_api_keys(include_revoked=True)] \
            == [("ci", "predict", False), ("ci", "predict", True)]
        store.add_api_key("dash", "read", prefix="r1", key_sha256="a" * 64)
        store.add_api_key("labels", "feedback", prefix="f1", key_sha256="b" * 64)
        with pytest.raises(UsageError, match="ci"):  # one active key per name, still enforced
            store.add_api_key("ci", "admin", prefix="a1", key_sha256="c" * 64)
        with pytest.raises(UsageError, match="role"):
            store.add_api_key("x", "root", prefix="x1", key_sha256="d" * 64)


def test_upgrading_0008_adds_reload_signals_and_keeps_log_rows_without_a_replica(
        db_url: str) -> None:
    with Store(db_url) as store:
        with store.engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0008")
        with store.engine.begin() as conn:
            conn.execute(_INSERT_LOG_ROW, [_log_row(1)])
        store.upgrade()
        assert [(r.request_id, r.replica) for r in store.list_predictions("m")] == [("r1", None)]
        assert store.signal_reload(["m"], actor="ops") == {"m": 1}
