"""Register the declared feature views in the store, and resolve views for training.

``features apply`` registers every declared view (:func:`apply_views`): an unchanged declaration
keeps its version, a changed one gets the next. Training (:func:`resolve_views`) needs the
*current* declaration of each view it joins to be registered, so that the model version names
exactly what it joined: when a declaration changed since the last ``apply``, training registers
it itself (audited as ``feature_view_registered`` by the training actor, like ``apply`` would),
rather than refusing or silently joining an unregistered declaration.

Examples
--------
>>> from driftloop.config import Settings
>>> from driftloop.store import Store
>>> settings = Settings(features={"entities": [{"name": "c", "keys": ["cid"]}],
...     "views": [{"name": "stats", "entity": "c", "source": "s.csv", "event_time": "ts",
...                "features": ["spend"]}]})
>>> with Store.open("sqlite://") as store:
...     first = apply_views(store, settings, actor="ci")
...     again = apply_views(store, settings, actor="ci")
>>> [(a.record.name, a.record.version, a.created) for a in first + again]
[('stats', 1, True), ('stats', 1, False)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.features.historical import ViewFrame
from driftloop.features.source import read_view_source
from driftloop.features.spec import FeatureUse, spec_hash, view_spec
from driftloop.store import FeatureViewRecord, Store


@dataclass(frozen=True)
class AppliedView:
    """A declared view's registered version, and whether registering it added that version."""

    record: FeatureViewRecord
    created: bool


def apply_views(store: Store, settings: Settings, *, actor: str) -> list[AppliedView]:
    """Register every view declared in ``settings.features`` (in declaration order)."""
    return [register_view(store, settings, view.name, actor=actor)
            for view in settings.features.views]


def register_view(store: Store, settings: Settings, name: str, *, actor: str) -> AppliedView:
    """Register the current declaration of view ``name`` (UsageError: not declared)."""
    spec = view_spec(settings.features, _declared(settings, name))
    record, created = store.register_feature_view(name, spec, spec_hash(spec), actor=actor)
    return AppliedView(record=record, created=created)


def resolve_views(store: Store, settings: Settings, names: Sequence[str], *,
                  actor: str = "driftloop") -> list[tuple[FeatureUse, ViewFrame]]:
    """The registered use and the source rows of each view in ``names``, for training.

    Each view must be declared; its current declaration is registered if it is not yet
    (see the module docstring). Sources are read only after every name was checked.
    """
    if not names:
        raise UsageError("no feature view named: pass --features VIEW[,VIEW...].")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        raise UsageError(f"feature view {', '.join(duplicates)} is named twice. Name each once.")
    for name in names:
        _declared(settings, name)
    uses = []
    for name in names:
        record = register_view(store, settings, name, actor=actor).record
        uses.append(FeatureUse.of(record.spec, record.version))
    features = settings.features
    return [(use, read_view_source(features.view(use.view), features.entity(use.entity),
                                   settings.store_url))
            for use in uses]


def _declared(settings: Settings, name: str) -> str:
    declared = [v.name for v in settings.features.views]
    if name not in declared:
        raise UsageError(f"feature view {name!r} is not declared. Declared views: "
                         f"{', '.join(declared) or 'none'}; declare it under features.views in "
                         "driftloop.yaml or features.yaml.")
    return name


__all__ = ["AppliedView", "apply_views", "register_view", "resolve_views"]
