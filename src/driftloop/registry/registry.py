"""The model registry: versions of named models, stored in the store and the artifact store.

Examples
--------
>>> import tempfile, driftloop as dl
>>> from driftloop.config import Settings
>>> home = tempfile.mkdtemp()
>>> reg = dl.Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> reg.versions()
[]
"""

from __future__ import annotations

from typing import Any

from driftloop.config import Settings
from driftloop.governance import AuditLog
from driftloop.registry.bundle import ModelBundle
from driftloop.registry.loaded import LoadedModel
from driftloop.store import ArtifactStore, Store, VersionRecord


class Registry:
    """Register, list and load model versions.

    Parameters
    ----------
    store, artifacts, audit
        The database, the artifact store and the audit log; pass them explicitly or build all
        three from settings with :meth:`Registry.open`.
    """

    def __init__(self, store: Store, artifacts: ArtifactStore, audit: AuditLog) -> None:
        self.store = store
        self.artifacts = artifacts
        self.audit = audit

    @classmethod
    def open(cls, settings: Settings | None = None) -> Registry:
        """Open (creating or upgrading) the store and artifact store named by ``settings``."""
        settings = settings or Settings.load()
        store = Store.open(settings.store_url)
        return cls(store, ArtifactStore(settings.artifacts_url), AuditLog(store))

    def record_dataset(self, run_id: str, role: str, prepared: Any) -> None:
        """Record one split (or the source) of prepared data as the run's dataset ``role``."""
        columns = (
            [{"name": c.name, "kind": c.kind} for c in prepared.schema.features]
            if prepared.schema is not None
            else None
        )
        rows = (
            sum(prepared.row_counts.values()) if role == "source" else prepared.row_counts[role]
        )
        self.store.upsert_dataset(
            prepared.fingerprints[role], prepared.source_uri, rows, columns
        )
        self.store.link_run_dataset(run_id, role, prepared.fingerprints[role])

    def register(
        self,
        name: str,
        *,
        run_id: str | None,
        bundle: ModelBundle,
        weights: bytes,
        metrics: dict[str, float],
        actor: str,
        reason: str,
        parent_id: int | None = None,
    ) -> VersionRecord:
        """Store weights and bundle as artifacts and add version N+1 of ``name``, audited."""
        weights_sha = self.artifacts.put_bytes(weights)
        bundle_sha = self.artifacts.put_json(bundle.to_json())
        return self.store.add_version(
            name, run_id=run_id, task=bundle.task, input_kind=bundle.input_kind,
            weights_sha256=weights_sha, bundle_sha256=bundle_sha, metrics=metrics,
            size_bytes=len(weights), parent_id=parent_id,
            audit=self.audit.recorder(actor=actor, action="register", reason=reason),
        )

    def versions(self, name: str | None = None) -> list[VersionRecord]:
        """All versions of ``name`` (of every model when None), oldest first."""
        return self.store.list_versions(name)

    def get(self, name: str, version: int | None = None) -> VersionRecord:
        """One version (the latest when ``version`` is None)."""
        return self.store.get_version(name, version)

    def bundle(self, record: VersionRecord) -> ModelBundle:
        """The verified bundle of a version."""
        return ModelBundle.from_json(self.artifacts.get_json(record.bundle_sha256))

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load a version for inference; weights and bundle are verified against their hashes."""
        record = self.get(name, version)
        return LoadedModel(self.bundle(record), self.artifacts.get_bytes(record.weights_sha256))


__all__ = ["Registry"]
