"""Model versions: registered one after another per model name, never changed.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     v = store.add_version("churn", None, "binary", "tabular", "a" * 64, "b" * 64,
...                           {"auc": 0.91}, 1234)
...     (v.model_name, v.version), store.get_version("churn").version
(('churn', 1), 1)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.errors import NotFoundError
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import VersionRecord, record_from
from driftloop.store.runs import _get_run
from driftloop.store.tables import ModelVersion

AuditHook = Callable[[Session, VersionRecord], object]
"""Called inside :meth:`Store.add_version`'s transaction, e.g. to append an audit entry."""
_LIST_AT_MOST = 20


class VersionQueries(StoreCore):
    """Registered model versions (a :class:`Store` mixin)."""

    def add_version(
        self,
        model_name: str,
        run_id: str | None,
        task: str,
        input_kind: str,
        weights_sha256: str,
        bundle_sha256: str,
        metrics: Mapping[str, Any],
        size_bytes: int,
        parent_id: int | None = None,
        description: str | None = None,
        audit: AuditHook | None = None,
    ) -> VersionRecord:
        """Register the next version of ``model_name`` (1 for a new model).

        Two processes registering at once get consecutive versions: a collision on
        (model_name, version) rolls back the loser, which retries with the next number.

        Parameters
        ----------
        audit
            ``audit(session, version)`` runs inside the same transaction, so the version and
            its audit entry are stored together or not at all, e.g.
            ``lambda s, v: log.append_in(s, "alice", "register", f"{v.model_name}:v{v.version}")``.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     first = store.add_version("m", None, "regression", "tabular", "a" * 64,
        ...                               "b" * 64, {"rmse": 1.5}, 10)
        ...     second = store.add_version("m", None, "regression", "tabular", "c" * 64,
        ...                                "d" * 64, {"rmse": 1.2}, 10, parent_id=first.id)
        ...     second.version, second.parent_id == first.id
        (2, True)
        """
        _require_text("model_name", model_name, max_len=128)
        values = {
            "model_name": model_name,
            "run_id": run_id,
            "task": task,
            "input_kind": input_kind,
            "weights_sha256": weights_sha256,
            "bundle_sha256": bundle_sha256,
            "metrics": copy.deepcopy(dict(metrics)),
            "size_bytes": size_bytes,
            "parent_id": parent_id,
            "description": description,
        }

        def work(session: Session) -> VersionRecord:
            if run_id is not None:
                _get_run(session, run_id)
            if parent_id is not None and session.get(ModelVersion, parent_id) is None:
                raise NotFoundError(
                    f"parent version id {parent_id} does not exist; pass the id of a "
                    "registered version (VersionRecord.id) or None."
                )
            latest = session.scalar(
                select(func.max(ModelVersion.version)).where(ModelVersion.model_name == model_name)
            )
            row = ModelVersion(version=(latest or 0) + 1, **copy.deepcopy(values))
            session.add(row)
            session.flush()
            record = record_from(VersionRecord, row)
            if audit is not None:
                audit(session, record)
            return record

        return self.transact(work)

    def get_version(self, model_name: str, version: int | None = None) -> VersionRecord:
        """Return one version of a model; ``version=None`` means the latest.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     _ = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        ...     store.get_version("m", 7)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: model 'm' has no version 7. Versions: 1.
        """
        with self.session(write=False) as session:
            query = select(ModelVersion).where(ModelVersion.model_name == model_name)
            if version is None:
                query = query.order_by(ModelVersion.version.desc()).limit(1)
            else:
                query = query.where(ModelVersion.version == version)
            row = session.scalars(query).first()
            if row is None:
                raise NotFoundError(_missing_version(session, model_name, version))
            return record_from(VersionRecord, row)

    def list_versions(self, model_name: str | None = None) -> list[VersionRecord]:
        """Return every version (of one model, or of all), by model name then version.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     store.list_versions("m")
        []
        """
        with self.session(write=False) as session:
            query = select(ModelVersion).order_by(ModelVersion.model_name, ModelVersion.version)
            if model_name is not None:
                query = query.where(ModelVersion.model_name == model_name)
            return [record_from(VersionRecord, row) for row in session.scalars(query)]

    def model_names(self) -> list[str]:
        """Return the names of all registered models, sorted.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     for name in ("b", "a", "b"):
        ...         _ = store.add_version(name, None, "binary", "tabular", "a" * 64, "b" * 64,
        ...                               {}, 1)
        ...     store.model_names()
        ['a', 'b']
        """
        with self.session(write=False) as session:
            return _model_names(session)

    def get_version_by_id(self, version_id: int) -> VersionRecord:
        """Return the version with store-wide id ``version_id`` (e.g. a ``parent_id``).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        ...     store.get_version_by_id(v.id) == v
        True
        """
        with self.session(write=False) as session:
            row = session.get(ModelVersion, version_id)
            if row is None:
                raise NotFoundError(f"no model version with id {version_id}.")
            return record_from(VersionRecord, row)


def _model_names(session: Session) -> list[str]:
    query = select(ModelVersion.model_name).distinct().order_by(ModelVersion.model_name)
    return list(session.scalars(query))


def _missing_version(session: Session, model_name: str, version: int | None) -> str:
    versions = session.scalars(
        select(ModelVersion.version)
        .where(ModelVersion.model_name == model_name)
        .order_by(ModelVersion.version)
    ).all()
    if versions:
        return f"model '{model_name}' has no version {version}. Versions: {_short_list(versions)}."
    names = _model_names(session)
    if not names:
        return f"no model named '{model_name}'. No models are registered yet."
    return f"no model named '{model_name}'. Models: {_short_list(names)}."


def _short_list(items: list[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:_LIST_AT_MOST])
    more = len(items) - _LIST_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


__all__ = ["AuditHook", "VersionQueries"]
