"""Canonical JSON: one byte string per value, so equal content always hashes equally.

Keys are sorted, separators carry no spaces, text is UTF-8 (not ``\\u`` escapes), and NaN or
infinity are refused because JSON has no such numbers.

Examples
--------
>>> canonical_json({"b": 1, "a": [1.5, "é"]})
b'{"a":[1.5,"\\xc3\\xa9"],"b":1}'
>>> canonical_json({"metrics": {"auc": float("nan")}})
Traceback (most recent call last):
...
driftloop.errors.UsageError: cannot write JSON: $.metrics.auc is nan, and JSON has no NaN or infinity. Replace it with null or a string.
"""  # noqa: E501

from __future__ import annotations

import json
import math
from typing import Any

from driftloop.errors import UsageError


def canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON bytes (sorted keys, compact, UTF-8, finite numbers).

    Parameters
    ----------
    obj
        A value made of dicts, lists, tuples, str, int, float, bool and None.

    Returns
    -------
    bytes
        The UTF-8 encoded JSON text.

    Raises
    ------
    UsageError
        When ``obj`` holds NaN, infinity, a circular reference or a value JSON cannot hold.

    Examples
    --------
    >>> canonical_json({"z": None, "a": (1, 2)})
    b'{"a":[1,2],"z":null}'
    """
    try:
        text = json.dumps(
            obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except ValueError as exc:
        where = _non_finite_path(obj, "$")
        if where is None:
            raise UsageError(f"cannot write JSON: {exc}. Pass a value without cycles.") from None
        path, value = where
        raise UsageError(
            f"cannot write JSON: {path} is {value}, and JSON has no NaN or infinity. "
            "Replace it with null or a string."
        ) from None
    except TypeError as exc:
        raise UsageError(
            f"cannot write JSON: {exc}. Convert the value to str, int, float, bool, None, "
            "a list or a dict with string keys first."
        ) from None
    return text.encode("utf-8")


def _non_finite_path(obj: Any, path: str) -> tuple[str, float] | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path, obj
    if isinstance(obj, dict):
        items: Any = ((f"{path}.{key}", value) for key, value in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{path}[{i}]", value) for i, value in enumerate(obj))
    else:
        return None
    for child_path, value in items:
        found = _non_finite_path(value, child_path)
        if found is not None:
            return found
    return None


__all__ = ["canonical_json"]
