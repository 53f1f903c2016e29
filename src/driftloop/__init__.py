"""driftloop: train PyTorch models data-parallel and keep them healthy after deployment.

Examples
--------
>>> import driftloop as dl
>>> sorted(dl.__all__)[:3]
['DataReport', 'DriftReport', 'DriftloopError']
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from driftloop._lazy import lazy_getattr
from driftloop.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop.data.check import DataReport, check_data
    from driftloop.evaluate.report import EvaluationReport
    from driftloop.monitor.drift import DriftReport, drift
    from driftloop.registry import Registry
    from driftloop.registry.registry import evaluate
    from driftloop.train.launcher import TrainResult, train

# Imported on first use: torch, pandas and SQLAlchemy take seconds to import, and
# `driftloop --help` or a worker rank should not pay for stages it does not use. This table is
# also where the packages named like a public function (`driftloop.train`, `driftloop.evaluate`)
# find the function their call stands for (see driftloop._callable): the package root is the
# public facade above every layer, so binding names to stages here adds no upward import.
_LAZY = {
    "DataReport": "driftloop.data.check",
    "check_data": "driftloop.data.check",
    "EvaluationReport": "driftloop.evaluate.report",
    "evaluate": "driftloop.registry.registry",
    "DriftReport": "driftloop.monitor.drift",
    "drift": "driftloop.monitor.drift",
    "Registry": "driftloop.registry",
    "TrainResult": "driftloop.train.launcher",
    "train": "driftloop.train.launcher",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "DataReport",
    "DriftReport",
    "DriftloopError",
    "EvaluationReport",
    "Registry",
    "TrainResult",
    "__version__",
    "check_data",
    "drift",
    "evaluate",
    "train",
]
