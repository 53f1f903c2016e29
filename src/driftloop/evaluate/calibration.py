"""Calibration: how far predicted confidence is from observed accuracy, and how to fix it.

- :func:`calibration_bins` / :func:`expected_calibration_error` / :func:`maximum_calibration_error`
  on the top-label confidence (the largest probability of each row): equal-width bins over
  [0, 1] (bin *b* holds confidences in ``(b/B, (b+1)/B]``, the first bin also holds 0) or
  equal-mass bins (rows sorted by confidence, stable, then cut into *B* nearly equal parts).
  ECE is the row-weighted mean of |accuracy − confidence| over the bins, MCE the largest gap.
- :func:`reliability_diagram`: the per-bin accuracy against confidence as a PNG (matplotlib's
  Agg backend, no display needed), optionally before and after calibration.
- :class:`TemperatureScaler`: one temperature *T* that divides the logits, fitted by
  minimising the negative log-likelihood on held-out rows; it changes confidence, never the
  predicted class.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> logits = rng.normal(size=(2000, 3)) * 3
>>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits / 3])
>>> overconfident = softmax(logits)                     # the truth is softmax(logits / 3)
>>> round(expected_calibration_error(y, overconfident), 3)
0.237
>>> scaler = TemperatureScaler(inputs="logits").fit(logits, y)
>>> round(scaler.temperature_, 2)
3.01
>>> round(expected_calibration_error(y, scaler.transform(logits)), 3)
0.032

References
----------
Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On Calibration of Modern Neural
Networks. ICML.
Naeini, M. P., Cooper, G. F. and Hauskrecht, M. (2015). Obtaining Well Calibrated
Probabilities Using Bayesian Binning. AAAI.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

from driftloop.config import EvaluateSettings
from driftloop.errors import UsageError
from driftloop.models.temperature import TemperatureScaler, softmax

Strategy = Literal["uniform", "quantile"]
STRATEGIES = ("uniform", "quantile")
_DEFAULTS = EvaluateSettings()
_EPS = 1e-12


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin row count, mean confidence and accuracy (empty bins have count 0, NaN means)."""

    edges: np.ndarray  # B+1 edges (equal-mass: the confidences at the cuts)
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def gaps(self) -> np.ndarray:
        """|accuracy − confidence| per bin (NaN for empty bins)."""
        return np.abs(self.accuracy - self.confidence)


def calibration_bins(
    y_true: np.ndarray,
    proba: np.ndarray,
    n_bins: int = _DEFAULTS.calibration_bins,
    strategy: Strategy = "uniform",
) -> CalibrationBins:
    """Bin rows by top-label confidence; see the module docstring for the bin rules.

    Examples
    --------
    >>> b = calibration_bins(np.array([1, 0, 1, 1]), np.array([[.1, .9], [.8, .2], [.3, .7],
    ...                                                       [.6, .4]]), n_bins=2)
    >>> b.count.tolist(), b.accuracy.tolist()
    ([0, 4], [nan, 0.75])
    """
    y_true, proba = _check(y_true, proba)
    if n_bins < 1:
        raise UsageError(f"n_bins must be 1 or more. Got {n_bins}.")
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy must be one of {', '.join(STRATEGIES)}. Got {strategy!r}.")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        which = np.clip(np.searchsorted(edges[1:-1], confidence, side="left"), 0, n_bins - 1)
    else:
        order = np.argsort(confidence, kind="stable")
        which = np.empty(len(confidence), dtype=np.int64)
        for b, part in enumerate(np.array_split(order, n_bins)):
            which[part] = b
        cuts = [confidence[part[-1]] for part in np.array_split(order, n_bins) if len(part)]
        edges = np.r_[confidence.min() if len(confidence) else 0.0, cuts]
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=n_bins) / count
    return CalibrationBins(edges, count, mean_conf, accuracy)


def expected_calibration_error(
    y_true: np.ndarray,
    proba: np.ndarray,
    n_bins: int = _DEFAULTS.calibration_bins,
    strategy: Strategy = "uniform",
) -> float:
    """ECE: Σ_b (n_b / N) · |accuracy_b − confidence_b| over non-empty bins.

    Examples
    --------
    >>> expected_calibration_error(np.array([0, 1]), np.array([[.9, .1], [.9, .1]]), n_bins=10)
    0.4
    """
    bins = calibration_bins(y_true, proba, n_bins, strategy)
    full = bins.count > 0
    return float(np.sum(bins.count[full] * bins.gaps[full]) / bins.count.sum())


def maximum_calibration_error(
    y_true: np.ndarray,
    proba: np.ndarray,
    n_bins: int = _DEFAULTS.calibration_bins,
    strategy: Strategy = "uniform",
) -> float:
    """MCE: the largest |accuracy_b − confidence_b| over non-empty bins.

    >>> maximum_calibration_error(np.array([0, 1]), np.array([[.9, .1], [.6, .4]]), n_bins=10)
    0.6
    """
    bins = calibration_bins(y_true, proba, n_bins, strategy)
    return float(np.max(bins.gaps[bins.count > 0]))


def calibration_summary(
    y_true: np.ndarray, proba: np.ndarray, n_bins: int = _DEFAULTS.calibration_bins
) -> dict[str, float]:
    """ECE (equal-width and equal-mass bins) and MCE of one set of probabilities.

    >>> calibration_summary(np.array([0, 1]), np.array([[.9, .1], [.9, .1]]), n_bins=10)
    {'ece': 0.4, 'ece_equal_mass': 0.5, 'mce': 0.4}
    """
    return {
        "ece": expected_calibration_error(y_true, proba, n_bins, "uniform"),
        "ece_equal_mass": expected_calibration_error(y_true, proba, n_bins, "quantile"),
        "mce": maximum_calibration_error(y_true, proba, n_bins, "uniform"),
    }


def reliability_diagram(
    y_true: np.ndarray,
    proba: np.ndarray,
    *,
    calibrated: np.ndarray | None = None,
    n_bins: int = _DEFAULTS.calibration_bins,
    title: str = "reliability",
) -> bytes:
    """A reliability diagram as PNG bytes: accuracy per confidence bin, and the diagonal.

    With ``calibrated`` (probabilities after temperature scaling) both curves are drawn.

    Examples
    --------
    >>> png = reliability_diagram(np.array([0, 1, 1]), np.array([[.9, .1], [.2, .8], [.6, .4]]))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", len(png) > 1000
    (True, True)
    """
    # the object-oriented API: no pyplot, no global figure state, no display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curves = [("model", proba)] + ([("after temperature scaling", calibrated)]
                                   if calibrated is not None else [])
    for label, probabilities in curves:
        bins = calibration_bins(y_true, probabilities, n_bins)
        full = bins.count > 0
        ece = expected_calibration_error(y_true, probabilities, n_bins)
        axes.plot(bins.confidence[full], bins.accuracy[full], marker="o",
                  label=f"{label} (ECE {ece:.3f})")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top-label probability)")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.legend(loc="upper left", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _check(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise UsageError(
            f"probabilities must be N×K with one row per label; got shape {proba.shape} for "
            f"{len(y_true)} labels."
        )
    if len(y_true) == 0:
        raise UsageError("calibration needs at least one row.")
    return y_true, proba


__all__ = [
    "CalibrationBins",
    "TemperatureScaler",
    "calibration_bins",
    "calibration_summary",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_diagram",
    "softmax",
]
