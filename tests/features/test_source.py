"""Reading a view's source: a file or a folder of files, every declared column checked."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.config import EntitySettings, FeatureViewSettings
from driftloop.errors import DataError
from driftloop.features.source import read_view_source

ENTITY = EntitySettings(name="customer", keys=["customer_id"])


def _view(source, **extra):
    return FeatureViewSettings(name="stats", entity="customer", source=str(source),
                               event_time="ts", features=["spend"], **extra)


def test_a_folder_of_csv_and_parquet_files_is_read_in_name_order(tmp_path):
    pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"], "spend": [1.0],
                  "other": [0]}).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "sub").mkdir()
    pd.DataFrame({"customer_id": [2], "ts": ["2024-01-02"], "spend": [2.0]}).to_parquet(
        tmp_path / "sub" / "b.parquet")
    (tmp_path / "notes.txt").write_text("not a table")
    frame = read_view_source(_view(tmp_path, ttl="7d"), ENTITY)
    assert frame.table["spend"].tolist() == [1.0, 2.0]
    assert list(frame.table.columns) == ["customer_id", "ts", "spend"]
    assert (frame.ttl_seconds, frame.created_time) == (7 * 86_400, None)


def test_a_missing_column_names_the_view_and_the_column(tmp_path):
    pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"]}).to_csv(tmp_path / "s.csv",
                                                                   index=False)
    with pytest.raises(DataError, match=r"view stats: .*s\.csv has no column 'cr', 'spend'"):
        read_view_source(_view(tmp_path / "s.csv", created_time="cr"), ENTITY)


def test_a_missing_file_or_an_empty_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_view_source(_view(tmp_path / "nope.csv"), ENTITY)
    with pytest.raises(DataError, match="holds no CSV or Parquet file"):
        read_view_source(_view(tmp_path), ENTITY)


def _stats_frame() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1, 1, 2], "ts": pd.to_datetime(
        ["2024-01-01", "2024-01-05", "2024-01-02"]), "spend": [1.0, 5.0, 2.0], "other": [0, 0, 0]})


def _table_view(**extra):
    return FeatureViewSettings(name="stats", entity="customer", table="customer_stats",
                               event_time="ts", features=["spend"], **extra)


def test_a_sql_table_source_joins_like_the_same_rows_in_a_file(tmp_path, store_url):
    """A view over a table of the store's database (SQLite or, in the PostgreSQL pass, a real
    server), read by reflection: the same join as the same rows in a Parquet file."""
    from sqlalchemy import create_engine

    from driftloop.features.historical import join_as_of
    from driftloop.store.engine import make_engine

    engine = make_engine(store_url)
    _stats_frame().to_sql("customer_stats", engine, index=False)
    engine.dispose()
    _stats_frame().to_parquet(tmp_path / "stats.parquet")
    rows = pd.DataFrame({"customer_id": [1, 1, 2, 3],
                         "at": pd.to_datetime(["2024-01-03", "2024-01-06", "2024-01-02",
                                               "2024-01-09"])})
    from_table = read_view_source(_table_view(), ENTITY, store_url)
    from_file = read_view_source(_view(tmp_path / "stats.parquet"), ENTITY)
    assert list(from_table.table.columns) == ["customer_id", "ts", "spend"]
    joined = join_as_of(rows, [from_table], time_column="at").frame
    pd.testing.assert_frame_equal(joined, join_as_of(rows, [from_file], time_column="at").frame)
    assert joined["spend"].tolist()[:3] == [1.0, 5.0, 2.0]

    with pytest.raises(DataError, match="has no table nowhere"):
        read_view_source(_table_view().model_copy(update={"table": "nowhere"}), ENTITY,
                         store_url)
    with pytest.raises(DataError, match="table customer_stats has no column 'cr'"):
        read_view_source(_table_view(created_time="cr"), ENTITY, store_url)
    secret = "sqlite:///" + str(tmp_path / "other.db")
    create_engine(secret).dispose()
    with pytest.raises(DataError, match="has no table customer_stats"):
        read_view_source(_table_view(database_url=secret), ENTITY, store_url)


def test_a_view_names_exactly_one_source_and_its_spec_hides_a_password():
    from pydantic import ValidationError

    from driftloop.config import FeatureSettings
    from driftloop.features.spec import view_spec

    with pytest.raises(ValidationError, match="exactly one"):
        FeatureViewSettings(name="s", entity="customer", event_time="ts", features=["a"])
    with pytest.raises(ValidationError, match="exactly one"):
        _table_view(source="x.csv")
    with pytest.raises(ValidationError, match="table"):
        _table_view().model_copy(update={}).model_validate(
            {**_table_view().model_dump(), "table": "x; drop table y"})
    settings = FeatureSettings(entities=[ENTITY], views=[_table_view(
        database_url="postgresql://bob:secret@db/warehouse")])
    spec = view_spec(settings, "stats")
    assert spec["view"]["database_url"] == "postgresql://bob:***@db/warehouse"
