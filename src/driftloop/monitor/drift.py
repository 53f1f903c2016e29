"""``dl.drift``: did the data (and the model's outputs) move away from the reference?

:func:`compare` runs, for every feature, the test its kind or ``drift.tests`` names
(:data:`driftloop.monitor.stats.TESTS`) and a test of its missing rate; for every model output
the numeric test. All p-values of one report are one family, corrected together
(Benjamini–Hochberg by default, Bonferroni or none by ``drift.correction``). A test says
"drift" only when its corrected p-value is below ``alpha`` AND its effect size reaches the
floor of its effect metric (``drift.effect_floors``), so a trivial shift in a million rows is
significant but not an alarm; both numbers are reported. The dataset drifts when the share of
drifting features (among the testable ones) reaches ``share_threshold``, or when any model
output drifts (prediction drift). A feature that cannot be tested gets status
``not_testable`` with the reason, never NaN.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
>>> cur = pd.DataFrame({"x": rng.normal(1, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
>>> report = drift(ref, cur, settings=DriftSettings())
>>> [(f.name, f.status) for f in report.features]
[('x', 'drift'), ('c', 'ok')]
>>> report.share_drifted, report.drift_detected
(0.5, True)
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings, Settings
from driftloop.errors import ConfigError, DataError, UsageError
from driftloop.monitor.drift_html import render_html
from driftloop.monitor.model_outputs import load_model_reference, output_profiles
from driftloop.monitor.profile import (
    FeatureProfile,
    Profile,
)
from driftloop.monitor.sources import current_profile, is_file_like, reference_profile
from driftloop.monitor.stats import (
    DEFAULT_TESTS,
    TESTS,
    DriftTest,
    NotTestable,
    TestResult,
    adjust,
    missing_rate,
)

STATUSES: tuple[str, ...] = ("ok", "drift", "not_testable")
Source = str | os.PathLike[str] | pd.DataFrame | Profile


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature (or one model output).

    Attributes
    ----------
    test, statistic, p_value, p_value_adjusted
        The distribution test, its statistic, raw and family-corrected p-values (None when not
        tested).
    effect_size, effect_metric
        How far the distributions are apart (None when not tested) and in which metric.
    drifted, status
        ``status`` is ``"drift"`` (the distribution or the missing rate drifted), ``"ok"`` or
        ``"not_testable"`` (``reason`` says why; the missing rate may still have been tested).
    missing
        ``{"reference_rate", "current_rate", "p_value", "p_value_adjusted", "effect_size",
        "drifted"}`` of the missing-rate test (p-values None when there was nothing to test).
    method
        How the test was computed (exact or binned, what was pooled).
    """

    name: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None
    effect_size: float | None
    effect_metric: str
    drifted: bool
    status: str
    reason: str | None
    missing: dict[str, Any]
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: every number finite or None."""
        return _clean(dataclasses.asdict(self))


@dataclass(frozen=True)
class DriftReport:
    """Per-feature and prediction drift of current data against a reference.

    ``to_dict()`` is what ``driftloop drift --json`` prints; ``to_html()`` a page to share.
    """

    drift_detected: bool
    share_drifted: float | None
    correction: str
    alpha: float
    features: list[FeatureDrift]
    prediction: dict[str, Any]
    reference_rows: int
    current_rows: int
    share_threshold: float = 0.5
    effect_floors: dict[str, float] = field(default_factory=dict)
    n_tests: int = 0

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted."""
        return [f.name for f in self.features if f.drifted]

    def fails(self, on: str = "feature") -> bool:
        """Whether a check step should fail on this report.

        ``on="feature"``: any feature drifted (after the correction and the effect floor) or
        the model's output did — what a CI step guarding one pipeline expects. ``on="dataset"``:
        the dataset-level verdict, :attr:`drift_detected` (the share rule, or output drift).

        >>> r = DriftReport(False, 0.1, "bh", 0.05, [], {"drift_detected": False}, 10, 10)
        >>> r.fails("feature"), r.fails("dataset")
        (False, False)
        """
        if on == "dataset":
            return self.drift_detected
        if on == "feature":
            return bool(self.drifted) or bool(self.prediction.get("drift_detected"))
        raise UsageError(f"fail-on must be 'feature' or 'dataset'; got {on!r}.")

    def headline(self) -> str:
        """One line: the verdict and the numbers behind it.

        >>> DriftReport(False, None, "bh", 0.05, [], {"drift_detected": False, "outputs": []},
        ...             10, 0).headline()
        'no drift: no feature could be tested · 0 tests, bh-corrected at alpha 0.05'
        """
        testable = [f for f in self.features if f.status != "not_testable"]
        if self.share_drifted is None:
            share = "no feature could be tested"
        else:
            share = (f"{len(self.drifted)} of {len(testable)} testable features drifted "
                     f"({self.share_drifted:.0%}; threshold {self.share_threshold:.0%})")
        verdict = "DRIFT" if self.drift_detected else "no drift"
        if self.prediction.get("drift_detected"):
            share += " · prediction drift"
        return (f"{verdict}: {share} · {self.n_tests} tests, {self.correction}-corrected at "
                f"alpha {self.alpha:g}")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON (``json.dumps(..., allow_nan=False)`` works)."""
        testable = [f for f in self.features if f.status != "not_testable"]
        return _clean({
            "drift_detected": self.drift_detected,
            "share_drifted": self.share_drifted,
            "n_features": len(self.features),
            "n_testable": len(testable),
            "n_drifted": len(self.drifted),
            "correction": self.correction,
            "alpha": self.alpha,
            "share_threshold": self.share_threshold,
            "effect_floors": dict(self.effect_floors),
            "n_tests": self.n_tests,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction,
        })

    def to_html(self) -> str:
        """A self-contained HTML page (no scripts, no CDN): the verdict and one table row per
        feature and output; status is written out, colour only repeats it."""
        return render_html(self)


def compare(
    reference: Profile, current: Profile, *, settings: DriftSettings | None = None
) -> DriftReport:
    """Test every feature and output of ``current`` against ``reference``.

    ``current`` must be counted over the reference's bins (:func:`profile_like`); a reference
    feature absent from ``current`` is not testable.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from driftloop.monitor.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(1)
    >>> ref = build_reference(pd.DataFrame({"x": rng.normal(size=50_000)}))
    >>> cur = profile_like(ref, pd.DataFrame({"x": rng.normal(0.02, 1, 50_000)}))
    >>> f = compare(ref, cur).features[0]
    >>> f.p_value_adjusted < 0.05, round(f.effect_size, 2), f.drifted
    (True, 0.03, False)
    """
    settings = settings or DriftSettings()
    pending = [
        _run(name, ref, current.features.get(name), settings)
        for name, ref in reference.features.items()
    ]
    outputs = [
        _run(name, ref, current.outputs.get(name), settings)
        for name, ref in reference.outputs.items()
    ]
    family = [p for item in pending + outputs for p in item.p_values()]
    adjusted = iter(adjust(family, settings.correction).tolist())
    features = [item.decide(adjusted, settings) for item in pending]
    judged_outputs = [item.decide(adjusted, settings) for item in outputs]
    testable = [f for f in features if f.status != "not_testable"]
    share = sum(f.drifted for f in testable) / len(testable) if testable else None
    prediction_drift = any(o.drifted for o in judged_outputs)
    prediction: dict[str, Any] = {
        "drift_detected": prediction_drift,
        "outputs": [o.to_dict() for o in judged_outputs],
    }
    if not reference.outputs:
        prediction["reason"] = "the reference profiles no model outputs"
    elif not current.outputs:
        prediction["reason"] = "the current data has no model outputs"
    return DriftReport(
        drift_detected=bool(
            (share is not None and share >= settings.share_threshold) or prediction_drift
        ),
        share_drifted=share, correction=settings.correction, alpha=settings.alpha,
        features=features, prediction=prediction, reference_rows=reference.rows,
        current_rows=current.rows, share_threshold=settings.share_threshold,
        effect_floors=dict(settings.effect_floors), n_tests=len(family),
    )


def drift(
    reference: Source,
    current: Source,
    *,
    target: str | None = None,
    settings: Settings | DriftSettings | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` feature by feature (and the model's outputs).

    Parameters
    ----------
    reference
        A DataFrame, a CSV/Parquet path, a :class:`Profile`, or ``"NAME:VERSION"``: the
        reference profile stored with that model version at training time (then the model's
        outputs on ``current`` are compared with its outputs on the validation split too).
    current
        A DataFrame, a CSV/Parquet path, or a :class:`Profile` counted with
        :func:`profile_like` on the same reference.
    target
        A column dropped from both before comparing (e.g. the label).
    settings
        driftloop settings (the ``drift:`` section is used) or just the ``drift:`` section;
        None: :meth:`Settings.load`.

    Parquet files are read a few columns at a time, so the table is never in memory as a
    whole. Columns of ``current`` that the reference does not have are ignored.

    Examples
    --------
    >>> import driftloop as dl                                          # doctest: +SKIP
    >>> report = dl.drift("credit:3", "requests-2026-11.parquet")         # doctest: +SKIP
    >>> report.drift_detected, report.drifted                            # doctest: +SKIP
    (False, ['income'])
    """
    full = settings if isinstance(settings, Settings) else None
    config = settings if isinstance(settings, DriftSettings) else (
        full or Settings.load()).drift
    drop = {target} if target is not None else set()
    seen: set[str] = set()  # every column name read, to check the target
    model = None
    if isinstance(reference, (str, os.PathLike)) and not is_file_like(reference):
        model = load_model_reference(str(reference), full or Settings.load())
        ref_profile = model.profile
    else:
        ref_profile = reference_profile(reference, drop, config, seen)
    if isinstance(current, Profile):
        cur_profile = current
    else:
        cur_profile = current_profile(current, ref_profile, drop, config, seen)
    if target is not None and seen and target not in seen:
        raise DataError(
            f"target column {target!r} is in neither the reference nor the current data; "
            "check --target (it only leaves the label out of the comparison)."
        )
    report = compare(ref_profile, cur_profile, settings=config)
    if model is not None and ref_profile.outputs and not isinstance(current, Profile):
        outputs = output_profiles(model, current, config)
        if isinstance(outputs, str):
            return dataclasses.replace(report, prediction={**report.prediction,
                                                           "reason": outputs})
        with_outputs = dataclasses.replace(cur_profile, outputs=outputs)
        report = compare(ref_profile, with_outputs, settings=config)
    return report


# -- one feature ---------------------------------------------------------------------------------


@dataclass
class _Pending:
    """One feature's tests before the family's correction."""

    name: str
    kind: str
    test: DriftTest
    result: TestResult | None
    reason: str | None
    missing: dict[str, Any]

    def p_values(self) -> list[float]:
        found = [] if self.result is None else [self.result.p_value]
        return found + ([] if self.missing["p_value"] is None else [self.missing["p_value"]])

    def decide(self, adjusted: Iterator[float], settings: DriftSettings) -> FeatureDrift:
        floors = settings.effect_floors
        p_adj = None if self.result is None else next(adjusted)
        drifted = self.result is not None and _drifts(
            p_adj, self.result.effect_size, floors.get(self.test.effect_metric, 0.0),
            settings.alpha,
        )
        missing = dict(self.missing)
        missing["p_value_adjusted"] = None if missing["p_value"] is None else next(adjusted)
        missing["drifted"] = missing["p_value"] is not None and _drifts(
            missing["p_value_adjusted"], missing["effect_size"], floors.get("missing_rate", 0.0),
            settings.alpha,
        )
        reason = self.reason
        if self.result is None and missing["p_value"] is not None and reason is not None:
            reason += "; only the missing rate was tested"
        either = drifted or missing["drifted"]
        status = "drift" if either else ("ok" if self.result is not None else "not_testable")
        r = self.result
        return FeatureDrift(
            name=self.name, kind=self.kind, test=self.test.name,
            statistic=None if r is None else _finite(r.statistic),
            p_value=None if r is None else _finite(r.p_value),
            p_value_adjusted=_finite(p_adj), effect_size=None if r is None else _finite(
                r.effect_size),
            effect_metric=self.test.effect_metric, drifted=bool(either), status=status,
            reason=reason, missing=_clean(missing), method=None if r is None else r.method,
        )


def _run(
    name: str, ref: FeatureProfile, cur: FeatureProfile | None, settings: DriftSettings
) -> _Pending:
    test = _choose_test(name, ref, settings)
    missing: dict[str, Any] = {"reference_rate": _rate(ref), "current_rate": None,
                               "p_value": None, "effect_size": None}
    if cur is None:
        return _Pending(name, ref.kind, test, None, "not in the current data", missing)
    _check_same_bins(name, ref, cur)
    missing["current_rate"] = _rate(cur)
    if ref.rows >= 2 and cur.rows >= 2:
        missing["p_value"], missing["effect_size"] = missing_rate(
            ref.missing, ref.rows, cur.missing, cur.rows
        )
    reason = _untestable(ref, cur)
    if reason is not None:
        return _Pending(name, ref.kind, test, None, reason, missing)
    try:
        result = test.run(ref, cur)
    except NotTestable as exc:
        return _Pending(name, ref.kind, test, None, str(exc), missing)
    return _Pending(name, ref.kind, test, result, None, missing)


def _choose_test(name: str, ref: FeatureProfile, settings: DriftSettings) -> DriftTest:
    chosen = settings.tests.get(name, DEFAULT_TESTS[ref.kind])
    test = TESTS.get(chosen)
    if test is None or ref.kind not in test.kinds:
        allowed = [t.name for t in TESTS.values() if ref.kind in t.kinds]
        raise ConfigError(
            f"drift.tests gives {name!r} the test {chosen!r}, which does not apply to a "
            f"{ref.kind} feature. Use one of: {', '.join(allowed)}."
        )
    if test.effect_metric == "wasserstein" and _constant(ref):
        # a constant reference has no spread to scale a distance by: compare the shares
        # below, at and above the constant instead
        return TESTS["chi2"]
    return test


def _untestable(ref: FeatureProfile, cur: FeatureProfile) -> str | None:
    for side, profile in (("reference", ref), ("current data", cur)):
        if profile.rows == 0:
            return f"the {side} has no rows"
        if profile.rows == 1:
            return f"the {side} has a single row; at least 2 are needed"
    for side, profile in (("reference", ref), ("current data", cur)):
        if profile.present == 0:
            return f"every value is missing in the {side}"
        if profile.present == 1:
            return f"only one value is present in the {side}; at least 2 are needed"
    if ref.kind == "numeric" and _constant(ref) and _constant(cur) and (
        ref.minimum == cur.minimum
    ):
        return (f"constant ({ref.minimum:g}) in both the reference and the current data: "
                "nothing to compare, no drift")
    if ref.kind == "categorical":
        ref_slots = np.flatnonzero(ref.counts)
        cur_slots = np.flatnonzero(cur.counts)
        if len(ref_slots) == 1 and ref_slots.tolist() == cur_slots.tolist():
            category = (ref.categories or [])[ref_slots[0]]
            return (f"one category ({category!r}) in both the reference and the current data: "
                    "nothing to compare, no drift")
    return None


def _check_same_bins(name: str, ref: FeatureProfile, cur: FeatureProfile) -> None:
    if (ref.kind, ref.edges, ref.categories, len(ref.counts)) != (
        cur.kind, cur.edges, cur.categories, len(cur.counts)
    ):
        raise UsageError(
            f"feature {name!r}: the current profile was not counted over the reference's bins "
            "or categories. Build it with profile_like(reference, frame)."
        )


def _constant(profile: FeatureProfile) -> bool:
    return profile.minimum is not None and profile.minimum == profile.maximum


def _rate(profile: FeatureProfile) -> float | None:
    return profile.missing / profile.rows if profile.rows else None


def _drifts(p_adjusted: float | None, effect: float | None, floor: float, alpha: float) -> bool:
    if p_adjusted is None or effect is None or not math.isfinite(effect):
        return False
    return p_adjusted < alpha and effect >= floor


# -- reading the two sides -----------------------------------------------------------------------


# -- output ----------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN and infinity to None."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite(obj)
    return obj


__all__ = ["STATUSES", "DriftReport", "FeatureDrift", "compare", "drift"]
