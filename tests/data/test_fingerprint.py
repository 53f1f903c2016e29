from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.data.fingerprint import fingerprint_arrays, fingerprint_frame
from driftloop.data.read import read_table


def base() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": np.array([1, 2, 3], dtype="int64"),
            "f": [0.5, np.nan, -0.0],
            "s": ["a", None, "c"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )


def test_fingerprint_is_stable_and_hex() -> None:
    digest = fingerprint_frame(base())
    assert digest == fingerprint_frame(base())
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_storage_details_do_not_change_the_fingerprint() -> None:
    frame = base()
    variants = [
        frame.astype({"n": "int32"}),
        frame.astype({"n": "Int64"}),
        frame.astype({"n": "float64"}),
        frame[["t", "s", "b", "f", "n"]],
        frame.assign(f=[0.5, None, 0.0]),
        frame.assign(s=pd.Series(["a", None, "c"], dtype=object)),
        frame.assign(t=frame["t"].astype("datetime64[s]")),
        frame.set_axis([7, 8, 9]),
    ]
    for variant in variants:
        assert fingerprint_frame(variant) == fingerprint_frame(frame)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.iloc[::-1],
        lambda f: f.assign(n=[1, 2, 4]),
        lambda f: f.assign(f=[0.5, 0.0, 0.0]),
        lambda f: f.assign(s=["a", "", "c"]),
        lambda f: f.assign(s=["a", "None", "c"]),
        lambda f: f.assign(s=["ab", None, "c"]),
        lambda f: f.assign(b=[True, True, True]),
        lambda f: f.rename(columns={"n": "m"}),
        lambda f: f.assign(n=["1", "2", "3"]),
        lambda f: f.iloc[:2],
        lambda f: f.assign(t=pd.to_datetime(["2024-01-01", "2024-01-03", None])),
    ],
)
def test_content_changes_change_the_fingerprint(change: object) -> None:
    assert fingerprint_frame(change(base())) != fingerprint_frame(base())  # type: ignore[operator]


def test_where_the_data_came_from_is_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.0, None], "label": ["a", "b", "a"]})
    first, copy = tmp_path / "a" / "data.csv", tmp_path / "b" / "renamed.csv"
    for path in (first, copy):
        path.parent.mkdir()
        frame.to_csv(path, index=False)
    one, two = read_table(first), read_table(copy)
    assert one.uri != two.uri
    assert fingerprint_frame(one.frame) == fingerprint_frame(two.frame)
    assert read_table(frame).uri == read_table(frame.copy()).uri  # a DataFrame's too


def test_the_encoding_version_is_pinned() -> None:
    # changing the encoding must change this test (and the version tag hashed first)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert fingerprint_frame(frame)[:16] == "bc02180c6f4b2642"


def test_array_fingerprint_ignores_width_but_not_values_or_shape() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1])
    digest = fingerprint_arrays(x, y)
    assert digest == fingerprint_arrays(x.astype(np.float64), y.astype(np.int8))
    assert digest != fingerprint_arrays(x.reshape(5, 3, 2), y)
    assert digest != fingerprint_arrays(x, y[::-1])
    labels = np.array(["a", "b", "b", "a", "b"])
    assert fingerprint_arrays(x, labels) == fingerprint_arrays(x, labels.copy())
    assert fingerprint_arrays(x, labels) != fingerprint_arrays(x, labels[::-1])
