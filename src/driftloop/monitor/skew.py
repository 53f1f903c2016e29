"""Training-serving skew: the features a version was served against the offline values.

For a version trained with feature views (its bundle's ``feature_views``), the prediction log
holds, per request, the features the model got (looked up in the online store, or sent by the
client) with the entity's keyed hash (the row's ``subject``) and the time it was served.
:func:`feature_skew` recomputes what the offline path gives for the same entities at the same
times: a point-in-time join (:func:`~driftloop.features.historical.join_as_of`, leak guard on:
the server could only have seen values created before the request) of each view's source,
whose key columns are replaced by the same keyed hash (:func:`entity_key_texts` +
:func:`~driftloop.data.hashing.hash_value` with the store's PII key), so no key is ever
un-hashed. Per feature it counts the rows compared and the rows whose served value differs
(numbers beyond a relative tolerance of ``REL_TOL``, anything else exactly; missing equals
missing), and gives the share's Wilson interval
(:func:`~driftloop.evaluate.intervals.share_interval`). A feature is flagged when the lower
bound is above ``monitor.skew_max_share``: a decision on an interval, never on a point share.

Decided where the issue was silent:

* Only views keyed like the version's first view are compared: the log keeps one entity hash
  per row (the first view's), so a view of another entity cannot be joined; the report says so.
* A served value the client spelled out is compared too: it is what the model got.
* Rows logged without a subject are counted (``rows_without_entity``), not compared.
* The view's *current* declaration (``features.views``) says where its source is; when its
  spec hash differs from the one the version was trained with, the report notes it.
* Staleness counts as skew: a value materialised before newer source rows existed differs
  from the offline value as of the request, which is what training would have seen.

Examples
--------
>>> served = pd.Series([1.0, 2.0, None, "a"], dtype=object)
>>> offline = pd.Series([1.0, 2.2, np.nan, "a"], dtype=object)
>>> differs(served, offline).tolist()
[False, True, False, False]
>>> differs(pd.Series([3, None, 1.0]), pd.Series([3.0, 4.0, 1.0 + 1e-12])).tolist()
[False, True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data.hashing import hash_value
from driftloop.errors import DriftloopError, UsageError
from driftloop.evaluate.intervals import Interval, share_interval
from driftloop.features.historical import ViewFrame, join_as_of
from driftloop.features.source import read_view_source
from driftloop.features.spec import FeatureUse, entity_key_texts, spec_hash, view_spec
from driftloop.registry import Registry
from driftloop.store.monitoring import WindowRecord
from driftloop.store.secrets import pii_key

REL_TOL = 1e-9  # floats equal within this relative tolerance (JSON round trips are exact)
SKEW_ROWS = 100_000  # the newest log rows of the span read at most
_ENTITY, _AT = "_dl_entity", "_dl_at"


@dataclass(frozen=True)
class FeatureSkew:
    """One feature: rows compared, rows whose served value differed, the share's interval."""

    view: str
    feature: str
    compared: int
    differing: int
    share: Interval
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {"view": self.view, "feature": self.feature, "compared": self.compared,
                "differing": self.differing, "share": _finite(self.share.value),
                "low": self.share.low, "high": self.share.high, "flagged": self.flagged}


@dataclass(frozen=True)
class SkewReport:
    """The skew check of one version over a span of its prediction log."""

    model: str
    version: int
    rows: int
    rows_without_entity: int
    max_share: float
    confidence: float
    features: list[FeatureSkew]
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[str]:
        """The names of the flagged features."""
        return [f.feature for f in self.features if f.flagged]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "rows": self.rows,
                "rows_without_entity": self.rows_without_entity, "max_share": self.max_share,
                "confidence": self.confidence, "flagged": self.flagged,
                "features": [f.to_json() for f in self.features], "notes": self.notes}


def feature_skew(
    registry: Registry,
    settings: Settings,
    model: str,
    version: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = SKEW_ROWS,
    uses: Sequence[FeatureUse] | None = None,
) -> SkewReport | None:
    """Compare what ``model`` ``version`` was served in ``[since, until]`` with the offline
    values (see the module docstring); None when the version uses no feature view.

    ``uses``: the views to compare against (default: the bundle's ``feature_views``).
    """
    if uses is None:
        bundle = registry.bundle(registry.get(model, version))
        uses = [FeatureUse.from_json(u) for u in bundle.feature_views or []]
    if not uses:
        return None
    rows = registry.store.version_predictions(model, version, since=since, until=until,
                                              limit=limit)
    key = pii_key(settings.serve.pii_hash_key, registry.artifacts)
    keyed = [r for r in rows if r.subject is not None]
    logged = set().union(*(r.features.keys() for r in keyed)) if keyed else set()
    notes: list[str] = []
    views = _comparable(uses, logged, notes)
    frames = [_hashed_view(settings, use, features, key, notes) for use, features in views]
    entity_rows = pd.DataFrame({_ENTITY: [r.subject for r in keyed],
                                _AT: pd.to_datetime([r.at for r in keyed], utc=True)})
    offline = join_as_of(entity_rows, frames, time_column=_AT).frame if keyed else entity_rows
    cfg, confidence = settings.monitor, settings.evaluate.confidence
    out = []
    for use, features in views:
        for name in features:
            served = pd.Series([r.features.get(name) for r in keyed], dtype=object)
            wrong = differs(served, offline[name].astype(object)) if keyed else np.zeros(0, bool)
            interval = share_interval(int(wrong.sum()), len(keyed), confidence)
            out.append(FeatureSkew(use.view, name, len(keyed), int(wrong.sum()), interval,
                                   interval.low is not None and interval.low > cfg.skew_max_share))
    return SkewReport(model, version, len(rows), len(rows) - len(keyed), cfg.skew_max_share,
                      confidence, out, notes)


def skew_of_windows(registry: Registry, settings: Settings, model: str,
                    windows: Sequence[WindowRecord]) -> list[SkewReport]:
    """The skew check of each version over the span its new ``windows`` cover (versions
    without feature views give none). A view that cannot be read does not stop monitoring:
    its version's report says why it was not checked."""
    spans: dict[int, tuple[datetime, datetime]] = {}
    for w in windows:
        start, end = spans.get(w.version, (w.start_at, w.end_at))
        spans[w.version] = (min(start, w.start_at), max(end, w.end_at))
    out = []
    for version, (start, end) in spans.items():
        try:
            report = feature_skew(registry, settings, model, version, since=start, until=end)
        except DriftloopError as exc:
            report = SkewReport(model, version, 0, 0, settings.monitor.skew_max_share,
                                settings.evaluate.confidence, [], [f"not checked: {exc}"])
        if report is not None:
            out.append(report)
    return out


def _comparable(uses: Sequence[FeatureUse], logged: set[str], notes: list[str]
                ) -> list[tuple[FeatureUse, list[str]]]:
    """The views keyed like the first one, each with the features the log holds."""
    out = []
    for use in uses:
        if list(use.keys) != list(uses[0].keys):
            notes.append(f"view {use.view} is keyed by {', '.join(use.keys)}, not by the "
                         f"entity the log keeps ({', '.join(uses[0].keys)}): not compared.")
            continue
        out.append((use, [f for f in use.features if f in logged]))
    return out


def _hashed_view(settings: Settings, use: FeatureUse, features: list[str], key: str,
                 notes: list[str]) -> ViewFrame:
    """The view's source with its key columns replaced by the keyed hash of the entity."""
    try:
        declared = settings.features.view(use.view)
        entity = settings.features.entity(declared.entity)
    except KeyError:
        raise UsageError(
            f"the version was trained with feature view '{use.view}', which features.views no "
            "longer declares; declare it again (its source) to check its skew.") from None
    if spec_hash(view_spec(settings.features, use.view)) != use.spec_hash:
        notes.append(f"view {use.view}'s declaration changed since the version was trained "
                     f"(its spec hash differs): compared with the current source "
                     f"{declared.source or declared.table}.")
    frame = read_view_source(declared, entity, settings.store_url)
    table = frame.table if isinstance(frame.table, pd.DataFrame) else frame.table.to_pandas()
    texts = pd.Series(entity_key_texts(table, frame.keys), dtype=object)
    hashes = {t: hash_value(t, key) for t in texts.dropna().unique()}
    times = [c for c in (frame.event_time, frame.created_time) if c]
    hashed = table[[*times, *features]].copy()
    hashed.insert(0, _ENTITY, texts.map(hashes).to_numpy())
    return ViewFrame(name=use.view, keys=[_ENTITY], event_time=frame.event_time,
                     created_time=frame.created_time, ttl_seconds=frame.ttl_seconds,
                     features=features, table=hashed)


def differs(served: pd.Series, offline: pd.Series) -> np.ndarray:
    """Per row, whether the served value differs from the offline one (missing == missing;
    numbers within ``REL_TOL``; anything else compared exactly)."""
    numeric = {"floating", "integer", "mixed-integer-float", "empty"}
    if (pd.api.types.infer_dtype(served, skipna=True) in numeric
            and pd.api.types.infer_dtype(offline, skipna=True) in numeric):
        a, b = served.astype(np.float64).to_numpy(), offline.astype(np.float64).to_numpy()
        missing_a, missing_b = np.isnan(a), np.isnan(b)
        with np.errstate(invalid="ignore"):
            # math.isclose's rule (relative to the larger), as the row-by-row path uses
            close = (np.abs(a - b) <= REL_TOL * np.maximum(np.abs(a), np.abs(b))) | (a == b)
        return np.where(missing_a | missing_b, missing_a != missing_b, ~close)
    return np.array([_differs(a, b) for a, b in zip(served, offline, strict=True)], dtype=bool)


def _differs(a: Any, b: Any) -> bool:
    missing_a, missing_b = _missing(a), _missing(b)
    if missing_a or missing_b:
        return missing_a != missing_b
    if _number(a) and _number(b):
        return not math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=0.0)
    return bool(a != b)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or other non-scalar: present
        return False


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = ["FeatureSkew", "SkewReport", "differs", "feature_skew", "skew_of_windows"]
