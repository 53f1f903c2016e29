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
from driftloop.store import Store
from driftloop.store.migrate import MIGRATIONS_DIR, alembic_config, new_revision
from driftloop.store.tables import Base


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'home' / 'driftloop.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store.open(db_url) as opened:
        yield opened


def test_upgrade_creates_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert store.schema_revision() == Store.head_revision() == "0005"


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


def test_sqlite_file_uses_wal_foreign_keys_and_a_busy_timeout(store: Store, db_url: str) -> None:
    with store.engine.connect() as conn:
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
    assert path.name == "0006_nothing_changed.py"
    source = path.read_text()
    assert "down_revision = '0005'" in source
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
