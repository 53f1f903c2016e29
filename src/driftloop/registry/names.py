"""Model names: safe wherever a name becomes a path, a URL segment or a file name.

A model name is 1 to 128 letters, digits, ``.``, ``_`` or ``-``, starting with a letter or a
digit, and never ``..`` anywhere — so ``/v1/models/{name}/predict``, an export folder or a
card file named after it cannot point anywhere else. Alias names have their own, stricter rule
(:func:`driftloop.registry.aliases.check_alias`).

Examples
--------
>>> check_model_name("credit-risk_v2.1")
'credit-risk_v2.1'
>>> model_name_from("My loans 2024")
'My-loans-2024'
>>> check_model_name("../etc")
Traceback (most recent call last):
...
driftloop.errors.UsageError: model name '../etc' must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..' (e.g. credit-risk, churn_v2).
"""  # noqa: E501

from __future__ import annotations

import re

from driftloop.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_model_name(name: object) -> bool:
    """Whether ``name`` is a valid model name.

    >>> is_model_name("churn"), is_model_name("a/b"), is_model_name("a\\nb"), is_model_name(3)
    (True, False, False, False)
    """
    return isinstance(name, str) and bool(_NAME.match(name)) and ".." not in name


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`UsageError` naming it."""
    if not is_model_name(name):
        raise UsageError(
            f"model name {name!r} must be 1 to 128 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit, without '..' (e.g. credit-risk, churn_v2)."
        )
    assert isinstance(name, str)
    return name


def model_name_from(text: str) -> str:
    """A valid model name made from ``text`` (a file's stem): unsafe runs become ``-``."""
    name = _UNSAFE.sub("-", text).replace("..", "-").strip("-._")[:128]
    return name if is_model_name(name) else "model"


__all__ = ["check_model_name", "is_model_name", "model_name_from"]
