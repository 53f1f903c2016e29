"""The store: runs, datasets, model versions and aliases, the serving and monitoring tables,
behind one small API.

:class:`Store` is composed of one query mixin per aggregate, each in its own module over the
shared :class:`~driftloop.store.core.StoreCore` (engine, sessions, transactions):
:mod:`~driftloop.store.datasets`, :mod:`~driftloop.store.runs`,
:mod:`~driftloop.store.versions`, :mod:`~driftloop.store.aliases`,
:mod:`~driftloop.store.serving`, :mod:`~driftloop.store.erasure`,
:mod:`~driftloop.store.keys`, :mod:`~driftloop.store.monitoring`,
:mod:`~driftloop.store.online_features` and the per-model locks of
:mod:`~driftloop.store.locks`. The audit chain
(:mod:`driftloop.store.audit`) wraps a store. Every method is one transaction and returns
frozen records (:mod:`driftloop.store.records` and the record types of each module), never
ORM objects.

Examples
--------
>>> store = Store.open("sqlite://")
>>> ds = store.upsert_dataset("ab" * 32, "data.csv", rows=100, columns=None)
>>> run = store.create_run("churn", {"lr": 0.01}, 2, "runs/1", {"torch": "2.4"}, None)
>>> store.link_run_dataset(run.id, "train", ds.fingerprint)
>>> store.add_run_metrics(run.id, 1, {"loss": 0.5})
>>> store.finish_run(run.id, "succeeded", duration_s=3.0).status
'succeeded'
>>> v = store.add_version("churn", run.id, "binary", "tabular", "a" * 64, "b" * 64,
...                       {"auc": 0.91}, 1234)
>>> (v.model_name, v.version), store.get_version("churn").version
(('churn', 1), 1)
>>> store.close()
"""

from __future__ import annotations

from driftloop.store.aliases import AliasMoved, AliasQueries, MoveHook
from driftloop.store.core import EventHook
from driftloop.store.datasets import DatasetQueries
from driftloop.store.erasure import ErasureQueries
from driftloop.store.features import FeatureViewQueries
from driftloop.store.jobs import JobQueries
from driftloop.store.keys import ApiKeyQueries
from driftloop.store.locks import LockQueries
from driftloop.store.monitoring import MonitoringQueries
from driftloop.store.online_features import OnlineFeatureQueries
from driftloop.store.rollouts import RolloutQueries
from driftloop.store.runs import RunQueries
from driftloop.store.serving import ServingQueries
from driftloop.store.versions import AuditHook, VersionQueries


class Store(
    DatasetQueries, RunQueries, VersionQueries, AliasQueries, ServingQueries, ErasureQueries,
    ApiKeyQueries, MonitoringQueries, LockQueries, RolloutQueries, FeatureViewQueries,
    OnlineFeatureQueries, JobQueries,
):
    """Database of runs, datasets, model versions, aliases, the prediction log and monitoring,
    at any SQLAlchemy URL.

    Parameters
    ----------
    url
        ``sqlite:///path/to/driftloop.db`` (the folder is created), ``sqlite://`` (in memory),
        ``postgresql+psycopg://user@host/db``, ...
    on_event
        ``hook(session, action, subject, details)`` called inside the transaction of a
        recorded dataset or run (see :data:`EventHook`); ``Registry.open`` sets it to the
        audit log's recorder.

    Notes
    -----
    ``Store(url)`` connects without migrating; :meth:`Store.open` also brings the schema to
    head. Close with :meth:`close` or use the store as a context manager.

    Examples
    --------
    >>> with Store.open("sqlite://") as store:
    ...     store.schema_revision() == Store.head_revision()
    True
    """


__all__ = ["AliasMoved", "AuditHook", "EventHook", "MoveHook", "Store"]
