"""The drift tests: one table of tests, each a function of two profiles' counts (or samples).

Every test returns a p-value (small: the distributions differ) and an effect size (large: they
differ by much); :mod:`driftloop.monitor.drift` corrects the p-values of one report together
and calls a feature drifted only when both pass. A test never returns NaN: when it cannot run
it raises :class:`NotTestable` with the reason.

========================  ===================  ===========================  ==================
test                      kinds                p-value                      effect (metric)
========================  ===================  ===========================  ==================
``ks`` (numeric default)  numeric              Kolmogorov–Smirnov           normalised
                                                                            Wasserstein
``wasserstein``           numeric              Kolmogorov–Smirnov           normalised
                                                                            Wasserstein
``psi``                   numeric, categorical G-test on the counts         PSI
``chi2`` (categorical     numeric, categorical chi-square on the counts     Jensen–Shannon
default)                                                                    distance
``jensen_shannon``        numeric, categorical chi-square on the counts     Jensen–Shannon
                                                                            distance
========================  ===================  ===========================  ==================

Kolmogorov–Smirnov runs exactly (:func:`scipy.stats.ks_2samp` on the raw values) when both
profiles kept a sample, and otherwise on the binned CDFs, with the asymptotic p-value of
:func:`scipy.stats.kstwo` at ``n_eff = n m / (n + m)`` (as ``ks_2samp(method="asymp")``). The
binned statistic is the largest CDF gap over the bin edges only, never above the exact one, so
the binned test is conservative: it may miss a shift that lives inside one bin, and it never
alarms more often than the exact test would. Above 10,000 effective rows the limit
distribution :func:`scipy.stats.kstwobign` replaces ``kstwo`` (slightly larger p-values). The
Wasserstein distance is divided by the reference's standard deviation (IQR / 1.349 when that
is 0 or unknown); a numeric reference that is constant has no spread and is compared below, at
and above its value with chi-square instead. Chi-square pools the
bins or categories whose expected count is below 5 (adjacent bins merge; sparse categories
pool into one bucket). The missing rate of every feature is compared with Fisher's exact test
when an expected count is below 5 and with chi-square otherwise.

Examples
--------
>>> import numpy as np
>>> d, p = ks_binned(np.array([50, 50]), np.array([50, 50]))
>>> float(d), float(p)
(0.0, 1.0)
>>> round(psi(np.array([50, 50]), np.array([80, 20])), 3)
0.416
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftloop.monitor.profile import FeatureProfile

PSI_EPSILON = 1e-4
"""Share that stands in for an empty bin in PSI (log of zero otherwise)."""
MIN_EXPECTED = 5.0
"""Expected count below which chi-square pools a bin or category."""
KSTWO_MAX_N = 10_000
"""Effective sample size above which the binned KS uses the limit (Kolmogorov) distribution."""


class NotTestable(Exception):
    """A test cannot run on these profiles; ``str(exc)`` says why (never shown as a crash)."""


@dataclass(frozen=True)
class TestResult:
    """What one test found: its statistic, p-value, effect size and how it was computed."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    effect_size: float
    method: str


@dataclass(frozen=True)
class DriftTest:
    """One entry of :data:`TESTS`.

    ``run(reference, current)`` returns a :class:`TestResult` or raises :class:`NotTestable`;
    drift is decided by ``p_value_adjusted < alpha`` and ``effect_size >= floor`` (both
    directions are the same for every test, so they are not stored per test).
    """

    __test__ = False

    name: str
    kinds: tuple[str, ...]
    effect_metric: str
    run: Callable[[FeatureProfile, FeatureProfile], TestResult]


# -- building blocks on counts -----------------------------------------------------------------


def ks_binned(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Kolmogorov–Smirnov statistic over bin edges and its asymptotic p-value (conservative).

    >>> import numpy as np
    >>> d, p = ks_binned(np.array([900, 100]), np.array([100, 900]))
    >>> float(d), p < 1e-100
    (0.8, True)
    """
    n, m = float(ref_counts.sum()), float(cur_counts.sum())
    if n == 0 or m == 0:
        raise NotTestable("no values on one side")
    gaps = np.abs(np.cumsum(ref_counts)[:-1] / n - np.cumsum(cur_counts)[:-1] / m)
    d = float(gaps.max()) if len(gaps) else 0.0
    n_eff = max(1, round(n * m / (n + m)))
    if n_eff > KSTWO_MAX_N:
        # the limit distribution: its p-value is a little larger (by under 1 % of itself
        # here) and it takes microseconds where kstwo takes ~10 ms at n = 500,000
        return d, _prob(stats.kstwobign.sf(d * math.sqrt(n_eff)))
    return d, _prob(stats.kstwo.sf(d, n_eff))


def ks_exact(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """:func:`scipy.stats.ks_2samp` on raw values (exact p-value for small samples).

    >>> d, p = ks_exact([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> float(d), float(p)
    (0.0, 1.0)
    """
    with warnings.catch_warnings():
        # with ties scipy's exact method may fail; it then uses the asymptotic p-value itself
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        result = stats.ks_2samp(np.asarray(reference), np.asarray(current))
    return float(result.statistic), _prob(result.pvalue)


def wasserstein_binned(
    edges: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray
) -> float:
    """Wasserstein-1 distance of two histograms over the same edges, mass uniform in each bin.

    W1 is the integral of ``|F_ref - F_cur|``; with the CDFs linear inside each bin the
    integral is exact per bin (written by hand: scipy's ``wasserstein_distance`` wants point
    masses, which misplaces the mass of wide quantile bins). Widen the outer edges to the
    current data's range first when values lie beyond them.

    >>> import numpy as np
    >>> float(wasserstein_binned(np.array([0.0, 1.0, 2.0]), np.array([1, 0]), np.array([0, 1])))
    1.0
    """
    n, m = float(ref_counts.sum()), float(cur_counts.sum())
    d = np.concatenate(([0.0], np.cumsum(ref_counts) / n - np.cumsum(cur_counts) / m))
    d0, d1, width = d[:-1], d[1:], np.diff(edges)
    same_sign = d0 * d1 >= 0
    total = np.abs(d0) + np.abs(d1)
    crossing = np.divide(d0**2 + d1**2, total, out=np.zeros_like(total), where=total > 0)
    return float(np.sum(width * np.where(same_sign, total, crossing) / 2))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index over the same bins; empty bins count as :data:`PSI_EPSILON`.

    >>> import numpy as np
    >>> psi(np.array([10, 10]), np.array([10, 10]))
    0.0
    """
    p = np.maximum(ref_counts / ref_counts.sum(), PSI_EPSILON)
    q = np.maximum(cur_counts / cur_counts.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) of two count vectors.

    >>> import numpy as np
    >>> jensen_shannon(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    value = float(jensenshannon(ref_counts.astype(float), cur_counts.astype(float), base=2))
    return 0.0 if not math.isfinite(value) else min(max(value, 0.0), 1.0)


def contingency(
    ref_counts: np.ndarray, cur_counts: np.ndarray, *, ordered: bool, g_test: bool = False
) -> tuple[float, float, str]:
    """Chi-square (or G-test) of homogeneity of two count vectors, sparse cells pooled.

    ``ordered``: adjacent bins merge until each has an expected count of 5 or more;
    otherwise the sparse categories pool into one bucket (merged further with the smallest
    category while still sparse). Returns statistic, p-value and what was pooled.

    >>> import numpy as np
    >>> stat, p, how = contingency(np.array([60, 40, 1]), np.array([40, 60, 0]), ordered=False)
    >>> round(stat, 2), round(p, 4), how
    (8.36, 0.0038, '3 categories, 2 sparse pooled into 1')
    """
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    k = table.shape[1]
    merged = _merge_adjacent(table) if ordered else _pool_sparse(table)
    if merged.shape[1] < 2:
        what = "bins" if ordered else "categories"
        raise NotTestable(
            f"fewer than two {what} with an expected count of {MIN_EXPECTED:g} or more "
            "(too few rows, or all values in one)"
        )
    lambda_ = "log-likelihood" if g_test else None
    result = stats.chi2_contingency(merged, correction=False, lambda_=lambda_)
    kept = merged.shape[1]
    if ordered:
        how = f"{k} bins" + (f" merged into {kept}" if kept < k else "")
    else:
        how = f"{k} categories" + (f", {k - kept + 1} sparse pooled into 1" if kept < k else "")
    return float(result.statistic), _prob(result.pvalue), how


def missing_rate(
    ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int
) -> tuple[float | None, float]:
    """p-value of "same missing rate" (None when no value, or every value, is missing on both
    sides: nothing to test) and the absolute difference of the rates.

    >>> p, effect = missing_rate(0, 1000, 1000, 1000)
    >>> p < 1e-100, effect
    (True, 1.0)
    """
    ref_rate, cur_rate = ref_missing / ref_rows, cur_missing / cur_rows
    effect = abs(cur_rate - ref_rate)
    table = np.array([[ref_missing, ref_rows - ref_missing], [cur_missing, cur_rows - cur_missing]])
    if (table.sum(axis=0) == 0).any():
        return None, effect
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    try:
        if expected.min() < MIN_EXPECTED:
            return _prob(stats.fisher_exact(table).pvalue), effect
        return _prob(stats.chi2_contingency(table, correction=False).pvalue), effect
    except NotTestable:  # an undefined p-value: nothing to test, like no value missing at all
        return None, effect


def adjust(p_values: Sequence[float], correction: str) -> np.ndarray:
    """Adjusted p-values of one family: ``bh`` (Benjamini–Hochberg), ``bonferroni`` or ``none``.

    >>> adjust([0.01, 0.02, 0.5], "bh").round(3).tolist()
    [0.03, 0.03, 0.5]
    >>> adjust([0.01, 0.02, 0.5], "bonferroni").round(3).tolist()
    [0.03, 0.06, 1.0]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if len(p) == 0 or correction == "none":
        return p
    if correction == "bh":
        return np.asarray(stats.false_discovery_control(p, method="bh"))
    if correction == "bonferroni":
        return np.minimum(p * len(p), 1.0)
    raise ValueError(f"correction must be bh, bonferroni or none; got {correction!r}.")


def spread(profile: FeatureProfile) -> float | None:
    """The reference's spread: its std, else IQR / 1.349 from the binned CDF, else None.

    >>> f = FeatureProfile("x", "numeric", 4, 0, [0.0, 1.0, 2.0], None, [2, 2], 0.0, 1.9, None)
    >>> round(spread(f), 4)
    0.7413
    """
    if profile.std is not None and profile.std > 0 and math.isfinite(profile.std):
        return profile.std
    if profile.minimum is not None and profile.minimum == profile.maximum:
        return None
    counts = np.asarray(profile.counts, dtype=np.float64)
    if profile.edges is None or len(profile.edges) < 2 or counts.sum() == 0:
        return None
    cdf = np.concatenate(([0.0], np.cumsum(counts) / counts.sum()))
    q1, q3 = np.interp([0.25, 0.75], cdf, profile.edges)
    iqr = float(q3 - q1) / 1.349
    return iqr if iqr > 0 else None


# -- the tests ---------------------------------------------------------------------------------


def _ks_parts(ref: FeatureProfile, cur: FeatureProfile) -> tuple[float, float, float, str]:
    """KS statistic and p-value, normalised Wasserstein distance, method."""
    scale = spread(ref)
    if scale is None:
        raise NotTestable("the reference has no spread (constant) to scale the distance by")
    if ref.sample is not None and cur.sample is not None:
        d, p = ks_exact(ref.sample, cur.sample)
        w = float(stats.wasserstein_distance(ref.sample, cur.sample))
        return d, p, w / scale, "exact KS and Wasserstein on the raw values"
    r, c, edges = _numeric_counts(ref, cur)
    d, p = ks_binned(r, c)
    # the guard bins below and above the reference reach as far as the current values do
    if cur.minimum is not None and cur.maximum is not None:
        edges[0], edges[-1] = min(edges[0], cur.minimum), max(edges[-1], cur.maximum)
    w = wasserstein_binned(edges, r, c)
    return d, p, w / scale, f"KS on {len(r)} bins (asymptotic p, conservative)"


def _ks(ref: FeatureProfile, cur: FeatureProfile) -> TestResult:
    d, p, w, how = _ks_parts(ref, cur)
    return TestResult(d, p, w, how)


def _wasserstein(ref: FeatureProfile, cur: FeatureProfile) -> TestResult:
    _, p, w, how = _ks_parts(ref, cur)
    return TestResult(w, p, w, how)


def _reference_counts(ref: FeatureProfile) -> np.ndarray:
    """The counts a test compares with: the held-out half of a truncated categorical."""
    return np.asarray(ref.counts if ref.test_counts is None else ref.test_counts)


def _psi(ref: FeatureProfile, cur: FeatureProfile) -> TestResult:
    r, c = _reference_counts(ref), np.asarray(cur.counts)
    g, p, how = contingency(r, c, ordered=ref.kind == "numeric", g_test=True)
    return TestResult(g, p, psi(r, c), f"G-test, {how}")


def _chi2(ref: FeatureProfile, cur: FeatureProfile) -> TestResult:
    r, c = _reference_counts(ref), np.asarray(cur.counts)
    chi2, p, how = contingency(r, c, ordered=ref.kind == "numeric")
    return TestResult(chi2, p, jensen_shannon(r, c), f"chi-square, {how}")


def _jensen_shannon(ref: FeatureProfile, cur: FeatureProfile) -> TestResult:
    result = _chi2(ref, cur)
    return TestResult(result.effect_size, result.p_value, result.effect_size, result.method)


def _numeric_counts(
    ref: FeatureProfile, cur: FeatureProfile
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(ref.counts, dtype=np.float64), np.asarray(cur.counts, dtype=np.float64),
            np.asarray(ref.edges, dtype=np.float64))


TESTS: dict[str, DriftTest] = {
    test.name: test
    for test in (
        DriftTest("ks", ("numeric",), "wasserstein", _ks),
        DriftTest("wasserstein", ("numeric",), "wasserstein", _wasserstein),
        DriftTest("psi", ("numeric", "categorical"), "psi", _psi),
        DriftTest("chi2", ("numeric", "categorical"), "jensen_shannon", _chi2),
        DriftTest("jensen_shannon", ("numeric", "categorical"), "jensen_shannon",
                  _jensen_shannon),
    )
}
"""Every drift test by name; ``drift.tests`` in the settings picks one per feature."""

DEFAULT_TESTS: dict[str, str] = {"numeric": "ks", "categorical": "chi2"}
"""The test a feature gets when ``drift.tests`` names none, by kind."""


def _merge_adjacent(table: np.ndarray) -> np.ndarray:
    # merge neighbouring bins left to right until each reaches the expected-count floor;
    # a short last group joins the group before it
    totals, n = table.sum(axis=0), table.sum()
    floor = MIN_EXPECTED * n / table.sum(axis=1).min()  # column total giving expected >= 5
    groups, current, size = [], [], 0.0
    for j, total in enumerate(totals):
        current.append(j)
        size += total
        if size >= floor:
            groups.append(current)
            current, size = [], 0.0
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    return np.stack([table[:, g].sum(axis=1) for g in groups], axis=1)


def _pool_sparse(table: np.ndarray) -> np.ndarray:
    totals, n = table.sum(axis=0), table.sum()
    floor = MIN_EXPECTED * n / table.sum(axis=1).min()
    sparse = totals < floor
    if not sparse.any():
        return table
    kept = table[:, ~sparse]
    pool = table[:, sparse].sum(axis=1, keepdims=True)
    order = np.argsort(kept.sum(axis=0), kind="stable")
    kept = kept[:, order]
    # still sparse: merge the pool with the smallest categories until it is not
    while pool.sum() < floor and kept.shape[1] > 0:
        pool = pool + kept[:, :1]
        kept = kept[:, 1:]
    return np.hstack([kept, pool])


def _prob(p: float) -> float:
    """A p-value clipped to [0, 1]; NaN is not "no drift" but :class:`NotTestable`."""
    p = float(p)
    if math.isnan(p):
        raise NotTestable("the test's p-value is undefined (NaN) for these counts")
    return min(max(p, 0.0), 1.0)


__all__ = [
    "DEFAULT_TESTS",
    "KSTWO_MAX_N",
    "MIN_EXPECTED",
    "PSI_EPSILON",
    "TESTS",
    "DriftTest",
    "NotTestable",
    "TestResult",
    "adjust",
    "contingency",
    "jensen_shannon",
    "ks_binned",
    "ks_exact",
    "missing_rate",
    "psi",
    "spread",
    "wasserstein_binned",
]
