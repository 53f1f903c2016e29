"""Monitoring: reference profiles, drift tests and the drift report.

``dl.drift(reference, current)`` (:func:`driftloop.monitor.drift.drift`) compares two datasets
(or a model version's stored reference profile with new data) and returns a
:class:`DriftReport`; :func:`build_reference`, :func:`profile_like` and :func:`compare` are the
parts it is made of, for windows of a prediction log or server replicas whose profiles merge
by adding counts. :class:`PerformanceEstimator` estimates a model's accuracy, macro F1 and
ROC AUC from its probabilities alone (also for models trained elsewhere). The function
``drift`` is not re-exported here on purpose: it would shadow
the submodule ``driftloop.monitor.drift``.
"""

from driftloop.monitor.drift import DriftReport, FeatureDrift, compare
from driftloop.monitor.estimator import PerformanceEstimator
from driftloop.monitor.profile import FeatureProfile, Profile, build_reference, profile_like
from driftloop.monitor.reference import load_reference, store_reference
from driftloop.monitor.stats import TESTS, DriftTest, TestResult

__all__ = [
    "TESTS",
    "DriftReport",
    "DriftTest",
    "FeatureDrift",
    "FeatureProfile",
    "PerformanceEstimator",
    "Profile",
    "TestResult",
    "build_reference",
    "compare",
    "load_reference",
    "profile_like",
    "store_reference",
]
