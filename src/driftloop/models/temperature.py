"""Temperature scaling: one temperature *T* that divides a model's logits, fitted by minimising
the negative log-likelihood on held-out rows. It changes confidence, never the predicted class.

It lives with the models because it is part of what a loaded version computes at inference
(the bundle stores the fitted temperature); :mod:`driftloop.evaluate.calibration` measures
calibration and re-exports these names.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> logits = rng.normal(size=(500, 3)) * 3
>>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits / 3])
>>> round(TemperatureScaler(inputs="logits").fit(logits, y).temperature_, 1)  # truth: 3
3.2

References
----------
Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On Calibration of Modern Neural
Networks. ICML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.exceptions import NotFittedError

from driftloop.errors import UsageError

_EPS = 1e-12
LOG_T_BOUNDS = (np.log(0.01), np.log(100.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits.

    >>> softmax(np.array([[0.0, np.log(3.0)]])).round(3).tolist()
    [[0.25, 0.75]]
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TemperatureScaler:
    """Divide logits by one temperature fitted to minimise the NLL on held-out rows.

    Parameters
    ----------
    inputs
        ``"proba"`` (N×K probabilities, or N positive-class probabilities of a binary model;
        their logs are the logits) or ``"logits"`` (N×K).

    Attributes
    ----------
    temperature_
        The fitted temperature: above 1 softens overconfident probabilities.

    Examples
    --------
    >>> p = np.array([[.99, .01], [.98, .02], [.02, .98], [.9, .1]]); y = np.array([0, 1, 1, 0])
    >>> scaler = TemperatureScaler().fit(p, y)
    >>> scaler.temperature_ > 1, scaler.transform(p).argmax(1).tolist()
    (True, [0, 0, 1, 0])
    >>> TemperatureScaler.from_json(scaler.to_json()).temperature_ == scaler.temperature_
    True
    """

    def __init__(self, inputs: Literal["proba", "logits"] = "proba") -> None:
        self.inputs = inputs

    def fit(self, x: np.ndarray, y: np.ndarray) -> TemperatureScaler:
        """Fit the temperature on probabilities/logits ``x`` and class codes ``y``."""
        if self.inputs not in ("proba", "logits"):
            raise UsageError(
                f"The 'inputs' parameter of TemperatureScaler must be 'proba' or 'logits'. "
                f"Got {self.inputs!r} instead."
            )
        logits = self._logits(x)
        y = np.asarray(y, dtype=np.int64)
        if len(y) != len(logits) or len(y) == 0:
            raise UsageError(
                f"TemperatureScaler.fit needs one class code per row; got {len(logits)} rows "
                f"and {len(y)} codes."
            )
        if y.min() < 0 or y.max() >= logits.shape[1]:
            raise UsageError(f"class codes must be in 0..{logits.shape[1] - 1}; got {y.max()}.")
        rows = np.arange(len(y))

        def nll(log_t: float) -> float:
            z = logits / np.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, y]))

        found = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded",
                                options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(found.x))
        self.nll_before_ = nll(0.0)
        self.nll_after_ = float(found.fun)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, N×K (also for a binary N-vector input)."""
        self._check_fitted()
        return softmax(self._logits(x) / self.temperature_)

    def fit_transform(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.fit(x, y).transform(x)

    def to_json(self) -> dict[str, Any]:
        """The fitted state as JSON; :meth:`from_json` rebuilds the scaler."""
        self._check_fitted()
        return {"kind": "temperature", "inputs": self.inputs, "temperature": self.temperature_}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemperatureScaler:
        if data.get("kind") != "temperature" or not float(data.get("temperature", 0)) > 0:
            raise UsageError(f"calibration JSON is not a temperature scaler: {dict(data)!r}.")
        scaler = cls(data.get("inputs", "proba"))
        scaler.temperature_ = float(data["temperature"])
        return scaler

    def _logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.inputs == "logits":
            if x.ndim != 2:
                raise UsageError(f"logits must be N×K; got shape {x.shape}.")
            return x
        if x.ndim == 1:  # a binary model's positive-class probabilities
            x = np.column_stack([1.0 - x, x])
        if x.ndim != 2 or (x.size and (x.min() < 0 or x.max() > 1)):
            raise UsageError(
                f"probabilities must be N×K (or N for binary) within [0, 1]; got shape {x.shape}."
            )
        return np.log(np.clip(x, _EPS, 1.0))

    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise NotFittedError(
                "This TemperatureScaler instance is not fitted yet. Call 'fit' with "
                "validation probabilities and labels before using this scaler."
            )


__all__ = ["LOG_T_BOUNDS", "TemperatureScaler", "softmax"]
