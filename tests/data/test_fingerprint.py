from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.data.fingerprint import fingerprint_arrays, fingerprint_frame

URI = "file:///data/t.csv"


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
    digest = fingerprint_frame(base(), URI)
    assert digest == fingerprint_frame(base(), URI)
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
        assert fingerprint_frame(variant, URI) == fingerprint_frame(frame, URI)


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
    assert fingerprint_frame(change(base()), URI) != fingerprint_frame(base(), URI)  # type: ignore[operator]


def test_uri_is_part_of_the_fingerprint() -> None:
    assert fingerprint_frame(base(), URI) != fingerprint_frame(base(), URI + "?v=2")


def test_array_fingerprint_ignores_width_but_not_values_or_shape() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1])
    digest = fingerprint_arrays(x, y, URI)
    assert digest == fingerprint_arrays(x.astype(np.float64), y.astype(np.int8), URI)
    assert digest != fingerprint_arrays(x.reshape(5, 3, 2), y, URI)
    assert digest != fingerprint_arrays(x, y[::-1], URI)
    assert digest != fingerprint_arrays(x, y, "other")
    labels = np.array(["a", "b", "b", "a", "b"])
    assert fingerprint_arrays(x, labels, URI) == fingerprint_arrays(x, labels.copy(), URI)
    assert fingerprint_arrays(x, labels, URI) != fingerprint_arrays(x, labels[::-1], URI)
