"""Evaluation: metrics with bootstrap intervals, calibration, slices, and the report.

Pure: every function takes predictions (or a loaded model) and data, and nothing here reads or
writes the store — the registry loads a version, calls :func:`evaluate_model` and stores the
report. ``EvaluationReport`` is imported on first use (it pulls in pandas and the data readers).
The package itself is callable: ``dl.evaluate(...)`` runs :func:`driftloop.evaluate` (the
registry's) even after this package was imported (see :mod:`driftloop._callable`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._callable import make_callable
from driftloop._lazy import lazy_getattr
from driftloop.evaluate.calibration import (
    TemperatureScaler,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
)
from driftloop.evaluate.intervals import Interval, bootstrap_interval, metric_intervals
from driftloop.evaluate.metrics import METRICS, classification_metrics, regression_metrics
from driftloop.evaluate.slices import SliceReport, evaluate_slices

if TYPE_CHECKING:
    from driftloop.evaluate.report import EvaluationReport, evaluate_model

_LAZY = {"EvaluationReport": "driftloop.evaluate.report",
         "evaluate_model": "driftloop.evaluate.report"}


__getattr__ = lazy_getattr(__name__, _LAZY)


make_callable(__name__)

__all__ = [
    "METRICS",
    "EvaluationReport",
    "Interval",
    "SliceReport",
    "TemperatureScaler",
    "bootstrap_interval",
    "calibration_summary",
    "classification_metrics",
    "evaluate_model",
    "evaluate_slices",
    "expected_calibration_error",
    "maximum_calibration_error",
    "metric_intervals",
    "reliability_diagram",
    "regression_metrics",
]
