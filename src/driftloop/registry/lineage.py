"""Lineage: where a model version came from and everything that happened to it, in one record.

:func:`lineage` resolves the run (params, world size, code commit, package versions, metrics
per epoch), the datasets by role (fingerprints, sources, row counts), the chain of parent
versions it was retrained from, the versions retrained from it, its evaluation and data-check
reports, every alias move to or from it with the gate evidence, and its audit entries.

Examples
--------
>>> import tempfile
>>> from driftloop.config import Settings
>>> from driftloop.registry import Registry
>>> home = tempfile.mkdtemp()
>>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> first = reg.store.add_version("m", None, "binary", "table", "a" * 64, "b" * 64, {}, 1)
>>> second = reg.store.add_version("m", None, "binary", "table", "c" * 64, "d" * 64, {}, 1,
...                                parent_id=first.id)
>>> found = reg.lineage("m", 2)
>>> [v.version for v in found.ancestors], [v.version for v in reg.lineage("m", 1).children]
([1], [2])
>>> reg.store.close()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from driftloop.store import (
    AliasMoveRecord,
    AuditRecord,
    DatasetRecord,
    ReportRecord,
    RunRecord,
    VersionRecord,
)

if TYPE_CHECKING:
    from driftloop.registry.registry import Registry

_MAX_ANCESTORS = 1000  # a guard against a cycle written outside driftloop


def feature_views_text(run: RunRecord | None) -> str | None:
    """The feature views a run joined, e.g. ``view stats v2 (sha256 1a2b3c4d5e6f…)``.

    >>> from types import SimpleNamespace
    >>> feature_views_text(SimpleNamespace(params={"features": [
    ...     {"view": "stats", "version": 2, "spec_hash": "ab" * 32}]}))
    'view stats v2 (sha256 abababababab…)'
    """
    uses = (run.params.get("features") or []) if run is not None else []
    if not uses:
        return None
    return ", ".join(f"view {u['view']} v{u['version']} (sha256 {u['spec_hash'][:12]}…)"
                     for u in uses)


@dataclass(frozen=True)
class Lineage:
    """Everything recorded about one version and where it came from.

    Attributes
    ----------
    ancestors
        The parent version first, then its parent, and so on.
    children
        Versions retrained from this one.
    reports
        Evaluation reports of the version and data checks of its training data, oldest first.
    moves
        Alias moves to or from the version, oldest first, each with its gate evidence.
    audit
        Audit entries about the version (subject ``NAME:vN``) and its run (``run:ID``).
    """

    version: VersionRecord
    run: RunRecord | None
    epochs: list[dict[str, Any]]
    datasets: dict[str, DatasetRecord]
    ancestors: list[VersionRecord]
    children: list[VersionRecord]
    reports: list[ReportRecord]
    aliases: list[str]
    moves: list[AliasMoveRecord]
    audit: list[AuditRecord]

    @property
    def parent(self) -> VersionRecord | None:
        return self.ancestors[0] if self.ancestors else None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": asdict(self.version),
            "run": None if self.run is None else asdict(self.run),
            "epochs": self.epochs,
            "datasets": {role: asdict(d) for role, d in self.datasets.items()},
            "parent": None if self.parent is None else asdict(self.parent),
            "ancestors": [{"model_name": v.model_name, "version": v.version, "id": v.id}
                          for v in self.ancestors],
            "children": [{"model_name": v.model_name, "version": v.version, "id": v.id}
                         for v in self.children],
            "reports": [asdict(r) for r in self.reports],
            "aliases": list(self.aliases),
            "moves": [asdict(m) for m in self.moves],
            "audit": [asdict(e) for e in self.audit],
        }


def lineage(registry: Registry, name: str, version: int | None = None) -> Lineage:
    """Resolve the lineage of ``name`` version ``version`` (latest when None)."""
    store = registry.store
    record = store.get_version(name, version)
    run = store.get_run(record.run_id) if record.run_id else None
    datasets = store.run_datasets(record.run_id) if record.run_id else {}
    ancestors: list[VersionRecord] = []
    seen = {record.id}
    parent_id = record.parent_id
    while parent_id is not None and parent_id not in seen and len(ancestors) < _MAX_ANCESTORS:
        parent = store.get_version_by_id(parent_id)
        ancestors.append(parent)
        seen.add(parent_id)
        parent_id = parent.parent_id
    children = [v for v in store.list_versions() if v.parent_id == record.id]
    reports = {r.id: r for r in store.list_reports(version_id=record.id)}
    for d in datasets.values():
        for r in store.list_reports(kind="data_check", dataset_fingerprint=d.fingerprint):
            reports[r.id] = r
    subjects = [f"{record.model_name}:v{record.version}"] + ([f"run:{run.id}"] if run else [])
    audit = sorted((e for s in subjects for e in registry.audit.entries(subject=s)),
                   key=lambda e: e.seq)
    return Lineage(
        version=record, run=run, epochs=store.run_metrics(run.id) if run else [],
        datasets=datasets, ancestors=ancestors, children=children,
        reports=sorted(reports.values(), key=lambda r: r.id),
        aliases=[a.alias for a in store.list_aliases(name) if a.version_id == record.id],
        moves=store.alias_moves(name, version_id=record.id), audit=audit,
    )


__all__ = ["Lineage", "lineage"]
