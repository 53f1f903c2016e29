"""Reference profiles: bins, categories, exact merges, JSON, and what counts as missing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.config import DriftSettings
from driftloop.errors import DataError, UsageError
from driftloop.monitor.profile import (
    FeatureProfile,
    Profile,
    build_reference,
    output_columns,
    profile_like,
)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "k": rng.poisson(3, n),
        "flag": rng.random(n) < 0.3,
        "city": rng.choice(["Oslo", "Rome", "Lima", None], n),
    })


@pytest.mark.parametrize("exact_max_rows", [0, 10_000])
def test_profile_of_a_and_b_is_the_merge_of_their_profiles(exact_max_rows):
    cfg = DriftSettings(exact_max_rows=exact_max_rows, max_categories=2)
    rng = np.random.default_rng(3)
    ref = build_reference(_table(3000, 0), outputs=rng.random(3000), output_names=["value"],
                          settings=cfg)
    a, b = _table(700, 1), _table(1300, 2)
    a.loc[0, "city"] = "Kyiv"  # a category the reference never saw: counted in "other"
    out_a, out_b = rng.random(len(a)), rng.random(len(b))
    whole = profile_like(ref, pd.concat([a, b], ignore_index=True),
                         outputs=np.concatenate([out_a, out_b]), settings=cfg)
    merged = profile_like(ref, a, outputs=out_a, settings=cfg).merge(
        profile_like(ref, b, outputs=out_b, settings=cfg))
    assert merged == whole  # counts, rows, missing, min/max and samples: exactly equal
    assert sum(whole.features["x"].counts) + whole.features["x"].missing == 2000
    assert (whole.features["x"].sample is None) == (exact_max_rows == 0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=60),
       st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=60),
       st.integers(0, 60))
def test_merge_is_exact_for_any_values_and_any_split(ref_values, values, cut):
    ref = build_reference(pd.DataFrame({"v": pd.Series(ref_values, dtype=float)}),
                          settings=DriftSettings(bins=7))
    frame = pd.DataFrame({"v": pd.Series(values, dtype=float)})
    cut = min(cut, len(frame))
    whole = profile_like(ref, frame)
    merged = profile_like(ref, frame.iloc[:cut]).merge(profile_like(ref, frame.iloc[cut:]))
    assert merged == whole


def test_reference_merge_combines_mean_and_std():
    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, 1000)
    edges_from = build_reference(pd.DataFrame({"x": values}))
    # two references over the same bins: the second built like a current profile, plus moments
    whole = edges_from.features["x"]
    assert whole.mean == pytest.approx(values.mean()) and whole.std == pytest.approx(values.std())
    half = profile_like(edges_from, pd.DataFrame({"x": values[:400]})).features["x"]
    assert half.mean is None  # current profiles carry counts only
    a = FeatureProfile(**{**half.__dict__, "mean": float(values[:400].mean()),
                          "std": float(values[:400].std())})
    rest = profile_like(edges_from, pd.DataFrame({"x": values[400:]})).features["x"]
    b = FeatureProfile(**{**rest.__dict__, "mean": float(values[400:].mean()),
                          "std": float(values[400:].std())})
    both = a.merge(b)
    assert both.counts == whole.counts
    assert both.mean == pytest.approx(values.mean()) and both.std == pytest.approx(values.std())


def test_merging_profiles_of_different_references_is_refused():
    a = build_reference(pd.DataFrame({"x": np.arange(100.0)}))
    b = build_reference(pd.DataFrame({"x": np.arange(100.0) * 2}))
    with pytest.raises(ValueError, match="same bins"):
        a.merge(b)
    with pytest.raises(ValueError, match="different features"):
        a.merge(build_reference(pd.DataFrame({"y": [1.0]})))


def test_quantile_bins_hold_equal_counts_and_guard_bins_take_what_lies_beyond():
    ref = build_reference(pd.DataFrame({"x": np.arange(1000.0)}), settings=DriftSettings(bins=10))
    feature = ref.features["x"]
    assert len(feature.edges) <= 11
    guard_below, *inner, guard_above = feature.counts
    assert guard_below == guard_above == 0  # no reference value lies outside its own range
    assert sum(inner) == 1000 and max(inner) - min(inner) <= 1  # equal-count quantile bins
    assert feature.edges[1] == 0.0 and feature.edges[-2] == np.nextafter(999.0, np.inf)
    cur = profile_like(ref, pd.DataFrame({"x": [-1e9, -1.0, 0.0, 999.0, 1e9]})).features["x"]
    assert cur.counts == [2, 1] + [0] * (len(inner) - 2) + [1, 1]
    assert (cur.minimum, cur.maximum) == (-1e9, 1e9)


def test_binary_discrete_and_constant_columns_keep_their_values_apart():
    frame = pd.DataFrame({
        "binary": [0.0] * 995 + [1.0] * 5,  # every quantile is 0: the 1s still get a bin
        "counts": np.repeat([0, 1, 2, 3], 250),
        "constant": np.full(1000, 7.0),
    })
    ref = build_reference(frame)
    assert ref.features["binary"].counts == [0, 995, 5, 0]
    assert ref.features["counts"].counts == [0, 250, 250, 250, 250, 0]
    assert ref.features["constant"].counts == [0, 1000, 0]  # below, at and above
    cur = profile_like(ref, pd.DataFrame({"constant": [6.0, 7.0, 8.0, 9.0],
                                          "counts": [0, 3, 4, 5]}))
    assert cur.features["constant"].counts == [1, 1, 2]
    assert cur.features["counts"].counts == [0, 1, 0, 0, 1, 2]  # 4 and 5 lie beyond the max


def test_categories_keep_the_most_frequent_and_pool_the_rest_into_other():
    frame = pd.DataFrame({"c": ["b"] * 3 + ["a"] * 3 + ["c"] + [None] * 2})
    ref = build_reference(frame, settings=DriftSettings(max_categories=3))
    feature = ref.features["c"]
    assert feature.categories == ["a", "b", "c"]  # most frequent first, ties by name
    assert feature.counts == [3, 3, 1, 0] and feature.missing == 2
    assert feature.test_counts is None  # every category kept: nothing was chosen
    cur = profile_like(ref, pd.DataFrame({"c": ["z", "a", ""]})).features["c"]
    assert cur.counts == [1, 0, 0, 1] and cur.missing == 1  # blank text is missing


def test_a_truncated_category_list_is_chosen_by_one_half_and_tested_on_the_other():
    values = ["a", "a"] * 5 + ["b", "b"] * 3 + ["c", "c", "d", "d"]
    ref = build_reference(pd.DataFrame({"c": values}), settings=DriftSettings(max_categories=2))
    feature = ref.features["c"]
    assert feature.categories == ["a", "b"]
    assert feature.counts == [10, 6, 4]  # every value, for display and merges
    assert feature.test_counts == [5, 3, 2]  # the half that did not choose


def test_numbers_booleans_and_text_are_read_the_same_way_on_both_sides():
    ref = build_reference(pd.DataFrame({"n": [1, 2, 3, 4], "b": [True, False, True, True]}))
    assert ref.features["b"].kind == "categorical"
    assert ref.features["b"].categories == ["True", "False"]
    cur = profile_like(ref, pd.DataFrame({"n": ["1", "x", "inf", None], "b": ["True"] * 4}))
    assert cur.features["n"].missing == 3  # unparsable text and infinity count as missing
    assert cur.features["b"].counts == [4, 0, 0]


def test_absent_columns_count_as_all_missing():
    ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    cur = profile_like(ref, pd.DataFrame({"other": [1, 2]}))
    assert cur.rows == 2
    assert all(f.missing == 2 and sum(f.counts) == 0 for f in cur.features.values())


def test_kinds_select_and_type_the_columns():
    frame = pd.DataFrame({"zip": [1000, 2000, 1000], "age": [30.0, 40.0, 50.0], "y": [0, 1, 0]})
    ref = build_reference(frame, kinds={"zip": "categorical", "age": "numeric"})
    assert list(ref.features) == ["zip", "age"]
    assert ref.features["zip"].categories == ["1000", "2000"]
    with pytest.raises(DataError, match="'height'.*not in the table"):
        build_reference(frame, kinds={"height": "numeric"})
    with pytest.raises(UsageError, match="kind 'text'"):
        build_reference(frame, kinds={"age": "text"})


def test_outputs_are_profiled_per_column_and_binary_probabilities_keep_the_positive_class():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1], 500)
    columns, names = output_columns("binary", ["no", "yes"], proba)
    ref = build_reference(pd.DataFrame({"x": rng.normal(size=500)}), outputs=columns,
                          output_names=names)
    assert list(ref.outputs) == ["proba:yes"]
    cur = profile_like(ref, pd.DataFrame({"x": [0.0, 1.0]}), outputs=np.array([[.2, .8], [.5, .5]]))
    assert cur.outputs["proba:yes"].maximum == 0.8
    multi = build_reference(pd.DataFrame({"x": [1.0, 2.0]}), outputs=np.eye(3)[:2])
    assert list(multi.outputs) == ["proba:0", "proba:1", "proba:2"]
    with pytest.raises(UsageError, match="3 columns but the reference profiles 1"):
        profile_like(ref, pd.DataFrame({"x": [0.0]}), outputs=np.ones((1, 3)))
    with pytest.raises(UsageError, match="2 rows of model outputs for 1 rows"):
        profile_like(ref, pd.DataFrame({"x": [0.0]}), outputs=np.ones((2, 2)))
    with pytest.raises(UsageError, match="no model outputs"):
        profile_like(build_reference(pd.DataFrame({"x": [1.0]})), pd.DataFrame({"x": [1.0]}),
                     outputs=np.ones(1))


def test_json_round_trip_is_plain_json_and_malformed_json_is_refused():
    ref = build_reference(_table(200, 0), outputs=np.linspace(0, 1, 200))
    text = json.dumps(ref.to_json(), allow_nan=False, sort_keys=True)
    assert Profile.from_json(json.loads(text)) == ref
    assert list(Profile.from_json(json.loads(text)).features) == list(ref.features)  # in order
    with pytest.raises(UsageError, match="not a driftloop profile"):
        Profile.from_json({"features": {}})
    broken = ref.to_json()
    broken["features"][0]["kind"] = "text"
    with pytest.raises(UsageError, match="kind 'text'"):
        Profile.from_json(broken)
    broken["features"][0]["kind"] = "numeric"
    del broken["rows"]
    with pytest.raises(UsageError, match="malformed"):
        Profile.from_json(broken)
