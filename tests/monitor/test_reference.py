"""Reference profiles stored with model versions, and the one training stores by itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import driftloop as dl
from driftloop.config import DriftSettings
from driftloop.errors import NotFoundError
from driftloop.monitor.profile import build_reference
from driftloop.monitor.reference import load_reference, store_reference
from driftloop.registry import ModelBundle, Registry


def _version(registry: Registry, name: str = "churn"):
    bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
                         n_outputs=2, classes=["no", "yes"], schema=None, preprocessor=None,
                         target_encoder={"task": "binary"})
    return registry.register(name, run_id=None, bundle=bundle, weights=b"w", metrics={},
                             actor="test", reason="test")


def test_a_stored_profile_is_linked_to_its_version_and_dataset_and_loads_back(dl_settings):
    registry = Registry.open(dl_settings)
    first, second = _version(registry), _version(registry)
    dataset = registry.store.upsert_dataset("a" * 64, "train.csv", 50, None)
    frame = pd.DataFrame({"age": np.arange(50.0), "city": ["Oslo", "Rome"] * 25})
    profile = build_reference(frame, outputs=np.linspace(0, 1, 50), output_names=["proba:yes"])
    store_reference(registry, first, profile, dataset_id=dataset.id, run_id=None)
    other = build_reference(frame.head(10))
    store_reference(registry, second, other, dataset_id="a" * 64, run_id=None)  # by fingerprint
    assert load_reference(registry, "churn", 1) == profile
    assert load_reference(registry, "churn", 2) == other
    [record] = registry.store.list_reports(kind="profile", version_id=first.id)
    assert record.dataset_fingerprint == "a" * 64
    assert record.summary == {"rows": 50, "features": 2, "outputs": 1}


def test_missing_profiles_versions_and_datasets_are_named(dl_settings):
    registry = Registry.open(dl_settings)
    version = _version(registry)
    with pytest.raises(NotFoundError, match="churn:1 has no stored reference profile.*--reference"):
        load_reference(registry, "churn", 1)
    with pytest.raises(NotFoundError, match="has no version 4"):
        load_reference(registry, "churn", 4)
    with pytest.raises(NotFoundError, match="no dataset with id 99"):
        store_reference(registry, version, build_reference(pd.DataFrame({"x": [1.0]})),
                        dataset_id=99, run_id=None)


@pytest.mark.slow
def test_training_stores_the_train_split_profile_and_validation_outputs(dl_settings):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "age": rng.normal(40, 10, n).round(1),
        "income": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(10, 0.5, n)),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n),
    })
    frame["label"] = np.where(frame["age"] + rng.normal(0, 5, n) > 40, "yes", "no")
    result = dl.train(frame, target="label", workers=2, epochs=3, batch_size=32, name="ages",
                      settings=dl_settings, progress=False)
    registry = Registry.open(dl_settings)
    profile = load_reference(registry, "ages", result.version)
    assert list(profile.features) == ["age", "income", "city"]  # the features, not the target
    assert profile.rows == 280  # the training split (70 %)
    assert profile.features["income"].missing > 0
    assert profile.features["city"].categories is not None
    [output] = profile.outputs.values()
    assert list(profile.outputs) == ["proba:yes"] and output.rows == 60  # validation split
    assert 0.0 <= output.minimum <= output.maximum <= 1.0
    # the validation outputs are kept row by row with their labels (class codes), for the
    # monitor's label-free performance estimator
    assert profile.labelled is not None and profile.labelled.rows == 60
    proba, labels = profile.labelled.arrays()
    assert proba.shape == (60, 2)
    assert labels.tolist() == np.load(Path(result.run_dir) / "data" / "val_y.npy").tolist()
    assert np.allclose(proba[:, 1], output.sample, rtol=1e-5)  # the same rows, in order
    version = registry.get("ages", result.version)
    [record] = registry.store.list_reports(kind="profile", version_id=version.id)
    assert record.run_id == result.run_id
    assert record.dataset_fingerprint == result.fingerprints["train"]

    # the stored profile is a reference for dl.drift, with the model's outputs compared too
    shifted = frame.assign(age=frame["age"] + 15)
    report = dl.drift(f"ages:{result.version}", shifted, target="label",
                      settings=dl_settings.updated({"drift": DriftSettings().model_dump()}))
    assert "age" in report.drifted
    [output_drift] = report.prediction["outputs"]
    assert output_drift["name"] == "proba:yes" and output_drift["status"] in ("ok", "drift")
