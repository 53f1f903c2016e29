"""Request validation against a schema, without a server."""

from __future__ import annotations

import math

import pytest

from driftloop.serve.validation import RequestInvalid, RequestValidator

SCHEMA = {"features": [{"name": "age", "kind": "numeric"}, {"name": "member", "kind": "boolean"},
                       {"name": "city", "kind": "categorical"}]}
PRE = {"categorical": [{"name": "city", "categories": ["Oslo", "Rome"]}]}


@pytest.fixture
def v() -> RequestValidator:
    return RequestValidator(SCHEMA, PRE, max_instances=3)


def test_good_rows_become_a_frame_with_missing_values_and_unknown_categories(v):
    cols = v.columns_from_instances([{"age": 30, "member": "yes", "city": "Oslo"},
                                     {"age": None, "member": False, "city": "Paris"}])
    frame, unknown = v.frame(cols)
    assert math.isnan(frame["age"][1]) and frame["member"].tolist() == [True, False]
    assert unknown == {"city": 1}


@pytest.mark.parametrize("row, code, field", [
    ({"age": 1, "member": True}, "missing_feature", "city"),
    ({"age": 1, "member": True, "city": "Oslo", "x": 1}, "extra_feature", "x"),
    ({"age": True, "member": True, "city": "Oslo"}, "wrong_type", "age"),
    ({"age": [1], "member": True, "city": "Oslo"}, "wrong_type", "age"),
    ({"age": 1, "member": "maybe", "city": "Oslo"}, "wrong_type", "member"),
    ({"age": 1, "member": 2, "city": "Oslo"}, "wrong_type", "member"),
    ({"age": 1, "member": True, "city": {"a": 1}}, "wrong_type", "city"),
    ({"age": math.inf, "member": True, "city": "Oslo"}, "not_finite", "age"),
])
def test_bad_rows_are_refused_naming_the_field(v, row, code, field):
    with pytest.raises(RequestInvalid) as caught:
        v.columns_from_instances([row])
    assert caught.value.code == code and caught.value.fields == [field]
    assert field in str(caught.value) and caught.value.status == 422


def test_too_many_instances_is_413(v):
    with pytest.raises(RequestInvalid) as caught:
        v.columns_from_instances([{"age": 1, "member": True, "city": "Oslo"}] * 4)
    assert caught.value.status == 413 and "limit of 3" in str(caught.value)


def test_v2_inputs_are_columns(v):
    cols = v.columns_from_v2([{"name": "age", "shape": [2], "data": [1, 2]},
                              {"name": "member", "shape": [2], "data": [True, False]},
                              {"name": "city", "shape": [2], "data": ["Oslo", "Rome"]}])
    assert cols["age"] == [1, 2]
    with pytest.raises(RequestInvalid, match="differ in length"):
        v.columns_from_v2([{"name": "age", "data": [1, 2]}, {"name": "member", "data": [True]},
                           {"name": "city", "data": ["Oslo"]}])
    with pytest.raises(RequestInvalid, match="shape"):
        v.columns_from_v2([{"name": "age", "shape": [3], "data": [1]},
                           {"name": "member", "data": [True]}, {"name": "city", "data": ["a"]}])


@pytest.mark.parametrize("value", [1e300, -1e300, 2e36])
def test_a_value_that_would_overflow_the_models_float32_input_is_refused(value):
    """Found by hypothesis on the real server: 1e300 passed as finite, then overflowed the
    float32 input after standardising, failing the whole batch (every request in it) with a
    500. It is refused per request now, before batching."""
    pre = {**PRE, "numeric": [{"name": "age", "median": 40.0, "mean": 40.0, "std": 0.01,
                               "indicator": False}]}
    validator = RequestValidator(SCHEMA, pre)
    with pytest.raises(RequestInvalid) as caught:
        validator.columns_from_instances([{"age": value, "member": True, "city": "Oslo"}])
    assert caught.value.code == "out_of_range" and caught.value.fields == ["age"]
    validator.columns_from_instances([{"age": 1e30, "member": True, "city": "Oslo"}])  # fine
