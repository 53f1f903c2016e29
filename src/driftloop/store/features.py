"""Registered feature views: every version of every view's declaration, each one audited.

A view's declaration is registered under its ``spec_hash``: registering the same declaration
again returns the version it already has, a changed one gets the next version. The unique keys
(name, version) and (name, spec_hash) decide between processes registering at once: the loser
retries and finds the winner's version, so one declaration never gets two versions.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     a, new_a = store.register_feature_view("stats", {"v": 1}, "1" * 64, actor="ci")
...     b, new_b = store.register_feature_view("stats", {"v": 1}, "1" * 64, actor="ci")
...     c, new_c = store.register_feature_view("stats", {"v": 2}, "2" * 64, actor="ci")
...     (a.version, new_a), (b.version, new_b), (c.version, new_c)
((1, True), (1, False), (2, True))
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.errors import NotFoundError
from driftloop.store.audit import AuditLog
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import FeatureViewRecord, record_from
from driftloop.store.tables import FeatureView


class FeatureViewQueries(StoreCore):
    """Registered feature view versions (a :class:`Store` mixin)."""

    def register_feature_view(self, name: str, spec: dict[str, Any], spec_hash: str, *,
                              actor: str) -> tuple[FeatureViewRecord, bool]:
        """Register ``spec`` as view ``name``; return its version and whether it is new.

        A new version appends a ``feature_view_registered`` audit entry (version, hash) in the
        same transaction; an unchanged declaration writes nothing.
        """
        _require_text("feature view name", name, max_len=64)
        _require_text("spec hash", spec_hash, max_len=64)

        def work(session: Session) -> tuple[FeatureViewRecord, bool]:
            row = session.scalars(select(FeatureView).where(
                FeatureView.name == name, FeatureView.spec_hash == spec_hash)).first()
            if row is not None:
                return record_from(FeatureViewRecord, row), False
            latest = session.scalar(select(func.max(FeatureView.version)).where(
                FeatureView.name == name))
            row = FeatureView(name=name, version=(latest or 0) + 1, spec_hash=spec_hash,
                              spec=copy.deepcopy(spec), actor=actor, created_at=utcnow())
            session.add(row)
            session.flush()
            AuditLog(self).append_in(  # type: ignore[arg-type]
                session, actor, "feature_view_registered", f"feature_view:{name}",
                {"version": row.version, "spec_hash": spec_hash,
                 "previous_version": latest})
            return record_from(FeatureViewRecord, row), True

        return self.transact(work)

    def feature_views(self) -> list[FeatureViewRecord]:
        """The latest version of every registered view, by name.

        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.feature_views()
        []
        """
        latest = (select(FeatureView.name, func.max(FeatureView.version).label("version"))
                  .group_by(FeatureView.name).subquery())
        query = (select(FeatureView).join(latest, (FeatureView.name == latest.c.name)
                                          & (FeatureView.version == latest.c.version))
                 .order_by(FeatureView.name))
        with self.session(write=False) as session:
            return [record_from(FeatureViewRecord, r) for r in session.scalars(query)]

    def feature_view_versions(self, name: str) -> list[FeatureViewRecord]:
        """Every registered version of view ``name``, oldest first."""
        query = select(FeatureView).where(FeatureView.name == name).order_by(FeatureView.version)
        with self.session(write=False) as session:
            return [record_from(FeatureViewRecord, r) for r in session.scalars(query)]

    def feature_view(self, name: str, version: int | None = None) -> FeatureViewRecord:
        """View ``name`` at ``version`` (default: its latest).

        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     _ = store.register_feature_view("stats", {}, "1" * 64, actor="ci")
        ...     store.feature_view("stats", 3)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: feature view stats has no version 3; registered: v1.
        """
        versions = self.feature_view_versions(name)
        if not versions:
            known = ", ".join(v.name for v in self.feature_views()) or "none"
            raise NotFoundError(f"no feature view {name!r} is registered (registered views: "
                                f"{known}). Declare it in features.views and run "
                                "`driftloop features apply`.")
        if version is None:
            return versions[-1]
        for record in versions:
            if record.version == version:
                return record
        raise NotFoundError(f"feature view {name} has no version {version}; registered: "
                            f"{', '.join(f'v{v.version}' for v in versions)}.")


__all__ = ["FeatureViewQueries"]
