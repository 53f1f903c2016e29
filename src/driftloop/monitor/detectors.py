"""Concept drift on the per-prediction error stream: ADWIN, Page–Hinkley and DDM from river.

The stream is one value per labelled prediction, in serving order: 0/1 for a classification
error, the absolute error for regression (DDM reads only 0/1, so it runs on classification).
Each detector reads the whole stream and reports the positions where it signalled a change;
the monitor maps positions back to prediction-log ids.

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

from collections.abc import Callable
from typing import Any

import numpy as np
from river import drift
from river.drift import binary

DETECTORS: dict[str, Callable[[], Any]] = {
    "adwin": lambda: drift.ADWIN(delta=0.002),
    # mode "up": only a rising error is a change worth retraining for
    "page_hinkley": lambda: drift.PageHinkley(min_instances=30, delta=0.005, threshold=50.0,
                                              mode="up"),
    "ddm": lambda: binary.DDM(),
}
BINARY_ONLY = frozenset({"ddm"})


def detect_changes(
    errors: np.ndarray, *, binary: bool, detectors: tuple[str, ...] | None = None
) -> dict[str, list[int]]:
    """Positions (0-based) in ``errors`` where each detector signalled a change.

    Examples
    --------
    >>> detect_changes(np.zeros(200), binary=True)
    {'adwin': [], 'page_hinkley': [], 'ddm': []}
    """
    names = detectors or tuple(DETECTORS)
    out: dict[str, list[int]] = {}
    values = np.asarray(errors, dtype=np.float64).tolist()
    for name in names:
        if name in BINARY_ONLY and not binary:
            continue
        detector = DETECTORS[name]()
        found: list[int] = []
        for i, value in enumerate(values):
            detector.update(value)
            if detector.drift_detected:
                found.append(i)
        out[name] = found
    return out


__all__ = ["BINARY_ONLY", "DETECTORS", "detect_changes"]
