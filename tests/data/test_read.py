from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.data.read import read_arrays, read_table
from driftloop.errors import DataError

TABLE = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, None, 1.5]})


@pytest.mark.parametrize("name", ["t.csv", "t.CSV", "t.csv.gz", "t.tsv", "t.parquet", "t.pq"])
def test_read_table_reads_every_supported_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    lower = name.lower()
    if lower.endswith((".parquet", ".pq")):
        TABLE.to_parquet(path)
    else:
        TABLE.to_csv(path, index=False, sep="\t" if lower.endswith(".tsv") else ",")
    table = read_table(path)
    assert table.uri == "file://" + str(path.resolve())
    assert table.frame["a"].tolist() == [1, 2, 3]
    assert table.frame["b"].tolist() == ["x", "y", "z"]
    assert np.isnan(table.frame["c"].iloc[1])
    assert isinstance(table.frame.index, pd.RangeIndex)


def test_read_table_copies_a_dataframe_and_names_it_by_content() -> None:
    original = TABLE.copy()
    original.index = [10, 20, 30]
    table = read_table(original)
    table.frame.loc[0, "a"] = 99
    assert original["a"].tolist() == [1, 2, 3]
    assert table.uri.startswith("dataframe:") and len(table.uri) == len("dataframe:") + 16
    assert read_table(TABLE).uri == read_table(TABLE.copy()).uri
    assert read_table(TABLE).uri != read_table(TABLE.assign(a=[1, 2, 4])).uri
    assert table.frame.index.tolist() == [0, 1, 2]


def test_read_table_turns_column_names_into_strings() -> None:
    table = read_table(pd.DataFrame(np.ones((2, 2)), columns=[0, 1]))
    assert table.frame.columns.tolist() == ["0", "1"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_unknown_extension_lists_supported_ones(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("{}")
    with pytest.raises(DataError, match=r"data\.json: unknown file type.*\.csv.*\.parquet"):
        read_table(path)


def test_corrupt_parquet_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot be read as Parquet"):
        read_table(path)


def test_corrupt_gzip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match=r"broken\.csv\.gz: cannot be read as CSV"):
        read_table(path)


def test_ragged_csv_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match=r"ragged\.csv: cannot be read as CSV \(.*line 3"):
        read_table(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        read_table(path)


def test_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataError, match=r"header\.csv: has a header but zero data rows"):
        read_table(path)


def test_duplicate_csv_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"dup\.csv: duplicate column names: 'a'"):
        read_table(path)


def test_duplicate_dataframe_columns_are_named() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["x", "x"])
    with pytest.raises(DataError, match="duplicate column names: 'x'"):
        read_table(frame)


def test_empty_dataframe_is_refused() -> None:
    with pytest.raises(DataError, match="zero data rows"):
        read_table(pd.DataFrame({"a": []}))


def _npz(tmp_path: Path, name: str = "a.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_square_3d_arrays_are_images_with_one_channel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, X=rng.random((6, 5, 5)), y=np.arange(6))
    arrays = read_arrays(path)
    assert arrays.kind == "image"
    assert arrays.x.shape == (6, 1, 5, 5) and arrays.x.dtype == np.float32
    assert arrays.uri == "file://" + str(path.resolve())


def test_non_square_3d_arrays_are_sequences(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 7, 3), dtype=np.int16), y=np.arange(4))
    arrays = read_arrays(path)
    assert arrays.kind == "sequence" and arrays.x.shape == (4, 7, 3)
    assert arrays.x.dtype == np.float32


def test_4d_arrays_are_images(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 3, 8, 6)), y=np.arange(4))
    assert read_arrays(path).x.shape == (4, 3, 8, 6)


def test_kind_argument_beats_stored_kind_beats_shape(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 5, 5)), y=np.arange(4), kind=np.array("sequence"))
    assert read_arrays(path).kind == "sequence"
    assert read_arrays(path, kind="image").kind == "image"


def test_sequence_kind_on_4d_is_refused(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 1, 5, 5)), y=np.arange(4))
    with pytest.raises(DataError, match="4-D .*kind 'sequence' needs N×T×F"):
        read_arrays(path, kind="sequence")


def test_missing_y_is_named(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 5, 5)), labels=np.arange(4))
    with pytest.raises(DataError, match=r"a\.npz: array 'y' not found.*labels"):
        read_arrays(path)


def test_length_mismatch_is_named(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 5, 5)), y=np.arange(3))
    with pytest.raises(DataError, match="X has 4 samples but y has 3"):
        read_arrays(path)


def test_wrong_ndim_is_named(tmp_path: Path) -> None:
    path = _npz(tmp_path, X=np.zeros((4, 5)), y=np.arange(4))
    with pytest.raises(DataError, match=r"X has shape \(4, 5\) \(2-D\)"):
        read_arrays(path)


def test_non_finite_x_names_the_sample(tmp_path: Path) -> None:
    x = np.zeros((4, 5, 5))
    x[2, 1, 1] = np.inf
    path = _npz(tmp_path, X=x, y=np.arange(4))
    with pytest.raises(DataError, match="non-finite values .* in sample 2"):
        read_arrays(path)


def test_object_arrays_are_refused_without_pickle(tmp_path: Path) -> None:
    labels = np.array([{"a": 1}, None, 3, "x"], dtype=object)
    path = _npz(tmp_path, X=np.zeros((4, 5, 5)), y=labels)
    with pytest.raises(DataError, match="cannot be read as NPZ.*pickle"):
        read_arrays(path)


def test_arrays_need_an_npz_file(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(DataError, match=r"a\.npy: arrays must be an \.npz file"):
        read_arrays(path)
