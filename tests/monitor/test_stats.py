"""The drift tests one by one, against scipy where scipy has the same computation, and one
conformance check that runs over every registered test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from driftloop.config import DriftSettings
from driftloop.monitor.profile import FeatureProfile, build_reference, profile_like
from driftloop.monitor.stats import (
    TESTS,
    NotTestable,
    adjust,
    contingency,
    jensen_shannon,
    ks_binned,
    missing_rate,
    psi,
    spread,
    wasserstein_binned,
)

BINNED = DriftSettings(exact_max_rows=0)  # never keep samples: the binned path


def _pair(ref: np.ndarray, cur: np.ndarray, cfg: DriftSettings = BINNED):
    reference = build_reference(pd.DataFrame({"v": ref}), settings=cfg)
    current = profile_like(reference, pd.DataFrame({"v": cur}), settings=cfg)
    return reference.features["v"], current.features["v"]


def test_binned_ks_never_exceeds_the_exact_statistic_so_its_p_value_is_conservative():
    rng = np.random.default_rng(0)
    for shift in (0.0, 0.05, 0.2):
        a, b = rng.normal(size=3000), rng.normal(shift, 1, 2000)
        ref, cur = _pair(a, b)
        d, p = ks_binned(np.asarray(ref.counts), np.asarray(cur.counts))
        exact = stats.ks_2samp(a, b, method="asymp")
        assert d <= exact.statistic + 1e-12
        assert p >= exact.pvalue - 1e-12
        assert d == pytest.approx(exact.statistic, abs=0.02)  # 100 bins lose little


def test_binned_ks_equals_the_exact_statistic_on_discrete_data():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 4000).astype(float), rng.integers(0, 6, 4000).astype(float)
    ref, cur = _pair(a, b)
    d, _ = ks_binned(np.asarray(ref.counts), np.asarray(cur.counts))
    assert d == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_binned_wasserstein_is_close_to_scipys_on_the_raw_values():
    rng = np.random.default_rng(2)
    for shift, scale in ((0.0, 1.0), (0.3, 1.0), (0.0, 1.5), (1.0, 0.5)):
        a, b = rng.normal(size=20_000), rng.normal(shift, scale, 20_000)
        ref, cur = _pair(a, b)
        binned = wasserstein_binned(np.asarray(ref.edges), np.asarray(ref.counts),
                                    np.asarray(cur.counts))
        assert binned == pytest.approx(stats.wasserstein_distance(a, b), abs=0.03)


def test_psi_jensen_shannon_and_their_edge_cases():
    assert psi(np.array([50, 50]), np.array([50, 50])) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(np.array([50, 50]), np.array([80, 20])) == pytest.approx(expected)
    assert math.isfinite(psi(np.array([100, 0]), np.array([0, 100])))  # empty bins: epsilon
    assert jensen_shannon(np.array([3, 7]), np.array([30, 70])) == 0.0
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == 1.0


def test_chi_square_pools_sparse_categories_and_merges_sparse_bins():
    stat, p, how = contingency(np.array([500, 480, 2, 1, 0]), np.array([510, 470, 0, 3, 0]),
                               ordered=False)
    assert "4 categories, 3 sparse pooled into 1" == how
    table = np.array([[500, 480 + 3], [510, 470 + 3]])
    reference = stats.chi2_contingency(table[:, ::-1], correction=False)
    assert (stat, p) == pytest.approx((reference.statistic, reference.pvalue))
    _, _, how = contingency(np.full(100, 3), np.full(100, 2), ordered=True)
    assert how.startswith("100 bins merged into")
    with pytest.raises(NotTestable, match="fewer than two categories"):
        contingency(np.array([100, 1]), np.array([3, 0]), ordered=False)


def test_missing_rate_uses_fisher_for_small_counts_and_skips_nothing_to_test():
    p, effect = missing_rate(1, 20, 6, 20)
    assert p == pytest.approx(stats.fisher_exact([[1, 19], [6, 14]]).pvalue)
    assert effect == pytest.approx(0.25)
    p, _ = missing_rate(100, 1000, 150, 1000)
    table = [[100, 900], [150, 850]]
    assert p == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    assert missing_rate(0, 50, 0, 80) == (None, 0.0)
    assert missing_rate(50, 50, 80, 80) == (None, 0.0)


def test_corrections():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    bh = adjust(p, "bh")
    # Benjamini–Hochberg by hand: min over j >= i of p_(j) * m / j
    m = len(p)
    manual = np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1]
    assert bh == pytest.approx(np.minimum(manual, 1))
    assert adjust(p, "bonferroni") == pytest.approx(np.minimum(p * m, 1))
    assert adjust(p, "none") == pytest.approx(p)
    assert adjust([], "bh").tolist() == []
    with pytest.raises(ValueError, match="bh, bonferroni or none"):
        adjust(p, "holm")


def test_spread_falls_back_to_the_iqr_and_then_to_none():
    ref, _ = _pair(np.random.default_rng(0).normal(0, 2, 10_000), np.zeros(2))
    assert spread(ref) == pytest.approx(2, rel=0.05)
    no_std = FeatureProfile(**{**ref.__dict__, "std": 0.0})
    assert spread(no_std) == pytest.approx(2, rel=0.05)  # IQR / 1.349 of a normal
    constant, _ = _pair(np.full(10, 3.0), np.zeros(2))
    assert spread(constant) is None


def _profiles(kind: str, shifted: bool, n: int = 2000, cfg: DriftSettings = BINNED):
    rng = np.random.default_rng(7)
    if kind == "numeric":
        ref = pd.DataFrame({"v": rng.normal(size=n)})
        cur = pd.DataFrame({"v": rng.normal(1.0 if shifted else 0.0, 1, n)})
    else:
        ref = pd.DataFrame({"v": rng.choice(list("abcd"), n)})
        p = [0.7, 0.1, 0.1, 0.1] if shifted else [0.25] * 4
        cur = pd.DataFrame({"v": rng.choice(list("abcd"), n, p=p)})
    reference = build_reference(ref, settings=cfg)
    return reference.features["v"], profile_like(reference, cur, settings=cfg).features["v"]


@pytest.mark.parametrize("name,kind", [(t.name, k) for t in TESTS.values() for k in t.kinds])
@pytest.mark.parametrize("cfg", [BINNED, DriftSettings()], ids=["binned", "exact"])
def test_every_test_finds_a_clear_shift_and_not_a_copy(name, kind, cfg):
    test = TESTS[name]
    floors = DriftSettings().effect_floors
    ref, cur = _profiles(kind, shifted=True, cfg=cfg)
    found = test.run(ref, cur)
    assert found.p_value < 1e-6 and found.effect_size >= floors[test.effect_metric]
    same = test.run(ref, profile_like_self(ref, kind, cfg))
    assert same.p_value > 0.5 and same.effect_size < 0.05
    for result in (found, same):
        assert all(math.isfinite(x) for x in (result.statistic, result.p_value,
                                              result.effect_size))
        assert result.method


def profile_like_self(ref: FeatureProfile, kind: str, cfg: DriftSettings) -> FeatureProfile:
    """The reference's own values counted again as a current profile (a perfect copy)."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=2000) if kind == "numeric" else rng.choice(list("abcd"), 2000)
    reference = build_reference(pd.DataFrame({"v": values}), settings=cfg)
    assert reference.features["v"].counts == ref.counts
    return profile_like(reference, pd.DataFrame({"v": values}), settings=cfg).features["v"]


def test_an_undefined_p_value_is_not_testable_never_no_drift(monkeypatch):
    # a NaN p-value used to become 1.0 ("no drift"); scipy returns NaN on degenerate tables
    import driftloop.monitor.stats as module
    from driftloop.monitor.drift import compare

    class _Nan:
        statistic, pvalue = 1.0, float("nan")

    monkeypatch.setattr(module.stats, "chi2_contingency", lambda *a, **k: _Nan())
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": rng.choice(list("abcd"), 2000)})
    reference = build_reference(frame, settings=DriftSettings())
    report = compare(reference, profile_like(reference, frame, settings=DriftSettings()),
                     settings=DriftSettings())
    (feature,) = report.features
    assert feature.status == "not_testable" and "NaN" in feature.reason
    assert feature.p_value is None and feature.missing["p_value"] is None
