from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from driftloop.data.schema import ColumnSpec, Schema, infer_schema, infer_task
from driftloop.errors import DataError


def kinds(schema: Schema) -> dict[str, str]:
    return {spec.name: spec.kind for spec in schema.features}


def test_mixed_frame_kinds_and_exclusions(frame: pd.DataFrame) -> None:
    schema, warnings = infer_schema(frame, "churn")
    assert kinds(schema) == {
        "age": "numeric",
        "income": "numeric",
        "plan": "categorical",
        "n_children": "categorical",
        "member": "boolean",
        "active": "boolean",
        "score_text": "numeric",
    }
    assert schema.task == "binary" and schema.target == "churn"
    assert set(schema.excluded) == {"customer_id", "row_number", "country", "notes", "signup"}
    assert "identifier" in schema.excluded["customer_id"]
    assert "identifier" in schema.excluded["row_number"]
    assert "constant" in schema.excluded["country"]
    assert "missing" in schema.excluded["notes"]
    assert "datetime" in schema.excluded["signup"]
    assert len(warnings) == 5 and all("excluded" in warning for warning in warnings)


def test_breast_cancer_is_all_numeric_binary() -> None:
    data = load_breast_cancer(as_frame=True).frame
    schema, warnings = infer_schema(data, "target")
    assert len(schema.features) == 30 and set(kinds(schema).values()) == {"numeric"}
    assert schema.task == "binary" and warnings == []


def test_requested_exclusions_keep_their_reason(frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(frame, "churn", exclude={"age": "time column"})
    assert schema.excluded["age"] == "time column" and "age" not in schema.feature_names
    schema, _ = infer_schema(frame, "churn", exclude=["plan"])
    assert "plan" in schema.excluded


def test_small_integer_column_with_few_repeats_stays_numeric() -> None:
    # 10 distinct values in 40 rows is 25% distinct: too few repeats for categories.
    frame = pd.DataFrame({"rating": np.arange(40) % 10, "y": [0, 1] * 20})
    assert kinds(infer_schema(frame, "y")[0]) == {"rating": "numeric"}


def test_whole_floats_with_missing_values_count_as_integers() -> None:
    values = np.tile([1.0, 2.0, 3.0, np.nan], 25)
    frame = pd.DataFrame({"level": values, "y": [0, 1] * 50})
    assert kinds(infer_schema(frame, "y")[0]) == {"level": "categorical"}


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a", "b"], "binary"),
        ([True, False, True, True], "binary"),
        ([0, 1, 2, 0], "multiclass"),
        ([0.0, 1.0, np.nan, 1.0], "binary"),
        ([0.5, 1.5, 2.25, 3.0], "regression"),
        (list(range(30)), "regression"),
    ],
)
def test_task_is_inferred_from_target(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values), name="y") == task


def test_task_can_be_forced() -> None:
    assert infer_task(pd.Series([0, 1, 1, 0]), "regression", name="y") == "regression"
    assert infer_task(pd.Series([0.5, 1.5, 0.5]), "multiclass", name="y") == "multiclass"


def test_schema_json_round_trip(frame: pd.DataFrame) -> None:
    schema, _ = infer_schema(frame, "churn")
    assert Schema.from_json(json.loads(json.dumps(schema.to_json()))) == schema


def test_schema_from_bad_json_raises_data_error() -> None:
    with pytest.raises(DataError, match="malformed"):
        Schema.from_json({"features": []})
    with pytest.raises(DataError, match="unknown kind"):
        Schema.from_json(
            {
                "features": [{"name": "a", "kind": "text"}],
                "target": "y",
                "task": "binary",
                "excluded": {},
            }
        )


@given(
    st.lists(st.sampled_from(["numeric", "categorical", "boolean"]), min_size=1, max_size=5),
    st.sampled_from(["binary", "multiclass", "regression"]),
)
@settings(max_examples=25, deadline=None)
def test_schema_json_round_trip_property(kind_list: list[str], task: str) -> None:
    schema = Schema(
        tuple(ColumnSpec(f"c{i}", kind) for i, kind in enumerate(kind_list)),  # type: ignore[arg-type]
        "y",
        task,  # type: ignore[arg-type]
        {"id": "looks like an identifier"},
    )
    assert Schema.from_json(json.loads(json.dumps(schema.to_json()))) == schema


# --- every bad-input message -------------------------------------------------------------


def test_unknown_target_lists_columns(frame: pd.DataFrame) -> None:
    with pytest.raises(
        DataError,
        match=r"data\.csv: target column 'label' not found\. "
        r"Available columns: customer_id, .*churn\. Pass --target",
    ):
        infer_schema(frame, "label", source="data.csv")


def test_all_missing_target_is_refused() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "y": [None, None]})
    with pytest.raises(DataError, match="target column 'y' has no values"):
        infer_schema(frame, "y")


def test_mostly_numeric_text_names_column_row_and_value() -> None:
    values = [str(v) for v in range(30)]
    values[17] = "12,5"
    frame = pd.DataFrame({"weight": values, "y": [0, 1] * 15})
    with pytest.raises(
        DataError,
        match=r"t\.csv: column 'weight', row 17: value '12,5' cannot be parsed as a "
        r"number \(1 such cell\)\. Fix or blank those cells",
    ):
        infer_schema(frame, "y", source="t.csv")


def test_forcing_classification_on_a_float_target_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(50.0), "y": np.linspace(0, 1, 50)})
    with pytest.raises(DataError, match="task 'binary' needs a few classes.*'y'.*50 distinct"):
        infer_schema(frame, "y", "binary")


def test_forcing_regression_on_text_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(4.0), "y": ["cat", "dog", "cat", "dog"]})
    with pytest.raises(DataError, match="task 'regression' needs a numeric target.*'cat'"):
        infer_schema(frame, "y", "regression")


def test_forcing_binary_on_three_classes_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(6.0), "y": ["a", "b", "c"] * 2})
    with pytest.raises(DataError, match="needs exactly 2 classes.*has 3.*'multiclass'"):
        infer_schema(frame, "y", "binary")


def test_single_class_target_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(4.0), "y": ["yes"] * 4})
    with pytest.raises(DataError, match="target column 'y' has a single class \\('yes'\\)"):
        infer_schema(frame, "y")


def test_constant_regression_target_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(4.0), "y": [2.5] * 4})
    with pytest.raises(DataError, match="target column 'y' is constant"):
        infer_schema(frame, "y", "regression")


def test_infinite_target_is_named() -> None:
    frame = pd.DataFrame({"a": np.arange(3.0), "y": [1.5, np.inf, 2.5]})
    with pytest.raises(DataError, match="column 'y', row 1: value inf"):
        infer_schema(frame, "y")


def test_unknown_task_is_refused() -> None:
    frame = pd.DataFrame({"a": np.arange(4.0), "y": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="task must be one of binary, multiclass, regression"):
        infer_schema(frame, "y", "ranking")  # type: ignore[arg-type]


def test_no_usable_feature_lists_exclusions() -> None:
    frame = pd.DataFrame({"const": [1] * 30, "empty": [None] * 30, "y": [0, 1] * 15})
    with pytest.raises(DataError, match="no usable feature.*'const': constant.*'empty': all"):
        infer_schema(frame, "y")


def test_unknown_excluded_column_is_named(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="column 'ghost' \\(asked to be excluded\\) not found"):
        infer_schema(frame, "churn", exclude=["ghost"])


def test_target_cannot_be_excluded(frame: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="'churn' is the target and cannot also be excluded"):
        infer_schema(frame, "churn", exclude=["churn"])
