"""Concept drift on the per-prediction error stream: ADWIN, Page–Hinkley and DDM from river.

The stream is one value per labelled prediction, in serving order (:func:`error_stream`): 0/1
for a classification error, and for regression the absolute error divided by a reference
scale (the version's test RMSE, :func:`reference_scale`), so a change is found the same way
whatever the target's units (DDM reads only 0/1, so it runs on classification). Labels are
read as the model's classes with :func:`driftloop.models.labels.coerce_label` (``1``, ``1.0``
and ``"1"`` are one integer class); a label that is not a class is unusable, not an error.
Each detector reads the whole stream and reports the positions where it signalled a change;
the monitor maps positions back to prediction-log ids. Every parameter is a
``monitor.*`` setting (:class:`~driftloop.config.MonitorSettings`).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.uniform(size=1500) < 0.1, rng.uniform(size=1500) < 0.4].astype(float)
>>> found = detect_changes(errors, binary=True)
>>> sorted(found)
['adwin', 'ddm', 'page_hinkley']
>>> 1500 <= found["adwin"][0] < 1700
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from river import drift
from river.drift import binary

from driftloop.config import MonitorSettings
from driftloop.models.labels import coerce_label

DETECTORS: dict[str, Callable[[MonitorSettings], Any]] = {
    "adwin": lambda s: drift.ADWIN(delta=s.adwin_delta),
    # mode "up": only a rising error is a change worth retraining for
    "page_hinkley": lambda s: drift.PageHinkley(
        min_instances=s.page_hinkley_min_instances, delta=s.page_hinkley_delta,
        threshold=s.page_hinkley_threshold, mode="up"),
    "ddm": lambda s: binary.DDM(warm_start=s.ddm_warm_start,
                                warning_threshold=s.ddm_warning_threshold,
                                drift_threshold=s.ddm_drift_threshold),
}
BINARY_ONLY = frozenset({"ddm"})


def detect_changes(
    errors: np.ndarray, *, binary: bool, detectors: tuple[str, ...] | None = None,
    settings: MonitorSettings | None = None,
) -> dict[str, list[int]]:
    """Positions (0-based) in ``errors`` where each detector signalled a change.

    ``settings``: the detectors' parameters (None: the defaults).

    Examples
    --------
    >>> detect_changes(np.zeros(200), binary=True)
    {'adwin': [], 'page_hinkley': [], 'ddm': []}
    """
    settings = settings or MonitorSettings()
    names = detectors or tuple(DETECTORS)
    out: dict[str, list[int]] = {}
    values = np.asarray(errors, dtype=np.float64).tolist()
    for name in names:
        if name in BINARY_ONLY and not binary:
            continue
        detector = DETECTORS[name](settings)
        found: list[int] = []
        for i, value in enumerate(values):
            detector.update(value)
            if detector.drift_detected:
                found.append(i)
        out[name] = found
    return out


def predicted_class(output: Mapping[str, Any], classes: Sequence[Any]) -> int | None:
    """The class index a logged classification output predicted: the arg-max of its
    probabilities (what realised accuracy scores), else its logged label as a class.

    Examples
    --------
    >>> predicted_class({"predictions": 1, "probabilities": [0.3, 0.7]}, [0, 1])
    1
    >>> predicted_class({"predictions": "1"}, [0, 1]), predicted_class({}, [0, 1])
    (1, None)
    """
    proba = output.get("probabilities")
    if isinstance(proba, list) and len(proba) == len(classes):
        values = np.asarray(proba, dtype=np.float64)
        if np.isfinite(values).all():
            return int(values.argmax())
    label = coerce_label(output.get("predictions"), classes)
    return None if label is None else list(classes).index(label)


def error_stream(
    labels: Sequence[Any], outputs: Sequence[Mapping[str, Any]], *,
    classes: Sequence[Any] | None, scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The error of each labelled prediction, and which labels were usable.

    ``labels[i]`` is the feedback label of the prediction logged as ``outputs[i]``;
    ``classes``: the model's classes (None: regression). Returns ``(errors, usable)``:
    ``usable`` is a boolean mask over the inputs (the label is one of the classes, or a finite
    number for regression, and the output has a prediction) and ``errors`` holds one value per
    usable row, in order: 1.0 where the class was wrong, 0.0 where right; for regression
    ``|label - prediction| / scale``.

    Examples
    --------
    >>> out = [{"predictions": 1, "probabilities": [0.2, 0.8]}] * 4
    >>> errors, usable = error_stream([1, 1.0, "1", "cat"], out, classes=[0, 1])
    >>> errors.tolist(), usable.tolist()
    ([0.0, 0.0, 0.0], [True, True, True, False])
    >>> error_stream([3.0, "5"], [{"predictions": 4.0}] * 2, classes=None, scale=2.0)[0].tolist()
    [0.5, 0.5]
    """
    errors: list[float] = []
    usable = np.zeros(len(labels), dtype=bool)
    for i, (label, output) in enumerate(zip(labels, outputs, strict=True)):
        if classes is None:
            truth = coerce_label(label, None)
            pred = _finite(output.get("predictions"))
            if truth is None or pred is None:
                continue
            errors.append(abs(float(truth) - pred) / scale)
        else:
            coerced = coerce_label(label, classes)
            guess = predicted_class(output, classes)
            if coerced is None or guess is None:
                continue
            errors.append(float(list(classes).index(coerced) != guess))
        usable[i] = True
    return np.asarray(errors, dtype=np.float64), usable


def reference_scale(
    metrics: Mapping[str, Any], errors: np.ndarray, *, warm_up: int
) -> tuple[float, str]:
    """The spread regression errors are divided by, and where it came from.

    The version's test-split RMSE when it was recorded (else its MAE); failing both, the
    root mean square of the first ``warm_up`` raw errors of the stream (the rows closest to
    the version's start); 1.0 when even that is zero.

    Examples
    --------
    >>> reference_scale({"rmse": 2.5, "mae": 2.0}, np.array([1.0]), warm_up=30)
    (2.5, 'test rmse')
    >>> reference_scale({}, np.array([3.0, 4.0, 100.0]), warm_up=2)
    (3.5355339059327378, 'rms of the first 2 errors')
    """
    for name in ("rmse", "mae"):
        value = _finite(metrics.get(name))
        if value is not None and value > 0:
            return value, f"test {name}"
    head = np.asarray(errors, dtype=np.float64)[:warm_up]
    rms = float(np.sqrt(np.mean(head ** 2))) if len(head) else 0.0
    if rms > 0 and math.isfinite(rms):
        return rms, f"rms of the first {len(head)} errors"
    return 1.0, "none (errors in target units)"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


__all__ = ["BINARY_ONLY", "DETECTORS", "detect_changes", "error_stream", "predicted_class",
           "reference_scale"]
