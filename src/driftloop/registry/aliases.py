"""Aliases: names such as ``production`` or ``staging`` that point at one version of a model.

An alias has at most one holder; every move (a promotion, a rollback, or a deactivation,
which leaves it with none) is kept with who, when, why and the gate evidence it was decided on
(:meth:`driftloop.store.Store.move_alias` writes holder, move and audit entry in one
transaction). A rollback returns the alias to the version that held it before the current
holder was promoted; rolling back again goes one further back, like popping a stack:

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
from typing import TYPE_CHECKING

from driftloop.errors import UsageError
from driftloop.registry.gates import GateReport
from driftloop.store import AliasMoveRecord

if TYPE_CHECKING:
    from driftloop.registry.registry import Registry

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
    """Version ids that held the alias, oldest first; the last one holds it now (unless the
    last move was a deactivation, after which nothing holds it).

    A promotion pushes its version; a rollback pops the current holder; a deactivation pops
    the deactivated version, and promoting the version below it again restores it without
    pushing it twice.

    >>> from datetime import datetime, timezone
    >>> def move(action, to):
    ...     return AliasMoveRecord(0, "m", "production", action, None, None, to, to, "ci", None,
    ...                            False, None, None, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> holder_stack([move("promote", 1), move("promote", 2), move("deactivate", 2)])
    [1]
    >>> holder_stack([move("promote", 1), move("promote", 2), move("deactivate", 2),
    ...               move("promote", 2)])
    [1, 2]
    """
    stack: list[int] = []
    for m in moves:
        if m.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version_id:
                stack.append(m.to_version_id)
        elif m.action == "deactivate":
            if stack and stack[-1] == m.to_version_id:
                stack.pop()
        elif not stack or stack[-1] != m.to_version_id:
            stack.append(m.to_version_id)
    return stack


def rollback_target(moves: Sequence[AliasMoveRecord]) -> int | None:
    """The version id a rollback returns the alias to (None when it never had another)."""
    stack = holder_stack(moves)
    return stack[-2] if len(stack) >= 2 else None


def deactivation(moves: Sequence[AliasMoveRecord]) -> AliasMoveRecord | None:
    """The move that deactivated the alias, when its newest move is a deactivation, else None.

    >>> deactivation([]) is None
    True
    """
    return moves[-1] if moves and moves[-1].action == "deactivate" else None


def deactivated_message(move: AliasMoveRecord) -> str:
    """What a server answers (503) and the CLI says about a deactivated alias.

    >>> from datetime import datetime, timezone
    >>> move = AliasMoveRecord(0, "credit", "production", "deactivate", 4, 2, 4, 2, "oncall",
    ...                        "bad data", False, None, 9, datetime(2024, 5, 1, tzinfo=timezone.utc))
    >>> print(deactivated_message(move))
    model 'credit' was deactivated: alias 'production' was removed from v2 at 2024-05-01 00:00:00 UTC (audit entry 9). Restore it with `driftloop models promote credit VERSION --to production`.
    """  # noqa: E501
    seq = "" if move.audit_seq is None else f" (audit entry {move.audit_seq})"
    return (f"model '{move.model_name}' was deactivated: alias '{move.alias}' was removed from "
            f"v{move.to_version} at {move.at:%Y-%m-%d %H:%M:%S} UTC{seq}. Restore it with "
            f"`driftloop models promote {move.model_name} VERSION --to {move.alias}`.")


def deactivate(
    registry: Registry, model_name: str, alias: str = "production", *, reason: str,
    actor: str | None = None,
) -> AliasMoveRecord:
    """Remove ``alias`` of ``model_name`` so that nothing holds it and servers stop serving it.

    The kill switch (NIST AI RMF MANAGE 2.4): the alias row is deleted and the move (action
    ``deactivate``) and its audit entry are written in the same transaction; see
    :meth:`driftloop.registry.Registry.deactivate`. ``driftloop models promote`` restores it.

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.config import Settings
    >>> from driftloop.registry import ModelBundle, Registry
    >>> home = tempfile.mkdtemp()
    >>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
    >>> bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
    ...                      n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
    ...                      target_encoder={"task": "binary"})
    >>> _ = reg.register("churn", run_id=None, bundle=bundle, weights=b"w", metrics={},
    ...                  actor="ci", reason="demo")
    >>> _ = reg.promote("churn", 1, to="production", force=True, reason="bootstrap")
    >>> move = deactivate(reg, "churn", "production", reason="drifted badly", actor="oncall")
    >>> move.action, move.to_version, reg.holder("churn", "production")
    ('deactivate', 1, None)
    >>> reg.audit.entries(action="deactivate")[0].details["reason"]
    'drifted badly'
    """
    return registry.deactivate(model_name, alias, reason=reason, actor=actor)


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


__all__ = [
    "Promotion",
    "check_alias",
    "deactivate",
    "deactivated_message",
    "deactivation",
    "holder_stack",
    "rollback_target",
]
