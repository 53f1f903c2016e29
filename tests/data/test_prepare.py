from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.data import PreparedData, apply_preprocessing, prepare
from driftloop.errors import DataError


def check_splits(data: PreparedData, n_used: int) -> None:
    rows = [data.splits[part].rows for part in ("train", "val", "test")]
    assert sum(len(r) for r in rows) == n_used
    assert len(np.unique(np.concatenate(rows))) == n_used
    for part in ("train", "val", "test"):
        split = data.splits[part]
        assert split.x.dtype == np.float32 and len(split.x) == len(split.y) == len(split.rows)
        assert data.row_counts[part] == len(split.rows)
    # Everything a run records must be JSON.
    json.dumps([data.preprocessor, data.target_encoder, data.model_inputs, data.classes])
    json.dumps([data.fingerprints, data.row_counts, data.warnings])
    assert len(set(data.fingerprints.values())) == 4


def test_prepare_csv_drops_missing_targets_and_fits_on_train(
    make_frame: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    frame = make_frame(300)
    frame.loc[[5, 17], "churn"] = None
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    data = prepare(path, "churn", seed=1)
    assert data.input_kind == "table" and data.task == "binary"
    assert data.classes == ["leave", "stay"] and data.n_classes == 2
    assert data.source_uri == "file://" + str(path.resolve())
    assert data.row_counts["source"] == 300
    check_splits(data, 298)
    assert not {5, 17} & set(np.concatenate([s.rows for s in data.splits.values()]).tolist())
    assert any(
        "dropped 2 rows with a missing target 'churn' (first: row 5)" in w for w in data.warnings
    )
    assert data.model_inputs == {
        "n_numeric": len(data.splits["train"].x[0]),
        "cardinalities": [4, 5],
    }
    assert data.schema is not None and data.schema.target == "churn"
    train = data.splits["train"].x
    np.testing.assert_allclose(train[:, 0].mean(), 0.0, atol=1e-5)
    val_rows = pd.read_csv(path).iloc[data.splits["val"].rows]
    x, x_cat = apply_preprocessing(json.loads(json.dumps(data.preprocessor)), val_rows)
    assert x.tobytes() == data.splits["val"].x.tobytes()
    assert x_cat is not None and np.array_equal(x_cat, data.splits["val"].x_cat)


def test_prepare_is_deterministic_for_a_seed(
    make_frame: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    path = tmp_path / "t.parquet"
    make_frame(120).to_parquet(path)
    first, again = prepare(path, "churn", seed=3), prepare(path, "churn", seed=3)
    assert first.fingerprints == again.fingerprints
    assert np.array_equal(first.splits["test"].rows, again.splits["test"].rows)
    assert first.preprocessor == again.preprocessor


def test_prepare_parquet_regression_standardises_target(
    make_frame: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    frame = make_frame(150).drop(columns="churn")
    frame["spend"] = np.random.default_rng(0).gamma(2.0, 50.0, len(frame))
    path = tmp_path / "spend.parquet"
    frame.to_parquet(path)
    data = prepare(path, "spend")
    assert data.task == "regression" and data.n_classes == 0 and data.classes == []
    assert data.splits["train"].y.dtype == np.float32
    np.testing.assert_allclose(data.splits["train"].y.mean(), 0.0, atol=1e-5)
    check_splits(data, 150)


def test_prepare_dataframe_with_time_column_keeps_future_out_of_train(
    make_frame: Callable[..., pd.DataFrame],
) -> None:
    frame = make_frame(200)
    data = prepare(frame, "churn", time_column="signup", task="multiclass")
    assert data.task == "multiclass"
    assert data.schema is not None and "signup" in data.schema.excluded
    latest_train = frame["signup"].iloc[data.splits["train"].rows].max()
    assert latest_train < frame["signup"].iloc[data.splits["val"].rows].min()
    assert frame["signup"].iloc[data.splits["val"].rows].max() < (
        frame["signup"].iloc[data.splits["test"].rows].min()
    )
    assert data.source_uri.startswith("dataframe:")


def test_prepare_dataframe_with_group_column(make_frame: Callable[..., pd.DataFrame]) -> None:
    frame = make_frame(200).assign(store=np.arange(200) % 25)
    data = prepare(frame, "churn", group_column="store")
    stores = [set(frame["store"].iloc[s.rows]) for s in data.splits.values()]
    assert not (stores[0] & stores[1] or stores[0] & stores[2] or stores[1] & stores[2])
    assert data.schema is not None and "store" not in data.schema.feature_names


def test_prepare_table_without_categoricals_has_empty_cat_block() -> None:
    frame = pd.DataFrame({"x": np.linspace(0, 1, 40), "y": [0, 1] * 20})
    data = prepare(frame, "y")
    assert data.splits["train"].x_cat is not None
    assert data.splits["train"].x_cat.shape == (28, 0)
    assert data.model_inputs["cardinalities"] == []


def _npz(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    path = tmp_path / "arrays.npz"
    np.savez(path, X=x, y=y)
    return path


def test_prepare_npz_3d_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, rng.random((60, 8, 8)) * 255, rng.integers(0, 3, 60))
    data = prepare(path, target="label")
    assert data.input_kind == "image" and data.task == "multiclass" and data.n_classes == 3
    assert data.model_inputs == {"shape": [1, 8, 8]}
    assert data.schema is None and data.splits["train"].x_cat is None
    assert data.splits["train"].x.shape[1:] == (1, 8, 8)
    assert any("ignored for arrays" in w for w in data.warnings)
    check_splits(data, 60)
    x, none = apply_preprocessing(
        json.loads(json.dumps(data.preprocessor)), np.load(path)["X"][data.splits["test"].rows]
    )
    assert none is None and x.tobytes() == data.splits["test"].x.tobytes()


def test_prepare_npz_4d_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = _npz(tmp_path, rng.random((40, 3, 4, 4)), rng.integers(0, 2, 40))
    data = prepare(path)
    assert data.input_kind == "image" and data.task == "binary"
    assert data.model_inputs == {"shape": [3, 4, 4]}
    assert data.preprocessor is not None and len(data.preprocessor["mean"]) == 3
    check_splits(data, 40)


def test_prepare_npz_sequences_regression(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    path = _npz(tmp_path, rng.normal(size=(50, 10, 4)), rng.normal(size=50))
    data = prepare(path)
    assert data.input_kind == "sequence" and data.task == "regression"
    assert data.model_inputs == {"shape": [10, 4]}
    assert data.splits["val"].y.dtype == np.float32
    check_splits(data, 50)


def test_prepare_npz_forced_sequence(tmp_path: Path) -> None:
    path = _npz(tmp_path, np.random.default_rng(3).random((30, 6, 6)), np.arange(30) % 2)
    assert prepare(path, input_kind="sequence").input_kind == "sequence"


def test_table_needs_a_target(make_frame: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    make_frame(30).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"t\.csv: a table needs a target column.*--target"):
        prepare(path)


def test_unknown_time_column_is_named(make_frame: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(DataError, match="time column 'when' not found. Available columns"):
        prepare(make_frame(30), "churn", time_column="when")


def test_input_kind_must_match_source(
    make_frame: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="input_kind 'image' needs an .npz"):
        prepare(make_frame(30), "churn", input_kind="image")
    path = _npz(tmp_path, np.zeros((5, 3, 3)), np.arange(5))
    with pytest.raises(DataError, match="holds arrays, not a table"):
        prepare(path, input_kind="table")
    with pytest.raises(DataError, match="time and group splits need a table"):
        prepare(path, time_column="t")


def test_apply_preprocessing_refuses_unknown_kind() -> None:
    with pytest.raises(DataError, match="unknown kind 'tokens'"):
        apply_preprocessing({"kind": "tokens"}, np.zeros(3))
