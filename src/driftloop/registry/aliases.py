"""Aliases: names such as ``production`` or ``staging`` that point at one version of a model.

An alias has at most one holder; every move (a promotion or a rollback) is kept with who,
when, why and the gate evidence it was decided on (:meth:`driftloop.store.Store.move_alias`
writes holder, move and audit entry in one transaction). A rollback returns the alias to the
version that held it before the current holder was promoted; rolling back again goes one
further back, like popping a stack:

>>> from datetime import datetime, timezone
>>> from driftloop.store import AliasMoveRecord
>>> def move(action, to):
...     return AliasMoveRecord(0, "m", "production", action, None, None, to, to, "ci", None,
...                            False, None, None, datetime(2024, 1, 1, tzinfo=timezone.utc))
>>> history = [move("promote", 1), move("promote", 2), move("promote", 3), move("rollback", 2)]
>>> holder_stack(history)
[1, 2]
>>> rollback_target(history)
1
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from driftloop.errors import UsageError
from driftloop.registry.gates import GateReport
from driftloop.store import AliasMoveRecord

_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name, else raise :class:`UsageError`.

    >>> check_alias("production")
    'production'
    >>> check_alias("Prod 1")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: alias 'Prod 1' must be 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter (e.g. production, staging, canary-eu).
    """  # noqa: E501
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise UsageError(
            f"alias {alias!r} must be 1 to 64 lowercase letters, digits, '-' or '_', starting "
            "with a letter (e.g. production, staging, canary-eu)."
        )
    return alias


def holder_stack(moves: Sequence[AliasMoveRecord]) -> list[int]:
    """Version ids that held the alias, oldest first; the last one holds it now.

    A promotion pushes its version; a rollback pops the current holder.
    """
    stack: list[int] = []
    for m in moves:
        if m.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version_id:
                stack.append(m.to_version_id)
        else:
            stack.append(m.to_version_id)
    return stack


def rollback_target(moves: Sequence[AliasMoveRecord]) -> int | None:
    """The version id a rollback returns the alias to (None when it never had another)."""
    stack = holder_stack(moves)
    return stack[-2] if len(stack) >= 2 else None


@dataclass(frozen=True)
class Promotion:
    """What :meth:`driftloop.registry.Registry.promote` did.

    Attributes
    ----------
    move
        The recorded move, or None when the version already held the alias.
    gates
        The gate report the decision was made on.
    forced
        True when failed gates were overridden (``--force --reason``).
    """

    move: AliasMoveRecord | None
    gates: GateReport
    forced: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "moved": self.move is not None,
            "forced": self.forced,
            "move": None if self.move is None else {
                **self.move.__dict__, "at": self.move.at.isoformat(), "gates": None,
            },
            "gates": self.gates.to_json(),
        }


__all__ = ["Promotion", "check_alias", "holder_stack", "rollback_target"]
