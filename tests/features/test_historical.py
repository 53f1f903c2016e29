"""The point-in-time join: no value known after a row's time reaches it, TTL gives missing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.errors import DataError, UsageError
from driftloop.features.historical import ViewFrame, join_as_of

DAY = 86_400


def _view(table, *, created="cr", ttl=None, features=("x",), name="v", keys=("id",)):
    return ViewFrame(name=name, keys=list(keys), event_time="ev", created_time=created,
                     ttl_seconds=ttl, features=list(features), table=table)


def _rows(ids, times):
    return pd.DataFrame({"id": ids, "t": pd.to_datetime(times), "label": range(len(ids))})


def test_a_value_whose_event_time_is_after_the_row_never_reaches_it():
    src = pd.DataFrame({"id": ["a", "a"], "ev": ["2024-01-01", "2024-01-03"], "x": [1.0, 2.0]})
    rows = _rows(["a", "a", "a"], ["2024-01-02", "2024-01-03", "2023-12-31"])
    out = join_as_of(rows, [_view(src, created=None)], time_column="t").frame
    # The row at exactly the event time gets it (<=); the row before any event gets nothing.
    assert out["x"].tolist()[:2] == [1.0, 2.0]
    assert math.isnan(out["x"].iloc[2])


def test_a_back_filled_value_leaks_only_with_the_guard_off():
    # Day 2's value was first written on day 10 (a back-fill): a row on day 5 must not see it.
    src = pd.DataFrame({"id": ["a", "a"], "ev": ["2024-01-01", "2024-01-02"],
                        "cr": ["2024-01-01", "2024-01-10"], "x": [1.0, 2.0]})
    rows = _rows(["a", "a"], ["2024-01-05", "2024-01-11"])
    guarded = join_as_of(rows, [_view(src)], time_column="t").frame
    assert guarded["x"].tolist() == [1.0, 2.0]
    open_ = join_as_of(rows, [_view(src)], time_column="t", leak_guard=False).frame
    assert open_["x"].tolist() == [2.0, 2.0]


def test_a_late_correction_of_an_old_event_does_not_beat_a_newer_event():
    # Event day 1 corrected on day 20; event day 10 written on day 10. On day 25 both are
    # known: the newest event (day 10) wins, though the correction was written later.
    src = pd.DataFrame({"id": ["a", "a", "a"], "ev": ["2024-01-01", "2024-01-10", "2024-01-01"],
                        "cr": ["2024-01-01", "2024-01-10", "2024-01-20"], "x": [1.0, 10.0, 1.5]})
    rows = _rows(["a", "a"], ["2024-01-25", "2024-01-05"])
    assert join_as_of(rows, [_view(src)], time_column="t").frame["x"].tolist() == [10.0, 1.0]


def test_ttl_expiry_gives_missing_not_an_older_value():
    src = pd.DataFrame({"id": ["a", "a"], "ev": ["2024-01-01", "2024-01-05"], "x": [1.0, 5.0]})
    rows = _rows(["a", "a", "a"], ["2024-01-06", "2024-01-08", "2024-01-09"])
    result = join_as_of(rows, [_view(src, created=None, ttl=3 * DAY)], time_column="t")
    x = result.frame["x"].tolist()
    assert x[:2] == [5.0, 5.0]  # exactly ttl old is still valid
    assert math.isnan(x[2])
    assert result.missing == {"v": {"x": 1}}


def test_ties_take_the_latest_created_then_the_last_source_row():
    src = pd.DataFrame({"id": ["a"] * 4, "ev": ["2024-01-01"] * 4,
                        "cr": ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-01"],
                        "x": [1.0, 2.0, 3.0, 4.0]})
    rows = _rows(["a"], ["2024-01-03"])
    assert join_as_of(rows, [_view(src)], time_column="t").frame["x"].tolist() == [3.0]
    no_created = src.drop(columns="cr")
    assert join_as_of(rows, [_view(no_created, created=None)],
                      time_column="t").frame["x"].tolist() == [4.0]


def test_missing_keys_and_times_give_missing_features_and_row_order_is_kept():
    src = pd.DataFrame({"id": [1, 2, 3], "ev": ["2024-01-01"] * 3, "x": [1, 2, 3]})
    rows = pd.DataFrame({"id": [3, None, 1, 2, 9], "t": ["2024-02-01", "2024-02-01", None,
                                                         "2024-02-01", "2024-02-01"]},
                        index=[10, 11, 12, 13, 14])
    result = join_as_of(rows, [_view(src, created=None)], time_column="t")
    assert list(result.frame.index) == [10, 11, 12, 13, 14]
    assert result.frame["id"].tolist()[0] == 3
    assert result.frame["x"].fillna(-1).tolist() == [3, -1, -1, 2, -1]
    assert result.missing == {"v": {"x": 3}}


def test_keys_match_as_text_and_times_compare_as_utc():
    src = pa.table({"id": ["7"], "ev": ["2024-01-01T12:00:00+02:00"], "x": [1.0]})
    rows = pd.DataFrame({"id": [7.0, 7.0], "t": ["2024-01-01T10:00:00", "2024-01-01T09:59:59"]})
    out = join_as_of(rows, [_view(src, created=None)], time_column="t").frame
    assert out["x"].fillna(-1).tolist() == [1.0, -1]


def test_several_views_and_composite_keys():
    a = pd.DataFrame({"id": ["u", "u"], "shop": [1, 2], "ev": ["2024-01-01"] * 2,
                      "x": [1.0, 2.0]})
    b = pd.DataFrame({"id": ["u"], "ev": ["2024-01-01"], "y": ["blue"]})
    rows = pd.DataFrame({"id": ["u", "u"], "shop": [2, 1], "t": ["2024-01-02"] * 2})
    out = join_as_of(rows, [_view(a, created=None, keys=("id", "shop")),
                            _view(b, created=None, features=("y",), name="w")],
                     time_column="t").frame
    assert out["x"].tolist() == [2.0, 1.0]
    assert out["y"].tolist() == ["blue", "blue"]


def test_clashing_names_and_missing_columns_are_one_clear_error():
    src = pd.DataFrame({"id": ["a"], "ev": ["2024-01-01"], "x": [1.0]})
    rows = _rows(["a"], ["2024-01-02"])
    with pytest.raises(UsageError, match="'x' of view w clashes with 'x' of view v"):
        join_as_of(rows, [_view(src, created=None), _view(src, created=None, name="w")],
                   time_column="t")
    with pytest.raises(UsageError, match="'label' of view v clashes with 'label' of the rows"):
        join_as_of(rows, [_view(src.rename(columns={"x": "label"}), created=None,
                                features=("label",))], time_column="t")
    with pytest.raises(DataError, match="no time column 'when'"):
        join_as_of(rows, [_view(src, created=None)], time_column="when")
    with pytest.raises(DataError, match="view v: the rows have no entity key column 'cid'"):
        join_as_of(rows, [_view(src, created=None, keys=("cid",))], time_column="t")
    with pytest.raises(DataError, match="view v: its source has no column 'cr'"):
        join_as_of(rows, [_view(src)], time_column="t")
    with pytest.raises(DataError, match="holds numbers, not times"):
        join_as_of(rows.assign(t=[5]), [_view(src, created=None)], time_column="t")


def _reference(rows, src, *, ttl, guard):
    """The semantics, one row at a time, for comparison."""
    out = []
    for key, t in zip(rows["id"], rows["t"], strict=True):
        best = None
        for s, (k, e, c, x) in enumerate(zip(src["id"], src["ev"], src["cr"], src["x"],
                                             strict=True)):
            if k != key or e > t or (guard and c > t):
                continue
            rank = (e, c, s)
            if best is None or rank > best[0]:
                best = (rank, x)
        if best is None or (ttl is not None and best[0][0] < t - pd.Timedelta(seconds=ttl)):
            out.append(None)
        else:
            out.append(best[1])
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), guard=st.booleans(),
       ttl=st.sampled_from([None, 1 * DAY, 3 * DAY]))
def test_the_join_matches_a_row_by_row_reference(seed, guard, ttl):
    rng = np.random.default_rng(seed)
    n_src, n_rows = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    start = pd.Timestamp("2024-01-01")
    ev = start + pd.to_timedelta(rng.integers(0, 10, n_src), unit="D")
    src = pd.DataFrame({"id": rng.choice(["a", "b", "c"], n_src), "ev": ev,
                        "cr": ev + pd.to_timedelta(rng.integers(0, 4, n_src), unit="D"),
                        "x": rng.integers(0, 5, n_src).astype(float)})
    rows = pd.DataFrame({"id": rng.choice(["a", "b", "d"], n_rows),
                         "t": start + pd.to_timedelta(rng.integers(0, 14, n_rows), unit="D")})
    got = join_as_of(rows, [_view(src, ttl=ttl)], time_column="t", leak_guard=guard).frame
    want = _reference(rows, src, ttl=ttl, guard=guard)
    assert [None if math.isnan(v) else v for v in got["x"]] == want
