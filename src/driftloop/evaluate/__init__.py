"""Evaluation of model predictions."""

from driftloop.evaluate.metrics import classification_metrics, regression_metrics

__all__ = ["classification_metrics", "regression_metrics"]
