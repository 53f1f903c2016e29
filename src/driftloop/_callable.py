"""Packages that are also their stage's public function.

``driftloop.train`` and ``driftloop.evaluate`` are subpackages *and* the names of public
functions (``dl.train(...)``, ``dl.evaluate(...)``). Once a subpackage is imported, Python binds
it as the attribute of ``driftloop``, hiding the function; so each of the two packages is made
callable, passing the call on to its function (imported on first call):

>>> import driftloop as dl
>>> import driftloop.evaluate.report
>>> callable(dl.evaluate), dl.evaluate.function.__module__
(True, 'driftloop.evaluate.report')
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class CallablePackage(types.ModuleType):
    """A package module whose call runs ``function`` (``target`` module, ``name``)."""

    target: str
    name: str

    @property
    def function(self) -> Any:
        """The public function this package stands for."""
        return getattr(importlib.import_module(self.target), self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def make_callable(package: str, target: str, name: str) -> None:
    """Turn the already-importing ``package`` into a :class:`CallablePackage`."""
    cls = type(f"_{name.title()}Package", (CallablePackage,), {"target": target, "name": name})
    sys.modules[package].__class__ = cls


__all__ = ["CallablePackage", "make_callable"]
