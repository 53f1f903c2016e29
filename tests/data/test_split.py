from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.data.split import SplitIndices, split_rows
from driftloop.errors import DataError


def assert_partition(split: SplitIndices, n: int) -> None:
    parts = [split.train, split.val, split.test]
    for part in parts:
        assert part.dtype == np.int64 and len(part) > 0
        assert np.all(np.diff(part) > 0)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))


@given(
    n=st.integers(3, 400),
    seed=st.integers(0, 2**32 - 1),
    val_fraction=st.floats(0.01, 0.45),
    test_fraction=st.floats(0.01, 0.45),
)
@settings(max_examples=60, deadline=None)
def test_random_split_is_a_partition(
    n: int, seed: int, val_fraction: float, test_fraction: float
) -> None:
    try:
        split = split_rows(n, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    except DataError as exc:  # too few rows for three non-empty splits
        assert "Cannot split" in str(exc)
        return
    assert_partition(split, n)


@given(n=st.integers(9, 200), seed=st.integers(0, 1000), n_classes=st.integers(2, 3))
@settings(max_examples=40, deadline=None)
def test_stratified_split_is_a_partition(n: int, seed: int, n_classes: int) -> None:
    labels = np.arange(n) % n_classes
    split = split_rows(n, seed=seed, val_fraction=0.2, test_fraction=0.2, stratify=labels)
    assert_partition(split, n)


def test_same_seed_same_split_other_seed_other_split() -> None:
    first = split_rows(100, seed=7, val_fraction=0.15, test_fraction=0.15)
    again = split_rows(100, seed=7, val_fraction=0.15, test_fraction=0.15)
    other = split_rows(100, seed=8, val_fraction=0.15, test_fraction=0.15)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.test, other.test)


def test_fractions_set_split_sizes() -> None:
    split = split_rows(1000, seed=0, val_fraction=0.1, test_fraction=0.25)
    assert (len(split.train), len(split.val), len(split.test)) == (650, 100, 250)


def test_frame_argument_splits_its_rows() -> None:
    split = split_rows(pd.DataFrame({"a": range(20)}), seed=0, val_fraction=0.2, test_fraction=0.2)
    assert_partition(split, 20)


def test_stratification_keeps_class_shares() -> None:
    labels = np.array(["rare"] * 20 + ["common"] * 180)
    split = split_rows(200, seed=3, val_fraction=0.2, test_fraction=0.2, stratify=labels)
    for part, size in ((split.val, 40), (split.test, 40)):
        assert len(part) == size
        assert np.sum(labels[part] == "rare") == 4


def test_stratification_falls_back_to_random_for_tiny_classes() -> None:
    labels = ["a"] * 18 + ["b"] * 2
    split = split_rows(20, seed=0, val_fraction=0.2, test_fraction=0.2, stratify=labels)
    plain = split_rows(20, seed=0, val_fraction=0.2, test_fraction=0.2)
    assert np.array_equal(split.test, plain.test)


def test_time_split_never_puts_a_newer_row_in_train() -> None:
    rng = np.random.default_rng(0)
    times = pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 30, 300), "D"))
    split = split_rows(300, seed=0, val_fraction=0.15, test_fraction=0.15, time_values=times)
    assert_partition(split, 300)
    assert times[split.train].max() < times[split.val].min()
    assert times[split.val].max() < times[split.test].min()


def test_time_split_gives_ties_to_the_later_split() -> None:
    times = [1, 2, 3, 4, 5, 6, 7, 8, 8, 8]
    split = split_rows(10, seed=0, val_fraction=0.1, test_fraction=0.1, time_values=times)
    assert split.test.tolist() == [7, 8, 9]
    assert split.val.tolist() == [6]


def test_time_split_parses_date_strings_in_any_row_order() -> None:
    days = ["2024-03-05", "2024-01-01", "2024-02-10", "2024-01-15", "2024-03-01"] * 4
    split = split_rows(20, seed=0, val_fraction=0.2, test_fraction=0.2, time_values=days)
    assert sorted({days[i] for i in split.test}) == ["2024-03-05"]
    assert sorted({days[i] for i in split.val}) == ["2024-03-01"]


def test_time_split_reads_non_iso_dates() -> None:
    days = pd.Series(["March 3 2024", "Jan 5 2024", "Feb 1 2024", "Jan 9 2024", "Feb 20 2024"])
    split = split_rows(5, seed=0, val_fraction=0.2, test_fraction=0.2, time_values=days)
    assert split.test.tolist() == [0] and split.val.tolist() == [4]


def test_unparseable_time_names_row_and_value() -> None:
    times = pd.Series(["2024-01-01", "2024-01-02", "yesterday", "2024-01-04"], name="when")
    with pytest.raises(DataError, match="time column 'when', row 2: value 'yesterday' cannot"):
        split_rows(4, seed=0, val_fraction=0.25, test_fraction=0.25, time_values=times)


def test_missing_time_is_named() -> None:
    times = pd.Series([1.0, 2.0, None, 4.0], name="t")
    with pytest.raises(DataError, match="time column 't' is missing in row 2"):
        split_rows(4, seed=0, val_fraction=0.25, test_fraction=0.25, time_values=times)


def test_time_split_with_one_time_is_empty() -> None:
    with pytest.raises(DataError, match="10 rows with 1 distinct times leaves val and train empty"):
        split_rows(10, seed=0, val_fraction=0.2, test_fraction=0.2, time_values=[5] * 10)


def test_group_split_keeps_groups_whole() -> None:
    groups = np.repeat([f"patient{i}" for i in range(30)], np.arange(1, 31))
    n = len(groups)
    split = split_rows(n, seed=4, val_fraction=0.2, test_fraction=0.2, group_values=groups)
    assert_partition(split, n)
    seen = [set(groups[part]) for part in (split.train, split.val, split.test)]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert (len(seen[1]), len(seen[2])) == (6, 6)
    again = split_rows(n, seed=4, val_fraction=0.2, test_fraction=0.2, group_values=groups)
    assert np.array_equal(split.val, again.val)


def test_too_few_groups_is_explained() -> None:
    groups = pd.Series(["a", "b"] * 10, name="site")
    with pytest.raises(DataError, match="at least 3 groups.*'site' has 2 across 20 rows"):
        split_rows(20, seed=0, val_fraction=0.2, test_fraction=0.2, group_values=groups)


def test_missing_group_is_named() -> None:
    groups = pd.Series(["a", "b", None, "c"], name="site")
    with pytest.raises(DataError, match="group column 'site' is missing in row 2"):
        split_rows(4, seed=0, val_fraction=0.25, test_fraction=0.25, group_values=groups)


def test_too_few_rows_is_explained() -> None:
    with pytest.raises(DataError, match="Cannot split 2 rows into non-empty train, val and test"):
        split_rows(2, seed=0, val_fraction=0.2, test_fraction=0.2)


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.2, 1.0), (0.5, 0.5), (-0.1, 0.2)])
def test_bad_fractions_are_refused(val: float, test: float) -> None:
    with pytest.raises(DataError, match="fraction"):
        split_rows(100, seed=0, val_fraction=val, test_fraction=test)


def test_time_and_group_together_are_refused() -> None:
    with pytest.raises(DataError, match="not both"):
        split_rows(
            4,
            seed=0,
            val_fraction=0.25,
            test_fraction=0.25,
            time_values=[1, 2, 3, 4],
            group_values=[1, 2, 3, 4],
        )


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(DataError, match="stratify values have 3 entries but there are 4 rows"):
        split_rows(4, seed=0, val_fraction=0.25, test_fraction=0.25, stratify=[0, 1, 0])
