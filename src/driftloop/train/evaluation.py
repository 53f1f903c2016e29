"""The launcher's last step: calibrate on the validation split, evaluate the test split fully.

After the ranks finish, the launcher

1. fits a :class:`~driftloop.evaluate.calibration.TemperatureScaler` on the best weights'
   validation-split probabilities and stores its state in the bundle (:func:`calibrate`), so
   that every probability the version produces is calibrated;
2. evaluates the test split as ``driftloop evaluate`` does (:func:`evaluate_test_split`):
   metrics with bootstrap intervals, ECE before and after scaling, a reliability diagram, and
   slices by the feature columns (their raw test-split values are written into the run folder
   by :func:`write_slice_rows` before the ranks start, so a resumed run has them too), and
   accuracy under bounded perturbations of the numeric features (``evaluate.robustness``).

Everything reads the run folder only (``RUN/bundle.json``, ``RUN/data/*``), like the ranks.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.config import EvaluateSettings
from driftloop.data import PreparedData, read_table
from driftloop.data.values import category_keys, is_text
from driftloop.evaluate.calibration import TemperatureScaler
from driftloop.evaluate.report import EvaluationReport, build_report, report_options
from driftloop.evaluate.robustness import robustness_section
from driftloop.models.bundle import ModelBundle
from driftloop.models.loaded import LoadedModel
from driftloop.timing import phase
from driftloop.train.spec import DATA_DIR, TrainSpec

if TYPE_CHECKING:
    from driftloop.registry import Registry

SLICE_ROWS_FILE = "test_rows.parquet"


def write_slice_rows(
    run_dir: Path, data: Any, prepared: PreparedData, max_columns: int
) -> None:
    """Write the raw values of up to ``max_columns`` feature columns for the test rows.

    Text and categorical columns are written as their category keys (plain strings), numbers
    as numbers; nothing is written for arrays.
    """
    if prepared.schema is None or max_columns == 0:
        return
    names = prepared.schema.feature_names[:max_columns]
    frame = read_table(data).frame.iloc[prepared.splits["test"].rows]
    columns = {}
    for name in names:
        column = frame[name]
        numeric = (not is_text(column) and pd.api.types.is_numeric_dtype(column.dtype)
                   and not pd.api.types.is_bool_dtype(column.dtype))
        columns[name] = (column.to_numpy(dtype=np.float64, na_value=np.nan) if numeric
                         else category_keys(column))
    path = run_dir / DATA_DIR / SLICE_ROWS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pd.DataFrame(columns).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def calibrate(bundle: ModelBundle, weights: bytes, run_dir: Path) -> ModelBundle:
    """The bundle with a temperature fitted on the validation split (classification only)."""
    if bundle.task == "regression":
        return bundle
    *inputs, y = _split(run_dir, "val")
    model = LoadedModel(bundle, weights, allowed_factories=[bundle.model])
    proba = model.predict_arrays(*inputs, calibrated=False)
    scaler = TemperatureScaler().fit(proba, y)
    return dataclasses.replace(bundle, calibration=scaler.to_json())


def calibrate_and_evaluate(
    registry: Registry, run_id: str, run_dir: Path, bundle: ModelBundle, weights: bytes
) -> tuple[ModelBundle, EvaluationReport]:
    """Calibrate on the validation split, then evaluate the test split with the ``evaluate:``
    settings recorded in the run's params (so that a resumed run evaluates alike)."""
    params = registry.store.get_run(run_id).params
    settings = EvaluateSettings.model_validate(params.get("evaluate") or {})
    with phase("evaluation.calibration"):
        bundle = calibrate(bundle, weights, run_dir)
    dataset = {"fingerprint": bundle.fingerprints.get("test", ""),
               "source": str(params.get("source", "")), "role": "test"}
    return bundle, evaluate_test_split(bundle, weights, run_dir, settings, dataset)


def evaluate_test_split(
    bundle: ModelBundle,
    weights: bytes,
    run_dir: Path,
    settings: EvaluateSettings,
    dataset: dict[str, Any],
) -> EvaluationReport:
    """Evaluate the (calibrated) model on the run's test split, sliced by feature columns."""
    loaded = LoadedModel(bundle, weights, allowed_factories=[bundle.model])
    *inputs, y = _split(run_dir, "test")
    outputs = loaded.predict_arrays(*inputs)
    raw = None
    if loaded.task == "regression":
        y, outputs = loaded.to_original_scale(y), loaded.to_original_scale(outputs)
    else:
        raw = loaded.predict_arrays(*inputs, calibrated=False)
    slice_path = run_dir / DATA_DIR / SLICE_ROWS_FILE
    frame = pd.read_parquet(slice_path) if slice_path.is_file() else None
    report = build_report(
        loaded.task, y, outputs, uncalibrated=raw, temperature=loaded.temperature,
        frame=frame, slices=list(frame.columns) if frame is not None else [],
        dataset=dataset, **report_options(settings),
    )
    x, x_cat = inputs[0], (inputs[1] if len(inputs) > 1 else None)
    with phase("evaluation.robustness"):
        robust = robustness_section(loaded, x, x_cat, y, settings)
    return dataclasses.replace(report, robustness=robust)


def _split(run_dir: Path, split: str) -> list[np.ndarray]:
    files = TrainSpec.read(run_dir).array_files(split)
    return [np.load(run_dir / DATA_DIR / name) for name in files]


__all__ = [
    "SLICE_ROWS_FILE",
    "calibrate",
    "calibrate_and_evaluate",
    "evaluate_test_split",
    "write_slice_rows",
]
