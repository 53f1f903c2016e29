"""Labels as a model's classes: one coercion for feedback, realised metrics and the error stream.

A label sent back as feedback is compared with the classes the model was trained on. JSON and
CSV blur types, so ``1``, ``1.0``, ``"1"`` and ``" 1 "`` are the same class when the classes
are integers; ``True``, ``"true"`` and ``1`` the same when they are booleans; text classes match
text (a number sent for text classes matches its text: ``7`` → ``"7"``). Anything else is not
one of the classes: :func:`coerce_label` answers None and :func:`unknown_label_message` says what
is allowed. Regression labels are finite numbers (or their text).

Examples
--------
>>> [coerce_label(x, [0, 1]) for x in (1, 1.0, "1", " 1 ", True, 2, 1.5, "one")]
[1, 1, 1, 1, 1, None, None, None]
>>> [coerce_label(x, ["no", "yes"]) for x in ("yes", " yes", "YES", 1)]
['yes', 'yes', None, None]
>>> [coerce_label(x, [False, True]) for x in (True, "true", 0, "0", "maybe")]
[True, True, False, False, None]
>>> coerce_label("2.5", None), coerce_label("nan", None), coerce_label(float("inf"), None)
(2.5, None, None)
>>> coerce_label(10 ** 400, [0, 1]), coerce_label(10 ** 400, None)
(None, None)
>>> unknown_label_message("maybe", [False, True])
"label 'maybe' is not one of the model's classes: False, True."
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def coerce_label(label: Any, classes: Sequence[Any] | None) -> Any | None:
    """The class among ``classes`` that ``label`` denotes (None: not one of them).

    ``classes=None`` means a regression model: the label as a finite float, or None.
    """
    if isinstance(label, (list, dict, tuple)) or label is None:
        return None
    if classes is None:
        return _number(label)
    if any(isinstance(c, bool) for c in classes):
        return _boolean(label, classes)
    if all(isinstance(c, Integral) for c in classes):
        value = _number(label)
        if value is None or not value.is_integer():
            return None
        found = [c for c in classes if c == int(value)]
        return found[0] if found else None
    if all(isinstance(c, Real) for c in classes):
        value = _number(label)
        found = [c for c in classes if value is not None and math.isclose(c, value)]
        return found[0] if found else None
    text = label if isinstance(label, str) else (
        str(int(label)) if isinstance(label, float) and label.is_integer() else str(label))
    text = text.strip()
    found = [c for c in classes if str(c) == text]
    return found[0] if found else None


def unknown_label_message(label: Any, classes: Sequence[Any] | None) -> str:
    """What to say about a label :func:`coerce_label` refused."""
    if classes is None:
        return f"label {label!r} is not a finite number; this model predicts a number."
    shown = ", ".join(map(str, list(classes)[:20])) + (" …" if len(classes) > 20 else "")
    return f"label {label!r} is not one of the model's classes: {shown}."


def _number(label: Any) -> float | None:
    if isinstance(label, bool):
        return float(label)
    try:
        if isinstance(label, Real):
            value = float(label)
        elif isinstance(label, str):
            value = float(label.strip())
        else:
            return None
    except (ValueError, OverflowError):  # not a number, or an integer too large for a float
        return None
    return value if math.isfinite(value) else None


def _boolean(label: Any, classes: Sequence[Any]) -> Any | None:
    if isinstance(label, bool):
        value: bool | None = label
    elif isinstance(label, Real) and not isinstance(label, bool):
        value = True if label == 1 else False if label == 0 else None
    elif isinstance(label, str):
        text = label.strip().lower()
        value = True if text in _TRUE else False if text in _FALSE else None
    else:
        value = None
    return value if value is not None and value in classes else None


__all__ = ["coerce_label", "unknown_label_message"]
