"""Aliases (``production``, ``staging``): which version each points at, and every move.

An alias moves only by compare-and-write: :meth:`AliasQueries.move_alias` and
:meth:`AliasQueries.remove_alias` act only if the alias still points where the caller saw it,
and write the holder, the move and its audit entry in one transaction.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
...     _ = store.move_alias("m", "production", v.id, expected_version_id=None,
...                          action="promote", actor="ci")
...     gone = store.remove_alias("m", "production", expected_version_id=v.id, actor="ci",
...                               reason="stop")
...     store.alias_holder("m", "production"), [m.action for m in store.alias_moves("m")]
(None, ['promote', 'deactivate'])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.errors import DriftloopError, NotFoundError, UsageError
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import (
    ALIAS_ACTIONS,
    AliasMoveRecord,
    AliasRecord,
    AuditRecord,
)
from driftloop.store.tables import AliasMove, ModelAlias, ModelVersion

MoveHook = Callable[[Session, AliasMoveRecord], AuditRecord | None]
"""Called inside :meth:`Store.move_alias`'s transaction; the audit entry it returns is linked."""


class AliasMoved(DriftloopError):
    """The alias moved between reading its holder and moving it; decide again and retry."""

    def __init__(self, message: str, holder_id: int | None) -> None:
        super().__init__(message)
        self.holder_id = holder_id


class AliasQueries(StoreCore):
    """Aliases and their moves (a :class:`Store` mixin)."""

    def alias_holder(self, model_name: str, alias: str) -> AliasRecord | None:
        """Return what ``alias`` of ``model_name`` points at, or None when nothing does.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.alias_holder("m", "production") is None
        True
        """
        return next(iter(self.list_aliases(model_name, alias)), None)

    def list_aliases(
        self, model_name: str | None = None, alias: str | None = None
    ) -> list[AliasRecord]:
        """Return the aliases (of one model, or all) by model name then alias.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.list_aliases("m")
        []
        """
        with self.session(write=False) as session:
            query = (
                select(ModelAlias, ModelVersion.version)
                .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
                .order_by(ModelAlias.model_name, ModelAlias.alias)
            )
            if model_name is not None:
                query = query.where(ModelAlias.model_name == model_name)
            if alias is not None:
                query = query.where(ModelAlias.alias == alias)
            return [
                AliasRecord(row.model_name, row.alias, row.version_id, version, row.updated_at)
                for row, version in session.execute(query)
            ]

    def move_alias(
        self,
        model_name: str,
        alias: str,
        version_id: int,
        *,
        expected_version_id: int | None,
        action: str,
        actor: str,
        reason: str | None = None,
        forced: bool = False,
        gates: Mapping[str, Any] | None = None,
        audit: MoveHook | None = None,
    ) -> AliasMoveRecord:
        """Point ``alias`` at ``version_id`` and record the move, if it still points at
        ``expected_version_id`` (None: at nothing).

        The holder row, the move and its audit entry are written in one transaction, so an
        alias always has exactly one holder (or none before its first promotion). When another
        process moved the alias since the caller decided, :class:`AliasMoved` is raised and
        nothing is written: decide again on the new holder.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     v1, v2 = (store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64,
        ...                                 {}, 1) for _ in range(2))
        ...     first = store.move_alias("m", "production", v1.id, expected_version_id=None,
        ...                              action="promote", actor="ci")
        ...     store.move_alias("m", "production", v2.id, expected_version_id=None,
        ...                      action="promote", actor="ci")
        Traceback (most recent call last):
        ...
        driftloop.store.aliases.AliasMoved: m@production now points at version id 1, not at nothing as expected; it was moved meanwhile. Decide again.
        """  # noqa: E501
        if action not in ALIAS_ACTIONS:
            raise UsageError(f"alias action '{action}' is not one of {', '.join(ALIAS_ACTIONS)}.")
        _require_text("alias", alias, max_len=64)
        _require_text("actor", actor, max_len=128)

        def work(session: Session) -> AliasMoveRecord:
            target = session.get(ModelVersion, version_id)
            if target is None or target.model_name != model_name:
                raise NotFoundError(f"model '{model_name}' has no version with id {version_id}.")
            row = session.get(ModelAlias, (model_name, alias), with_for_update=True)
            current = None if row is None else row.version_id
            if current != expected_version_id:
                expected = (
                    "nothing" if expected_version_id is None
                    else f"version id {expected_version_id}"
                )
                raise AliasMoved(
                    f"{model_name}@{alias} now points at version id {current}, not at "
                    f"{expected} as expected; it was moved meanwhile. Decide again.", current,
                )
            now = utcnow()
            if row is None:
                session.add(ModelAlias(model_name=model_name, alias=alias,
                                       version_id=version_id, updated_at=now))
            else:
                row.version_id, row.updated_at = version_id, now
            move = AliasMove(
                model_name=model_name, alias=alias, action=action, from_version_id=current,
                to_version_id=version_id, actor=actor, reason=reason, forced=forced,
                gates=copy.deepcopy(dict(gates)) if gates is not None else None, at=now,
            )
            return _add_move(session, move, audit)

        return self.transact(work)

    def remove_alias(
        self,
        model_name: str,
        alias: str,
        *,
        expected_version_id: int,
        actor: str,
        reason: str | None = None,
        audit: MoveHook | None = None,
    ) -> AliasMoveRecord:
        """Delete ``alias`` and record the move (action ``deactivate``), if it still points at
        ``expected_version_id``.

        The same compare-and-write as :meth:`move_alias`: the alias row is deleted, and the move
        and its audit entry are written, in one transaction, or :class:`AliasMoved` is raised
        and nothing is written. A move always names a version it went to, so the removed
        version is recorded as both ``from`` and ``to``; :meth:`move_alias` with
        ``expected_version_id=None`` points the alias again.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        >>> _ = store.move_alias("m", "production", v.id, expected_version_id=None,
        ...                      action="promote", actor="ci")
        >>> gone = store.remove_alias("m", "production", expected_version_id=v.id, actor="ops",
        ...                           reason="stop")
        >>> (gone.action, gone.from_version, gone.to_version), store.list_aliases("m")
        (('deactivate', 1, 1), [])
        >>> store.remove_alias("m", "production", expected_version_id=v.id, actor="ops")
        Traceback (most recent call last):
        ...
        driftloop.store.aliases.AliasMoved: m@production now points at version id None, not at 1; it was moved meanwhile.
        >>> store.close()
        """  # noqa: E501
        _require_text("alias", alias, max_len=64)
        _require_text("actor", actor, max_len=128)

        def work(session: Session) -> AliasMoveRecord:
            row = session.get(ModelAlias, (model_name, alias), with_for_update=True)
            current = None if row is None else row.version_id
            if row is None or current != expected_version_id:
                raise AliasMoved(
                    f"{model_name}@{alias} now points at version id {current}, not at "
                    f"{expected_version_id}; it was moved meanwhile.", current,
                )
            session.delete(row)
            move = AliasMove(
                model_name=model_name, alias=alias, action="deactivate",
                from_version_id=expected_version_id, to_version_id=expected_version_id,
                actor=actor, reason=reason, forced=False, gates=None, at=utcnow(),
            )
            return _add_move(session, move, audit)

        return self.transact(work)

    def alias_moves(
        self,
        model_name: str,
        alias: str | None = None,
        *,
        version_id: int | None = None,
    ) -> list[AliasMoveRecord]:
        """Return the moves of a model's aliases (of one alias; to or from one version), oldest
        first.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.alias_moves("m", "production")
        []
        """
        with self.session(write=False) as session:
            query = (
                select(AliasMove)
                .where(AliasMove.model_name == model_name)
                .order_by(AliasMove.id)
            )
            if alias is not None:
                query = query.where(AliasMove.alias == alias)
            if version_id is not None:
                query = query.where(
                    (AliasMove.to_version_id == version_id)
                    | (AliasMove.from_version_id == version_id)
                )
            return [_move_record(session, row) for row in session.scalars(query)]


def _add_move(session: Session, move: AliasMove, audit: MoveHook | None) -> AliasMoveRecord:
    """Write ``move`` and its audit entry (same transaction); the record with its audit seq."""
    session.add(move)
    session.flush()
    record = _move_record(session, move)
    entry = audit(session, record) if audit is not None else None
    if entry is not None:
        move.audit_seq = entry.seq
        session.flush()
        record = _move_record(session, move)
    return record


def _move_record(session: Session, row: AliasMove) -> AliasMoveRecord:
    def number(version_id: int | None) -> int | None:
        if version_id is None:
            return None
        return session.scalar(select(ModelVersion.version).where(ModelVersion.id == version_id))

    to_version = number(row.to_version_id)
    assert to_version is not None  # a foreign key
    return AliasMoveRecord(
        id=row.id, model_name=row.model_name, alias=row.alias, action=row.action,
        from_version_id=row.from_version_id, from_version=number(row.from_version_id),
        to_version_id=row.to_version_id, to_version=to_version, actor=row.actor,
        reason=row.reason, forced=bool(row.forced), gates=copy.deepcopy(row.gates),
        audit_seq=row.audit_seq, at=row.at,
    )


__all__ = ["AliasMoved", "AliasQueries", "MoveHook"]
