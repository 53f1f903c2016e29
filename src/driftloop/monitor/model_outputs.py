"""A model version as a drift reference: its stored profile, and its outputs on current data.

``dl.drift("credit:3", current)`` compares the current data with the profile stored with
version 3 at training time and, when the profile holds the model's outputs on the validation
split, the model's outputs on ``current`` with those (prediction drift). The registry is opened
once, the version loaded, and the registry closed before any comparison runs.

Examples
--------
>>> import tempfile
>>> from driftloop.config import Settings
>>> home = tempfile.mkdtemp()
>>> load_model_reference("credit:1", Settings.load(overrides={"home": home}, environ={},
...                                                 cwd=home))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftloop.errors.NotFoundError: ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from driftloop.config import DriftSettings, Settings
from driftloop.errors import DataError, DriftloopError
from driftloop.evaluate.report import parse_ref
from driftloop.monitor.profile import FeatureProfile, Profile, current_feature, output_columns
from driftloop.monitor.reference import load_reference

if TYPE_CHECKING:
    from driftloop.models import LoadedModel


@dataclass(frozen=True)
class ModelReference:
    """The stored reference profile of ``name`` v``version`` and the loaded version (None with
    ``load_error`` when it could not be loaded: the features are still compared)."""

    name: str
    version: int
    profile: Profile
    model: LoadedModel | None
    load_error: str | None = None


def load_model_reference(reference: str, settings: Settings) -> ModelReference:
    """Read ``NAME:VERSION``'s stored profile and load the version (registry opened, closed)."""
    # imported here for start-up time only: comparing two files needs neither torch nor the store
    from driftloop.registry import Registry

    name, version = parse_ref(str(reference))
    if version is None:
        raise DataError(
            f"{reference}: no such file, and not NAME:VERSION. Pass a CSV or Parquet file, or a "
            "registered model as NAME:VERSION (e.g. credit:3) to use its stored profile."
        )
    with Registry.open(settings) as registry:
        profile = load_reference(registry, name, version)
        try:
            return ModelReference(name, version, profile, registry.load(name, version))
        except DriftloopError as exc:
            return ModelReference(name, version, profile, None, str(exc))


def output_profiles(
    model: ModelReference, current: str | os.PathLike[str] | pd.DataFrame,
    config: DriftSettings,
) -> dict[str, FeatureProfile] | str:
    """The model's outputs on ``current`` profiled on the reference's output bins, or the
    reason they could not be computed."""
    from driftloop.data.read import read_table

    try:
        if model.model is None:
            raise DataError(model.load_error or "the version could not be loaded")
        loaded = model.model
        features = [f["name"] for f in (loaded.bundle.schema or {}).get("features", [])]
        frame = read_table(current).frame
        outputs = loaded.predict_raw(frame[features] if features else frame)
        outputs = loaded.to_original_scale(outputs)
        columns, names = output_columns(loaded.task, loaded.bundle.classes, outputs)
        reference = model.profile
        if names != list(reference.outputs):
            raise DataError(f"the model's outputs {names} are not the profiled "
                            f"{list(reference.outputs)}")
    except (DriftloopError, KeyError) as exc:
        return f"model outputs not computed for the current data: {exc}"
    return {
        out: current_feature(ref, pd.Series(columns[:, i]), len(frame), config)
        for i, (out, ref) in enumerate(reference.outputs.items())
    }


__all__ = ["ModelReference", "load_model_reference", "output_profiles"]
