"""The store's clock: every timestamp driftloop records is aware UTC.

Examples
--------
>>> utcnow().tzinfo
datetime.timezone.utc
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime.

    Examples
    --------
    >>> now = utcnow()
    >>> now.tzinfo, now.utcoffset().total_seconds()
    (datetime.timezone.utc, 0.0)
    """
    return datetime.now(timezone.utc)


__all__ = ["utcnow"]
