"""Packages that are also the name of a public function.

``driftloop.train`` and ``driftloop.evaluate`` are subpackages *and* the names of public
functions (``dl.train(...)``, ``dl.evaluate(...)``). Once a subpackage is imported, Python binds
it as the attribute of ``driftloop``, hiding the function; so each of the two packages is made
callable, passing the call on to the function that the package root's public table
(``driftloop._LAZY``) binds to that name. The package itself names no module: ``dl.evaluate``
is the registry's (it loads a version, evaluates, stores the report), while
``driftloop.evaluate`` stays pure and below the registry.

>>> import driftloop as dl
>>> import driftloop.evaluate.report
>>> callable(dl.evaluate), dl.evaluate.function.__module__
(True, 'driftloop.registry.registry')
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class CallablePackage(types.ModuleType):
    """A package module whose call runs the public function of the same name."""

    @property
    def function(self) -> Any:
        """The public function this package stands for (imported on first use)."""
        name = self.__name__.rpartition(".")[2]
        target = sys.modules["driftloop"]._LAZY[name]  # the facade's table, see its docstring
        return getattr(importlib.import_module(target), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def make_callable(package: str) -> None:
    """Turn the already-importing ``package`` into a :class:`CallablePackage`."""
    sys.modules[package].__class__ = CallablePackage


__all__ = ["CallablePackage", "make_callable"]
