"""Evidence about a model version that the store holds: evaluation and data-check reports.

Evaluation reports (:func:`driftloop.evaluate`) are linked to the version they evaluated; data
checks (:func:`driftloop.check_data`) to the dataset they checked and, when training ran them,
to the run. These small readers are the only place the registry depends on the reports' JSON,
so gates, lineage and model cards read the same facts the same way.

Examples
--------
>>> from driftloop.store import ArtifactStore, Store
>>> store = Store.open("sqlite://")
>>> artifacts = ArtifactStore("memory://evidence-doc")
>>> v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
>>> _ = store.upsert_dataset("d" * 64, "holdout.csv", 100, None)
>>> body = {"metrics": {"accuracy": {"value": 0.9, "low": 0.84, "high": 0.95,
...                                  "confidence": 0.95}},
...         "calibration": {"after": {"ece": 0.03}}, "slices": None, "dataset": {}}
>>> _ = store.add_report("evaluation", "d" * 64, artifacts.put_json(body), {},
...                      version_id=v.id)
>>> (ev,) = evaluations(store, artifacts, v)
>>> ev.metric("accuracy")["low"], ev.ece, ev.dataset_fingerprint == "d" * 64
(0.84, 0.03, True)
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftloop.store import ArtifactStore, ReportRecord, Store, VersionRecord


@dataclass(frozen=True)
class Evaluation:
    """One stored evaluation report of a version, read from its artifact."""

    report: ReportRecord
    body: dict[str, Any]

    @property
    def dataset_fingerprint(self) -> str:
        return self.report.dataset_fingerprint

    @property
    def dataset(self) -> dict[str, Any]:
        """Fingerprint, source, rows and role of the evaluation data, as the report states."""
        return {"fingerprint": self.dataset_fingerprint, **dict(self.body.get("dataset") or {})}

    def metric(self, name: str) -> dict[str, Any] | None:
        """``{"value", "low", "high", "confidence"}`` of one metric, or None if not measured."""
        found = (self.body.get("metrics") or {}).get(name)
        return dict(found) if isinstance(found, dict) and found.get("value") is not None else None

    @property
    def ece(self) -> float | None:
        """Expected calibration error of the calibrated probabilities (None: not measured)."""
        after = (self.body.get("calibration") or {}).get("after") or {}
        value = after.get("ece")
        return float(value) if value is not None else None

    @property
    def slices(self) -> dict[str, Any] | None:
        """The slice report (``SliceReport.to_json()``), or None when no slice was evaluated."""
        return self.body.get("slices") or None

    @property
    def robustness(self) -> dict[str, Any] | None:
        """The robustness section (accuracy under perturbations), or None when not measured."""
        return self.body.get("robustness") or None

    @property
    def worst_slice(self) -> dict[str, Any] | None:
        """The worst ranked slice (column, value, count, metric, gap, flagged), or None."""
        slices = self.slices or {}
        worst = slices.get("worst")
        if not worst:
            return None
        return next((dict(s) for s in slices.get("slices") or []
                     if s.get("column") == worst.get("column")
                     and s.get("value") == worst.get("value")), None)

    def label(self) -> str:
        data = self.dataset
        where = data.get("source") or data.get("role") or "data"
        return (f"evaluation report {self.report.artifact_sha256[:12]} on {where} "
                f"({data.get('rows', '?')} rows, fingerprint {self.dataset_fingerprint[:12]})")


@dataclass(frozen=True)
class DataCheck:
    """One stored data-check report of a version's training data."""

    report: ReportRecord
    body: dict[str, Any]

    @property
    def passed(self) -> bool:
        """True when the check found no error."""
        if "passed" in self.body:
            return bool(self.body["passed"])
        return int(self.report.summary.get("error", 0)) == 0

    @property
    def errors(self) -> int:
        counts = self.body.get("counts") or self.report.summary
        return int(counts.get("error", 0))

    @property
    def pii_columns(self) -> list[str]:
        """Columns the check found to hold personal data (names only, never values)."""
        return [
            str(column)
            for finding in self.body.get("findings") or []
            if finding.get("check") == "pii"
            for column in finding.get("columns") or []
        ]

    def label(self) -> str:
        return (f"data check {self.report.artifact_sha256[:12]} of dataset "
                f"{self.report.dataset_fingerprint[:12]}")


def evaluations(
    store: Store, artifacts: ArtifactStore, version: VersionRecord
) -> list[Evaluation]:
    """Every evaluation report linked to ``version``, newest first."""
    records = store.list_reports(kind="evaluation", version_id=version.id)
    return [Evaluation(r, artifacts.get_json(r.artifact_sha256)) for r in reversed(records)]


def data_checks(
    store: Store, artifacts: ArtifactStore, version: VersionRecord
) -> list[DataCheck]:
    """Data checks of the data ``version`` was trained on, newest first.

    A check counts when it was made by the version's run, or made on the run's source or
    training split (same fingerprint) by ``driftloop data check`` before or after.
    """
    if version.run_id is None:
        return []
    datasets = store.run_datasets(version.run_id)
    found: dict[int, ReportRecord] = {}
    for role in ("source", "train"):
        if role in datasets:
            for r in store.list_reports(kind="data_check",
                                        dataset_fingerprint=datasets[role].fingerprint):
                found[r.id] = r
    for r in store.list_reports(kind="data_check"):
        if r.run_id == version.run_id:
            found[r.id] = r
    ordered = sorted(found.values(), key=lambda r: r.id, reverse=True)
    return [DataCheck(r, artifacts.get_json(r.artifact_sha256)) for r in ordered]


def logged_pii_columns(
    store: Store, artifacts: ArtifactStore, record: VersionRecord
) -> tuple[frozenset[str], list[str]]:
    """The feature columns of ``record`` that a prediction log must hash: those its stored data
    check flags as PII; and notes to show where that evidence is missing.

    >>> from driftloop.store import ArtifactStore, Store
    >>> import types
    >>> store, artifacts = Store.open("sqlite://"), ArtifactStore("memory://pii-doc")
    >>> v = types.SimpleNamespace(id=1, run_id=None, model_name="m", version=1)
    >>> logged_pii_columns(store, artifacts, v)[1]  # doctest: +ELLIPSIS
    ['no data check is stored for m v1: the prediction log hashes no column ...']
    >>> store.close()
    """
    checks = data_checks(store, artifacts, record)
    if not checks:
        return frozenset(), [
            f"no data check is stored for {record.model_name} v{record.version}: the prediction "
            "log hashes no column (run `driftloop data check` on its training data)"]
    return frozenset(checks[0].pii_columns), []


def features(bundle_schema: dict[str, Any] | None) -> list[str] | None:
    """The feature columns a table model reads (None for image and sequence models).

    >>> features({"features": [{"name": "age", "kind": "numeric"}], "target": "y"})
    ['age']
    >>> features(None) is None
    True
    """
    if not bundle_schema:
        return None
    return [str(f["name"]) for f in bundle_schema.get("features") or []]


__all__ = ["DataCheck", "Evaluation", "data_checks", "evaluations", "features",
           "logged_pii_columns"]
