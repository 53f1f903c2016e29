"""Reference profiles stored with model versions, and the training run's part in making them.

Training a table model stores, with the new version, the profile of the training split's raw
feature columns and of the model's calibrated outputs on the validation split (a report of
kind ``"profile"`` linked to the version and to the training split's dataset); a classifier's
validation outputs are also kept row by row with their labels (at most 20,000 rows, a seeded
sample), which the monitor fits its label-free performance estimator on. The launcher
calls :func:`write_training_profile` before the ranks start (so a resumed run has it without
the source data) and :func:`store_training_reference` after registering. Image and sequence
models get no profile: their inputs are arrays, not features.

Examples
--------
>>> import tempfile, pandas as pd
>>> from driftloop.config import Settings
>>> from driftloop.monitor.profile import build_reference
>>> from driftloop.registry import ModelBundle, Registry
>>> home = tempfile.mkdtemp()
>>> registry = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
...                      n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
...                      target_encoder={"task": "binary"})
>>> version = registry.register("churn", run_id=None, bundle=bundle, weights=b"w", metrics={},
...                             actor="doc", reason="example")
>>> dataset = registry.store.upsert_dataset("d" * 64, "train.csv", 3, None)
>>> profile = build_reference(pd.DataFrame({"age": [30.0, 40.0, 50.0]}))
>>> store_reference(registry, version, profile, dataset_id=dataset.id, run_id=None)
>>> load_reference(registry, "churn", 1).to_json() == profile.to_json()
True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.errors import NotFoundError
from driftloop.monitor.profile import (
    Profile,
    build_reference,
    labelled_outputs,
    output_columns,
    reference_feature,
)

if TYPE_CHECKING:
    from driftloop.data import PreparedData
    from driftloop.registry import Registry
    from driftloop.store import VersionRecord

PROFILE_FILE = "reference_profile.json"
"""The training split's feature profile in the run folder's ``data/``, with its settings."""


def store_reference(
    registry: Registry,
    version_record: VersionRecord,
    profile: Profile,
    *,
    dataset_id: int | str,
    run_id: str | None,
) -> None:
    """Store ``profile`` as the reference of ``version_record``.

    The profile JSON becomes an artifact, linked by a report of kind ``"profile"`` to the
    version and to the dataset it was computed on (``dataset_id``: the dataset's store id or
    its fingerprint; the dataset must be recorded already).
    """
    fingerprint = dataset_id if isinstance(dataset_id, str) else _fingerprint(registry, dataset_id)
    sha = registry.artifacts.put_json(profile.to_json())
    summary = {"rows": profile.rows, "features": len(profile.features),
               "outputs": len(profile.outputs)}
    if profile.labelled is not None:
        summary["labelled"] = len(profile.labelled.labels)
    registry.store.add_report(
        "profile", fingerprint, sha, summary, version_id=version_record.id, run_id=run_id
    )


def load_reference(registry: Registry, model_name: str, version: int) -> Profile:
    """The reference profile stored with ``model_name`` version ``version`` (the newest one).

    Raises NotFoundError when the version (or its profile) does not exist.
    """
    record = registry.get(model_name, version)
    reports = registry.store.list_reports(kind="profile", version_id=record.id)
    if not reports:
        raise NotFoundError(
            f"{model_name}:{record.version} has no stored reference profile (only table models "
            "trained by `driftloop train` get one). Pass its training data as the reference "
            "instead (driftloop drift --reference train.csv …), or train it again."
        )
    return Profile.from_json(registry.artifacts.get_json(reports[-1].artifact_sha256))


def write_training_profile(
    data_dir: Path, data: str | os.PathLike[str] | pd.DataFrame, prepared: PreparedData,
    settings: DriftSettings,
) -> Path | None:
    """Profile the training split's raw feature columns into ``data_dir / PROFILE_FILE``.

    Nothing is written for image or sequence data (``prepared.schema`` is None).
    """
    from driftloop.data import read_table

    if prepared.schema is None:
        return None
    kinds = {spec.name: spec.kind for spec in prepared.schema.features}
    # a DataFrame is used as it is (read_table would copy and hash it once more)
    source = (data.rename(columns=str) if isinstance(data, pd.DataFrame)
              else read_table(data).frame)
    frame = source.iloc[prepared.splits["train"].rows]
    profile = build_reference(frame[list(kinds)], kinds=kinds, settings=settings)
    path = data_dir / PROFILE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = {"settings": settings.model_dump(), "profile": profile.to_json()}
    tmp.write_text(json.dumps(body, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def store_training_reference(
    registry: Registry,
    version: VersionRecord,
    run_id: str,
    path: Path,
    outputs: np.ndarray,
    classes: list[Any],
    labels: np.ndarray | None = None,
) -> None:
    """Add the model's validation-split ``outputs`` to the profile at ``path`` and store it
    with ``version``, linked to the run's training split.

    ``labels``: the validation split's class codes; a classifier's outputs are then kept with
    them (a seeded sample of at most :data:`~driftloop.monitor.profile.LABELLED_MAX_ROWS`
    rows), which the monitor fits its label-free performance estimator on."""
    body = json.loads(path.read_text(encoding="utf-8"))
    settings = DriftSettings.model_validate(body["settings"])
    features = Profile.from_json(body["profile"])
    columns, names = output_columns(version.task, classes, outputs)
    labelled = None
    if labels is not None and version.task != "regression":
        labelled = labelled_outputs(outputs, labels)
    profile = Profile(
        features=features.features,
        outputs={name: reference_feature(name, pd.Series(columns[:, i]), "numeric", settings)
                 for i, name in enumerate(names)},
        rows=features.rows,
        labelled=labelled,
    )
    train = registry.store.run_datasets(run_id)["train"]
    store_reference(registry, version, profile, dataset_id=train.id, run_id=run_id)


def _fingerprint(registry: Registry, dataset_id: int) -> str:
    return registry.store.get_dataset_by_id(dataset_id).fingerprint


__all__ = [
    "PROFILE_FILE",
    "load_reference",
    "store_reference",
    "store_training_reference",
    "write_training_profile",
]
