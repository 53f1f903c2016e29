"""Point metrics of a model's predictions (scikit-learn does the arithmetic).

Classification takes class codes and a probability matrix; regression takes values on the
original scale.

Examples
--------
>>> import numpy as np
>>> y = np.array([0, 1, 1, 0]); p = np.array([[.9, .1], [.2, .8], [.6, .4], [.7, .3]])
>>> m = classification_metrics(y, p)
>>> m["accuracy"], m["n"]
(0.75, 4)
>>> round(regression_metrics(np.array([1., 2., 3.]), np.array([1., 2., 4.]))["mae"], 4)
0.3333
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, ROC AUC (one-vs-rest), log loss, Brier score."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    pred = proba.argmax(axis=1)
    out: dict[str, float] = {
        "n": len(y_true),
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "balanced_accuracy": _balanced_accuracy(y_true, pred),
        "macro_f1": float(
            skm.f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)
        ),
        "log_loss": float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=labels)),
        "brier": float(np.mean(np.sum((proba - np.eye(n_classes)[y_true]) ** 2, axis=1))),
        "majority_class_rate": float(np.bincount(y_true, minlength=n_classes).max() / len(y_true)),
    }
    present = np.unique(y_true)
    if len(present) == n_classes and n_classes >= 2:
        # AUC is undefined when a class is absent from the evaluation rows
        if n_classes == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            )
    return out


def _balanced_accuracy(y_true: np.ndarray, pred: np.ndarray) -> float:
    # sklearn warns when a predicted class is absent from y_true; the mean recall over the
    # classes that are present is the quantity we want, so compute it directly
    recalls = [float(np.mean(pred[y_true == c] == c)) for c in np.unique(y_true)]
    return float(np.mean(recalls))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² on the original scale of the target."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    out = {
        "n": len(y_true),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
    }
    if len(y_true) > 1 and np.ptp(y_true) > 0:  # R² is undefined on a constant target
        out["r2"] = float(skm.r2_score(y_true, y_pred))
    return out


def primary_metric(task: str) -> str:
    """The metric shown first for a task."""
    return "rmse" if task == "regression" else "accuracy"


__all__ = ["classification_metrics", "primary_metric", "regression_metrics"]
