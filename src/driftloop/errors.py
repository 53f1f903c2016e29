"""The one exception tree of driftloop.

::

    DriftloopError                 base: every error driftloop raises on purpose
    ├── UsageError                 bad input or usage; the CLI exits 2 (file, column, flag, value)
    │   ├── DataError              a data file or frame that cannot be used as given
    │   └── ConfigError            driftloop.yaml / DRIFTLOOP_* / a flag holds a bad value
    ├── NotFoundError              a model, version, run or artifact that does not exist (exit 2)
    ├── IntegrityError             an artifact or record whose content does not match its hash
    ├── TrainingError              training failed (a rank crashed, the loss became NaN, …)
    ├── ConflictError              another process holds or just changed the same records
    └── CheckFailed                a check ran and refused (gate, drift); the CLI exits 1

Every message names what was wrong (file, row, column, field, value) and what to do.

Examples
--------
>>> from driftloop.errors import DataError, DriftloopError
>>> issubclass(DataError, DriftloopError)
True
>>> DataError("column 'age' has text").exit_code
2
"""

from __future__ import annotations


class DriftloopError(Exception):
    """Base class of every error driftloop raises on purpose."""

    exit_code = 1


class UsageError(DriftloopError):
    """Bad input or usage: the CLI prints the message and exits 2."""

    exit_code = 2


class DataError(UsageError):
    """A data file or frame that cannot be used as given."""


class ConfigError(UsageError):
    """A setting in driftloop.yaml, a DRIFTLOOP_* variable or a flag holds a bad value."""


class NotFoundError(DriftloopError):
    """A model, version, run or artifact that does not exist."""

    exit_code = 2


class IntegrityError(DriftloopError):
    """Stored content does not match the hash it was recorded under."""


class TrainingError(DriftloopError):
    """Training failed: a rank crashed, the loss became NaN, the launcher could not start."""


class ConflictError(DriftloopError):
    """Another process holds the lock on, or just changed, the records this one needed."""


class CheckFailed(DriftloopError):
    """A check ran and refused (a promotion gate, drift with --fail-on-drift)."""

    exit_code = 1


__all__ = [
    "CheckFailed",
    "ConfigError",
    "ConflictError",
    "DataError",
    "DriftloopError",
    "IntegrityError",
    "NotFoundError",
    "TrainingError",
    "UsageError",
]
