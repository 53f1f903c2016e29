"""driftloop: train PyTorch models data-parallel and keep them healthy after deployment.

Examples
--------
>>> import driftloop as dl
>>> sorted(dl.__all__)[:3]
['DataReport', 'DriftloopError', 'Registry']
"""

from importlib.metadata import PackageNotFoundError, version

from driftloop.data.check import DataReport, check_data
from driftloop.errors import DriftloopError
from driftloop.registry import Registry
from driftloop.train.launcher import TrainResult, train

try:
    __version__ = version("driftloop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "DataReport",
    "DriftloopError",
    "Registry",
    "TrainResult",
    "__version__",
    "check_data",
    "train",
]
