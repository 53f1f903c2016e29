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
