"""Evaluate a registered version on a dataset and store the report with it (``dl.evaluate``).

Evaluation itself is pure (:func:`driftloop.evaluate.report.evaluate_model` takes a loaded
model and data); this module is the registry's side of it: resolve ``NAME[:VERSION]``, load the
version with its verified bundle and weights, evaluate, and save the report (and its
reliability diagram) as artifacts linked to the version and to the dataset's fingerprint.
Training stores its test-split report with the same :func:`store_report`.

The public function is :func:`driftloop.registry.registry.evaluate` (``dl.evaluate``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.evaluate.report import EvaluationReport, evaluate_model, parse_ref
from driftloop.models import LoadedModel

if TYPE_CHECKING:
    from driftloop.registry.registry import Registry
    from driftloop.store import VersionRecord


def evaluate_version(
    registry: Registry,
    version_or_path: str | VersionRecord,
    data: str | os.PathLike[str] | pd.DataFrame,
    slices: Sequence[str] = (),
    *,
    target: str | None = None,
    settings: Settings | None = None,
    store: bool = True,
) -> EvaluationReport:
    """Evaluate a version of ``registry`` on ``data`` (see :func:`driftloop.evaluate`)."""
    record = _resolve(registry, version_or_path)
    model = LoadedModel.from_artifacts(
        registry.artifacts, record, allowed_factories=registry.settings.security.model_factories)
    report, columns = evaluate_model(
        model, data, slices, target=target, settings=settings or registry.settings,
        model_ref={"name": record.model_name, "version": record.version},
    )
    if store:
        report = store_report(report, registry, version=record, columns=columns)
    return report


def store_report(
    report: EvaluationReport,
    registry: Registry,
    *,
    version: VersionRecord | None = None,
    run_id: str | None = None,
    columns: list[dict[str, Any]] | None = None,
) -> EvaluationReport:
    """Save the report and its diagram as artifacts and link them to version and dataset.

    The dataset (fingerprint, source, rows, ``columns``) is recorded first when it is new.
    Returns the report with ``artifact_sha256``, ``diagram_sha256`` and (from ``version``) the
    model's name and version set.
    """
    dataset = report.dataset
    registry.store.upsert_dataset(
        dataset["fingerprint"], str(dataset.get("source", "")),
        int(dataset.get("source_rows", dataset["rows"])), columns,
    )
    diagram_sha = (
        registry.artifacts.put_bytes(report.diagram_png) if report.diagram_png else None
    )
    model = report.model if version is None else {"name": version.model_name,
                                                   "version": version.version}
    with_diagram = dataclasses.replace(report, diagram_sha256=diagram_sha, model=model)
    body = with_diagram.to_json()
    body.pop("artifact_sha256")
    sha = registry.artifacts.put_json(body)
    summary = {k: v for k, v in report.headline_metrics().items() if _finite(v)}
    if report.slices is not None:
        summary["flagged_slices"] = len(report.slices.flagged)
    registry.store.add_report(
        "evaluation", dataset["fingerprint"], sha, summary,
        version_id=None if version is None else version.id, run_id=run_id,
    )
    return dataclasses.replace(with_diagram, artifact_sha256=sha, model=model)


def _resolve(registry: Registry, ref: str | VersionRecord) -> VersionRecord:
    if isinstance(ref, str):
        if os.sep in ref or ref.endswith((".json", ".safetensors")):
            raise UsageError(
                f"'{ref}' looks like a path; evaluate takes a registered model as NAME or "
                "NAME:VERSION (see `driftloop models list`)."
            )
        return registry.get(*parse_ref(ref))
    return ref


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and bool(np.isfinite(value))


__all__ = ["evaluate_version", "store_report"]
