"""The numpy column transform equals the training-time pandas transform exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from driftloop.data.prepare import apply_preprocessing, prepare
from driftloop.data.values import category_keys
from driftloop.serve.features import ColumnTransform, category_key


def test_column_transform_equals_apply_preprocessing():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "member": rng.choice(["yes", "no"], n),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n),
        "code": rng.choice([1, 2, 3], n),
    })
    frame["y"] = np.where(frame["x"].fillna(0) > 0, "a", "b")
    data = prepare(frame, "y", seed=0)
    kinds = {f.name: f.kind for f in data.schema.features}
    assert set(kinds.values()) == {"numeric", "boolean", "categorical"}
    request = pd.DataFrame({
        "x": [1.5, None, -2.0, 0.0, 3, None],
        "member": ["yes", "No", None, "true", "no", "yes"],
        "city": ["Oslo", "Paris", None, "  ", "Rome", "Lima"],
        "code": [1, 2, 7, None, 3, 1],
    }, dtype=object)
    columns = {c: request[c].tolist() for c in request.columns if c in kinds}
    x, x_cat, unknown = ColumnTransform(data.preprocessor).transform(columns)
    expected_x, expected_cat = apply_preprocessing(data.preprocessor, request[list(kinds)])
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(x_cat, expected_cat)
    assert unknown == {"city": 1, "code": 1}


@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                          st.floats(allow_nan=False, allow_infinity=False),
                          st.text(max_size=4)), min_size=1, max_size=20))
def test_category_key_is_the_training_key_of_each_json_cell(cells):
    # the edge package keys categories without pandas: cell by cell, the same keys
    assert [category_key(c) for c in cells] == category_keys(
        pd.Series(cells, dtype=object)).tolist()
