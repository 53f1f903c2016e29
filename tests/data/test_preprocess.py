from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import NotFittedError

from driftloop.data.preprocess import (
    TablePreprocessor,
    TargetEncoder,
    apply_array_scaler,
    fit_array_scaler,
)
from driftloop.data.schema import ColumnSpec, Schema, infer_schema
from driftloop.errors import DataError

SCHEMA = Schema(
    (
        ColumnSpec("age", "numeric"),
        ColumnSpec("member", "boolean"),
        ColumnSpec("city", "categorical"),
        ColumnSpec("size", "numeric"),
        ColumnSpec("level", "categorical"),
    ),
    "y",
    "binary",
    {},
)


def train_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, np.nan, 40.0, 60.0],
            "member": ["yes", "no", None, "yes"],
            "city": ["Rome", "Oslo", "Rome", None],
            "size": [3.0, 3.0, 3.0, 3.0],
            "level": [1, 2, 10, 2],
        }
    )


def json_round_trip(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))


def test_numeric_block_is_imputed_standardised_and_flags_missing() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    x, x_cat = pre.transform(train_frame())
    assert x.dtype == np.float32 and x_cat.dtype == np.int64
    assert pre.numeric_feature_names_ == [
        "age",
        "member",
        "size",
        "age__missing",
        "member__missing",
    ]
    age = np.array([20.0, 40.0, 40.0, 60.0])  # median 40 fills the gap
    np.testing.assert_allclose(x[:, 0], (age - age.mean()) / age.std(), rtol=1e-6)
    assert x[:, 2].tolist() == [0.0, 0.0, 0.0, 0.0]  # std 0 divides by 1
    assert x[:, 3].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert x[:, 4].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_categories_are_sorted_strings_with_bucket_zero_for_unknown() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    assert pre.cardinalities_ == [3, 4]  # Oslo, Rome (+1); "1", "10", "2" (+1)
    serve = train_frame().assign(city=["Oslo", "Lima", None, "Rome"], level=[10, 7, 2.0, 1])
    _, x_cat = pre.transform(serve)
    assert x_cat[:, 0].tolist() == [1, 0, 0, 2]
    assert x_cat[:, 1].tolist() == [2, 0, 3, 1]


def test_medians_come_from_the_fit_rows_only() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    serve = train_frame().assign(age=[np.nan, 1000.0, 1000.0, 1000.0])
    x, _ = pre.transform(serve)
    reference, _ = pre.transform(train_frame().assign(age=[40.0] * 4))
    assert x[0, 0] == reference[0, 0]
    assert pre.to_json()["numeric"][0]["median"] == 40.0


def test_indicator_only_for_columns_missing_at_fit_time() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame().assign(member=["yes", "no", "no", "yes"]))
    x, _ = pre.transform(train_frame())  # member is missing here, but was not at fit time
    assert "member__missing" not in pre.numeric_feature_names_
    assert x.shape == (4, 4)


def test_json_round_trip_gives_bitwise_identical_output() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    restored = TablePreprocessor.from_json(json_round_trip(pre.to_json()))
    serve = train_frame().assign(age=[1.5, -3.25, np.nan, 1e6], city=["x", "Oslo", None, "Rome"])
    for before, after in zip(pre.transform(serve), restored.transform(serve), strict=True):
        assert before.tobytes() == after.tobytes()


numbers = hnp.arrays(
    np.float64,
    st.integers(2, 30),
    elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)),
)


@given(values=numbers, seed=st.integers(0, 1000))
@settings(max_examples=40, deadline=None)
def test_round_trip_property(values: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(values)
    frame = pd.DataFrame(
        {
            "age": values,
            "member": rng.choice(["yes", "no", None], n),
            "city": rng.choice(["a", "b", "c", None], n),
            "size": values[::-1],
            "level": rng.integers(0, 5, n),
        }
    )
    pre = TablePreprocessor(SCHEMA).fit(frame.iloc[: n // 2 + 1])
    restored = TablePreprocessor.from_json(json_round_trip(pre.to_json()))
    x, x_cat = pre.transform(frame)
    x2, x_cat2 = restored.transform(frame)
    assert x.tobytes() == x2.tobytes() and x_cat.tobytes() == x_cat2.tobytes()
    assert np.isfinite(x).all()
    assert (x_cat >= 0).all() and (x_cat < np.array(pre.cardinalities_)).all()


def test_inferred_schema_feeds_the_preprocessor(frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(frame, "churn")
    pre = TablePreprocessor(schema).fit(frame)
    x, x_cat = pre.transform(frame)
    assert x.shape == (len(frame), len(pre.numeric_feature_names_))
    assert x_cat.shape == (len(frame), 2)
    assert "income__missing" in pre.numeric_feature_names_


def test_transform_before_fit_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="TablePreprocessor is not fitted yet. Call 'fit'"):
        TablePreprocessor(SCHEMA).transform(train_frame())


def test_missing_column_is_named_and_extra_columns_are_ignored() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    pre.transform(train_frame().assign(extra=1))
    with pytest.raises(DataError, match="serve.csv: feature column 'city' not found"):
        pre.transform(train_frame().drop(columns="city"), source="serve.csv")


def test_unparseable_number_names_column_row_and_value() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    bad = train_frame().assign(age=["1", "2", "forty", "3"])
    with pytest.raises(DataError, match="column 'age', row 2: value 'forty' cannot be parsed"):
        pre.transform(bad)


def test_unreadable_boolean_names_column_row_and_value() -> None:
    pre = TablePreprocessor(SCHEMA).fit(train_frame())
    bad = train_frame().assign(member=["yes", "maybe", "no", "yes"])
    with pytest.raises(DataError, match="column 'member', row 1: value 'maybe'.*boolean"):
        pre.transform(bad)


def test_bad_preprocessor_json_is_refused() -> None:
    with pytest.raises(DataError, match="expected kind 'table'"):
        TablePreprocessor.from_json({"kind": "array"})


def test_target_encoder_classification() -> None:
    encoder = TargetEncoder().fit(pd.Series(["b", "a", "c", "a"]), "multiclass")
    assert encoder.classes_ == ["a", "b", "c"]
    assert encoder.transform(["c", "a"]).tolist() == [2, 0]
    assert encoder.inverse_transform([1, 2]).tolist() == ["b", "c"]
    restored = TargetEncoder.from_json(json_round_trip(encoder.to_json()))
    assert restored.transform(["c", "b"]).tolist() == [2, 1]


def test_target_encoder_numbers_are_json_values_sorted_numerically() -> None:
    encoder = TargetEncoder().fit(np.array([10.0, 2.0, 10.0, 1.0]), "multiclass")
    assert encoder.classes_ == [1, 2, 10] and isinstance(encoder.classes_[0], int)
    assert encoder.transform(np.array([10, 1], dtype=np.int8)).tolist() == [2, 0]


def test_target_encoder_unknown_label_is_named() -> None:
    encoder = TargetEncoder().fit(["cat", "dog"], "binary")
    with pytest.raises(DataError, match="target label 'bird' in row 1 was not seen.*cat, dog"):
        encoder.transform(["cat", "bird"])


def test_target_encoder_regression_round_trip() -> None:
    encoder = TargetEncoder().fit([1.0, 2.0, 3.0, 4.0], "regression")
    scaled = encoder.transform([1.0, 4.0])
    assert scaled.dtype == np.float32 and encoder.classes_ == []
    np.testing.assert_allclose(encoder.inverse_transform(scaled), [1.0, 4.0], rtol=1e-6)
    restored = TargetEncoder.from_json(json_round_trip(encoder.to_json()))
    assert restored.transform([1.0, 4.0]).tobytes() == scaled.tobytes()


def test_target_encoder_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="TargetEncoder is not fitted yet"):
        TargetEncoder().transform([1])


def test_array_scaler_per_channel_and_json() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal([[[[1.0]], [[5.0]]]], 2.0, size=(20, 2, 3, 3)).astype(np.float32)
    state = json_round_trip(fit_array_scaler(x, "image"))
    scaled = apply_array_scaler(state, x)
    np.testing.assert_allclose(scaled.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    with pytest.raises(DataError, match="expects N×C×H×W with 2 channels"):
        apply_array_scaler(state, x[:, :1])
