"""Label-free performance of a served classifier, robust to miscalibration.

:func:`~driftloop.monitor.performance.estimate_performance` trusts a window's probabilities
as they are (CBPE: a row's true label is a draw from its predicted distribution). When they
are miscalibrated in a way one temperature cannot fix — over-confident in one class and
under-confident in another, or wrong in the middle of the range only — the estimate is off
by the calibration error. :class:`PerformanceEstimator` first learns, on labelled reference
rows (a version's validation split, or any labelled sample of a model trained elsewhere), a
calibration map for estimation, chosen by held-out likelihood among:

``none``
    the probabilities as they are (what the window estimate did before);
``temperature``
    one temperature on their logs (:class:`~driftloop.models.temperature.TemperatureScaler`);
``dirichlet``
    a multinomial logistic regression on the log-probabilities (scikit-learn's
    :class:`~sklearn.linear_model.LogisticRegression`; Dirichlet calibration, and beta
    calibration for a binary model): a different temperature per class, and more;
``histogram``
    per class (one-vs-rest), the label frequency in equal-mass bins of the class's
    probability, rows renormalised;
``isotonic``
    per class (one-vs-rest), scikit-learn's :class:`~sklearn.isotonic.IsotonicRegression`,
    rows renormalised (what ``CalibratedClassifierCV(method="isotonic")`` fits).

Each candidate is cross-fitted on the reference (``cv`` folds; every row is scored by a map
that did not see it) and the simplest one whose mean held-out log-loss is within one standard
error of the best (paired over rows) is chosen: on probabilities that are already calibrated
that is ``none`` (or a temperature of about 1), and a flexible map is taken only when it
clearly pays.

The estimate is of the decision the model serves: the served label is the argmax of the
served probabilities (what ``driftloop serve`` answers), or for a binary model with a
``threshold``, class 1 when its probability is at least the threshold. Expected accuracy is
the mean *calibrated* probability of the *served* label (not of the calibrated argmax); macro
F1 and ROC AUC are simulated from labels drawn from the calibrated probabilities, scoring the
served labels and the served scores, with the same bands as
:func:`~driftloop.monitor.performance.estimate_performance`. Like every confidence-based
estimate it assumes that what changes between reference and window is the mix of inputs,
not the rule from inputs to labels (no concept drift).

Examples
--------
Monitoring a model trained elsewhere: its probabilities on a labelled reference sample fit
the estimator; windows of new rows need probabilities only. Gaussian naive Bayes is far too
confident, unevenly across classes:

>>> import numpy as np
>>> from sklearn.datasets import make_classification
>>> from sklearn.naive_bayes import GaussianNB
>>> x, y = make_classification(9000, n_classes=3, n_features=10, n_informative=3,
...                            n_redundant=7, flip_y=0.1, random_state=0)
>>> model = GaussianNB().fit(x[:2000], y[:2000])
>>> estimator = PerformanceEstimator(random_state=0).fit(model.predict_proba(x[2000:6000]),
...                                                      y[2000:6000])
>>> {name: round(loss, 3) for name, loss in estimator.scores_.items()}  # held-out log-loss
{'none': 1.121, 'temperature': 0.65, 'dirichlet': 0.638, 'histogram': 0.64, 'isotonic': 0.643}
>>> estimator.calibration_
'dirichlet'
>>> new = x[6000:][x[6000:, 0] > 0]                   # new rows, a covariate shift, no labels
>>> estimate = estimator.estimate(model.predict_proba(new))["accuracy"]
>>> truth = float((model.predict(new) == y[6000:][x[6000:, 0] > 0]).mean())
>>> trusted = float(model.predict_proba(new).max(axis=1).mean())
>>> round(estimate["value"], 3), round(truth, 3), round(trusted, 3)
(0.719, 0.707, 0.918)
>>> estimate["low"] <= truth <= estimate["high"]
True

``trusted`` is what the probabilities as they are promise.

References
----------
Zadrozny, B. and Elkan, C. (2002). Transforming classifier scores into accurate multiclass
probability estimates. KDD. (Isotonic and histogram-binning calibration, one-vs-rest.)
Kull, M. et al. (2019). Beyond temperature scaling: obtaining well-calibrated multi-class
probabilities with Dirichlet calibration. NeurIPS.
NannyML, Confidence-based Performance Estimation (CBPE).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from driftloop.errors import UsageError
from driftloop.evaluate.metrics import METRICS
from driftloop.models.temperature import TemperatureScaler
from driftloop.monitor.performance import ESTIMATED_METRICS, estimate_performance
from driftloop.monitor.profile import Profile

CALIBRATIONS: tuple[str, ...] = ("none", "temperature", "dirichlet", "histogram", "isotonic")
"""The candidate calibration maps, simplest first (the order the one-standard-error rule
prefers)."""

_EPS = 1e-4  # floor of a calibrated probability: an empty isotonic block is not certainty
_SUM_TOLERANCE = 1e-3  # rows of probabilities must sum to 1 within this
_CLASSIFICATION = tuple(name for name, m in METRICS.items() if m.kind == "classification")


class PerformanceEstimator(BaseEstimator):
    """Estimate a classifier's accuracy, macro F1 and ROC AUC on unlabelled windows.

    Parameters
    ----------
    calibration
        ``"auto"`` (chosen by cross-fitted held-out log-likelihood on the reference) or one of
        ``"none"``, ``"temperature"``, ``"dirichlet"``, ``"histogram"``, ``"isotonic"`` (see
        the module).
    cv
        Folds of the cross-fitting that scores the candidates (``"auto"`` only), at least 2.
    n_bins
        Equal-mass bins per class of ``"histogram"``, at least 2.
    threshold
        Binary models only: the served label is 1 when the class-1 probability is at least
        this, in (0, 1). None: the argmax (what ``driftloop serve`` answers).
    simulations, confidence
        Label draws behind the simulated metrics and the bands, and the bands' coverage.
    random_state
        Seeds the folds and, unless :meth:`estimate` gets a seed, the label draws.

    Attributes
    ----------
    calibration_
        The calibration map used.
    scores_
        ``"auto"``: candidate -> mean held-out log-loss on the reference; else empty.
    n_classes_, n_reference_
        Probability columns, and the labelled reference rows fitted on.
    """

    def __init__(
        self,
        calibration: str = "auto",
        *,
        cv: int = 5,
        n_bins: int = 15,
        threshold: float | None = None,
        simulations: int = 200,
        confidence: float = 0.95,
        random_state: int | None = 0,
    ) -> None:
        self.calibration = calibration
        self.cv = cv
        self.n_bins = n_bins
        self.threshold = threshold
        self.simulations = simulations
        self.confidence = confidence
        self.random_state = random_state

    def fit(self, reference_proba: np.ndarray, reference_labels: np.ndarray
            ) -> PerformanceEstimator:
        """Fit the calibration map on labelled reference rows.

        ``reference_proba``: N×K class probabilities (or N class-1 probabilities of a binary
        model) as the model served them; ``reference_labels``: the N true labels as class
        codes, the column index of the true class (0 … K-1).
        """
        self._check_params()
        proba = _as_proba(reference_proba, "reference_proba")
        labels = _as_codes(reference_labels, proba.shape[1])
        if len(labels) != len(proba):
            raise UsageError(
                f"reference_proba has {len(proba)} rows but reference_labels has "
                f"{len(labels)}; pass one label per row."
            )
        if not np.isfinite(proba).all():
            row = int(np.flatnonzero(~np.isfinite(proba).all(axis=1))[0])
            raise UsageError(f"reference_proba row {row} is not finite; drop or fix it.")
        if self.threshold is not None and proba.shape[1] != 2:
            raise UsageError(
                f"The 'threshold' parameter of PerformanceEstimator applies to binary models "
                f"only; the probabilities have {proba.shape[1]} classes. Got "
                f"{self.threshold!r}; use None (the argmax)."
            )
        if len(labels) < 2 * self.cv:
            raise UsageError(
                f"PerformanceEstimator.fit needs at least 2 × cv = {2 * self.cv} labelled "
                f"reference rows; got {len(labels)}."
            )
        scores: dict[str, float] = {}
        chosen = self.calibration
        if chosen == "auto":
            losses = _held_out_losses(proba, labels, self.cv, self.n_bins, self.random_state)
            scores = {name: float(loss.mean()) for name, loss in losses.items()}
            chosen = _one_standard_error(losses)
        self.calibrator_ = _calibrator(chosen, self.n_bins).fit(proba, labels)
        self.calibration_ = chosen
        self.scores_ = scores
        self.n_classes_ = int(proba.shape[1])
        self.n_reference_ = int(len(labels))
        return self

    def calibrate(self, proba: np.ndarray) -> np.ndarray:
        """The calibrated probabilities (N×K) of served probabilities ``proba``."""
        check_is_fitted(self)
        return self.calibrator_.transform(self._window(proba))

    def predict(self, proba: np.ndarray) -> np.ndarray:
        """The labels (class codes) the model serves for ``proba``."""
        check_is_fitted(self)
        return self._served(self._window(proba))

    def estimate(
        self,
        proba: np.ndarray,
        metrics: Sequence[str] = ESTIMATED_METRICS,
        *,
        seed: int | None = None,
    ) -> dict[str, dict[str, float | None]]:
        """``{metric: {"value", "low", "high"}}`` of a window from its served probabilities.

        Rows with a missing or non-finite probability are left out; an empty window gives
        ``{}``. ``seed`` seeds the label draws (None: ``random_state``).
        """
        check_is_fitted(self)
        unknown = [m for m in metrics if m not in _CLASSIFICATION]
        if unknown:
            raise UsageError(
                f"The 'metrics' argument of PerformanceEstimator.estimate must name "
                f"classification metrics ({', '.join(_CLASSIFICATION)}). Got {unknown!r}."
            )
        proba = self._window(proba)
        proba = proba[np.isfinite(proba).all(axis=1)]
        if len(proba) == 0:
            return {}
        draw_seed = seed if seed is not None else self.random_state
        return estimate_performance(
            proba, calibrated=self.calibrator_.transform(proba), predicted=self._served(proba),
            simulations=self.simulations, confidence=self.confidence,
            seed=0 if draw_seed is None else draw_seed, metrics=tuple(metrics),
        )

    def _window(self, proba: np.ndarray) -> np.ndarray:
        proba = _as_proba(proba, "proba")
        if proba.shape[1] != self.n_classes_:
            raise UsageError(
                f"proba has {proba.shape[1]} columns but the estimator was fitted on "
                f"{self.n_classes_} classes; pass the same model's probabilities."
            )
        return proba

    def _served(self, proba: np.ndarray) -> np.ndarray:
        if self.threshold is None:
            return proba.argmax(axis=1)
        return (proba[:, 1] >= self.threshold).astype(np.int64)

    def _check_params(self) -> None:
        allowed = ("auto", *CALIBRATIONS)
        if self.calibration not in allowed:
            raise UsageError(
                "The 'calibration' parameter of PerformanceEstimator must be one of "
                f"{', '.join(repr(a) for a in allowed)}. Got {self.calibration!r} instead."
            )
        for name, low in (("cv", 2), ("n_bins", 2), ("simulations", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UsageError(
                    f"The {name!r} parameter of PerformanceEstimator must be an int >= {low}. "
                    f"Got {value!r} instead."
                )
        for name, value, optional in (("threshold", self.threshold, True),
                                      ("confidence", self.confidence, False)):
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < 1):
                raise UsageError(
                    f"The {name!r} parameter of PerformanceEstimator must be a float in (0, 1)"
                    f"{' or None' if optional else ''}. Got {value!r} instead."
                )
        seed = self.random_state
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise UsageError(
                "The 'random_state' parameter of PerformanceEstimator must be an int >= 0 or "
                f"None. Got {seed!r} instead."
            )


def reference_estimator(
    profile: Profile, **params: Any
) -> tuple[PerformanceEstimator | None, dict[str, Any]]:
    """The estimator fitted on a stored reference's labelled outputs, and what a window's
    report says about how its performance was estimated.

    A reference stored before driftloop kept the validation labels (or one whose labelled
    sample cannot be fitted) gives None: the window's estimate then trusts the version's
    calibrated probabilities as they are, and the note says so.

    Examples
    --------
    >>> import pandas as pd
    >>> from driftloop.monitor.profile import build_reference
    >>> estimator, note = reference_estimator(build_reference(pd.DataFrame({"x": [1.0]})))
    >>> estimator is None, note["calibration"], note["fallback"]
    (True, 'none', True)
    """
    labelled = profile.labelled
    if labelled is None:
        return None, {
            "calibration": "none", "fallback": True,
            "reason": "this version's reference was stored without labels (before driftloop "
                      "kept the validation labels), so the estimate trusts the version's "
                      "calibrated probabilities as they are; train the model again to get an "
                      "estimator fitted on labelled reference rows",
        }
    proba, labels = labelled.arrays()
    try:
        estimator = PerformanceEstimator(**params).fit(proba, labels)
    except UsageError as exc:
        return None, {"calibration": "none", "fallback": True,
                      "reason": f"the labelled reference could not be fitted: {exc}"}
    return estimator, {
        "calibration": estimator.calibration_, "fallback": False,
        "reference_rows": estimator.n_reference_,
        "held_out_log_loss": {k: round(v, 6) for k, v in estimator.scores_.items()},
    }


def estimate_window(
    estimator: PerformanceEstimator | None, outputs: np.ndarray, *, seed: int
) -> dict[str, dict[str, float | None]]:
    """A window's estimate: by ``estimator``, or (None) from the probabilities as they are.

    >>> estimate_window(None, np.array([[0.9, 0.1], [0.3, 0.7]]), seed=0)["accuracy"]["value"]
    0.8
    """
    if estimator is None:
        return estimate_performance(outputs, seed=seed)
    return estimator.estimate(outputs, seed=seed)


class _Identity:
    """``none``: the probabilities as they are."""

    def fit(self, proba: np.ndarray, labels: np.ndarray) -> _Identity:
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        return proba


class _Temperature:
    """``temperature``: the models package's scaler (the one a version's calibration uses)."""

    def fit(self, proba: np.ndarray, labels: np.ndarray) -> _Temperature:
        self.scaler = TemperatureScaler(inputs="proba").fit(proba, labels)
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        return self.scaler.transform(proba)


class _Dirichlet:
    """``dirichlet``: a multinomial logistic regression on the log-probabilities (Kull et al.
    2019; for a binary model it is beta calibration): a linear map per class of every class's
    log-probability, which undoes a different over- or under-confidence per class."""

    def fit(self, proba: np.ndarray, labels: np.ndarray) -> _Dirichlet:
        self.n_classes = proba.shape[1]
        self.model = None
        if len(np.unique(labels)) > 1:  # one class seen: nothing to learn beyond the rates
            # standardised log-probabilities: lbfgs converges in a tenth of the iterations
            self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            self.model.fit(_log(proba), labels)
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        if self.model is None:
            return proba
        out = np.full((len(proba), self.n_classes), _EPS)
        out[:, self.model.classes_] = self.model.predict_proba(_log(proba))
        out = np.clip(out, _EPS, 1.0)
        return out / out.sum(axis=1, keepdims=True)


def _log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-6, 1.0))


class _HistogramBinning:
    """One class's label frequency per equal-mass bin of its probability.

    Written here because scikit-learn has no histogram-binning calibrator. Each bin's
    frequency is shrunk towards the class's base rate by one pseudo-row, so a bin of few rows
    is never 0 or 1.
    """

    def __init__(self, n_bins: int) -> None:
        self.n_bins = n_bins

    def fit(self, score: np.ndarray, positive: np.ndarray) -> _HistogramBinning:
        levels = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        self.cuts = np.unique(np.quantile(score, levels))
        bins = np.searchsorted(self.cuts, score, side="right")
        count = np.bincount(bins, minlength=len(self.cuts) + 1)
        hits = np.bincount(bins, weights=positive.astype(np.float64),
                           minlength=len(self.cuts) + 1)
        self.values = (hits + positive.mean()) / (count + 1.0)
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.cuts, score, side="right")]


class _OneVsRest:
    """``isotonic`` / ``histogram``: one map per class on its own probability column (a
    binary model: the class-1 column only), then every row renormalised to sum to 1."""

    def __init__(self, kind: str, n_bins: int) -> None:
        self.kind = kind
        self.n_bins = n_bins

    def fit(self, proba: np.ndarray, labels: np.ndarray) -> _OneVsRest:
        columns = [1] if proba.shape[1] == 2 else range(proba.shape[1])
        self.maps = {c: self._map().fit(proba[:, c], labels == c) for c in columns}
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        if len(self.maps) == 1:  # binary
            positive = np.clip(self.maps[1].predict(proba[:, 1]), _EPS, 1 - _EPS)
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack([self.maps[c].predict(proba[:, c]) for c in sorted(self.maps)])
        out = np.clip(out, _EPS, 1.0)
        return out / out.sum(axis=1, keepdims=True)

    def _map(self) -> Any:
        if self.kind == "isotonic":
            return IsotonicRegression(y_min=_EPS, y_max=1 - _EPS, out_of_bounds="clip")
        return _HistogramBinning(self.n_bins)


def _calibrator(name: str, n_bins: int) -> Any:
    if name == "none":
        return _Identity()
    if name == "temperature":
        return _Temperature()
    if name == "dirichlet":
        return _Dirichlet()
    return _OneVsRest(name, n_bins)


def _held_out_losses(
    proba: np.ndarray, labels: np.ndarray, cv: int, n_bins: int, seed: int | None
) -> dict[str, np.ndarray]:
    """Per candidate, each reference row's log-loss under a map fitted on the other folds."""
    counts = np.bincount(labels)
    stratified = counts[counts > 0].min() >= cv  # every present class in every fold
    splitter = (StratifiedKFold if stratified else KFold)(cv, shuffle=True, random_state=seed)
    folds = list(splitter.split(proba, labels))
    rows = np.arange(len(labels))
    losses = {}
    for name in CALIBRATIONS:
        loss = np.empty(len(labels))
        for train, test in folds:
            calibrated = _calibrator(name, n_bins).fit(proba[train], labels[train]).transform(
                proba[test])
            loss[test] = -np.log(np.clip(calibrated[rows[: len(test)], labels[test]], _EPS, 1))
        losses[name] = loss
    return losses


def _one_standard_error(losses: dict[str, np.ndarray]) -> str:
    """The simplest candidate whose mean loss is within one paired standard error of the
    best's (the one-standard-error rule of model selection)."""
    best = min(losses, key=lambda name: float(losses[name].mean()))
    for name in CALIBRATIONS:
        gap = losses[name] - losses[best]
        spread = float(gap.std(ddof=1)) / np.sqrt(len(gap)) if len(gap) > 1 else 0.0
        if float(gap.mean()) <= spread:
            return name
    return best


def _as_proba(values: Any, name: str) -> np.ndarray:
    """N×K probabilities (an N-vector: a binary model's class-1 probabilities); rows that
    are not finite are kept as they are, for the caller to name or leave out."""
    proba = np.asarray(values, dtype=np.float64)
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise UsageError(
            f"{name} must be N×K class probabilities (K >= 2) or N class-1 probabilities of a "
            f"binary model; got shape {np.shape(values)}."
        )
    finite = np.isfinite(proba).all(axis=1)
    checked = proba[finite]
    if checked.size and (checked.min() < -_SUM_TOLERANCE or checked.max() > 1 + _SUM_TOLERANCE
                         or np.abs(checked.sum(axis=1) - 1).max() > _SUM_TOLERANCE):
        raise UsageError(
            f"{name} must hold probabilities in [0, 1] whose rows sum to 1; pass the model's "
            "predict_proba output (not logits or decision scores)."
        )
    return np.clip(proba, 0.0, 1.0)  # NaN stays NaN


def _as_codes(values: Any, n_classes: int) -> np.ndarray:
    labels = np.asarray(values)
    if labels.ndim != 1:
        raise UsageError(f"reference_labels must be one class code per row; got shape "
                         f"{labels.shape}.")
    try:
        codes = labels.astype(np.int64)
    except (TypeError, ValueError):
        codes = None
    if codes is None or not np.array_equal(codes, labels) or (
            len(codes) and (codes.min() < 0 or codes.max() >= n_classes)):
        bad = next((v for v in labels.tolist()
                    if not (isinstance(v, (int, float)) and float(v).is_integer()
                            and 0 <= v < n_classes)), None)
        raise UsageError(
            f"reference_labels must be class codes 0 … {n_classes - 1} (the column of the true "
            f"class in reference_proba); got {bad!r}. Map labels to codes with the model's "
            "class order first."
        )
    return codes


__all__ = ["CALIBRATIONS", "PerformanceEstimator", "estimate_window", "reference_estimator"]
