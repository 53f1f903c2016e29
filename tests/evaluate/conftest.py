"""A registered model version, trained in this process (no ranks), for the evaluation tests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save
from sklearn.datasets import load_breast_cancer

from driftloop.config import Settings
from driftloop.data import PreparedData, prepare
from driftloop.evaluate.calibration import TemperatureScaler
from driftloop.models.architectures import build_model
from driftloop.registry import LoadedModel, ModelBundle, Registry
from driftloop.store import VersionRecord


@dataclass(frozen=True)
class Registered:
    settings: Settings
    registry: Registry
    version: VersionRecord
    frame: pd.DataFrame
    prepared: PreparedData


def cancer_frame() -> pd.DataFrame:
    """Breast cancer (569 rows), text labels, plus a categorical column to slice by."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    rng = np.random.default_rng(0)
    frame["clinic"] = rng.choice(["north", "south", "east"], len(frame))
    return frame


def fit_in_process(prepared: PreparedData, epochs: int = 200, seed: int = 0) -> bytes:
    """Full-batch Adam on the train split: long enough to become overconfident."""
    torch.manual_seed(seed)
    n_out = prepared.n_classes
    module = build_model("mlp", prepared.model_inputs, n_out)
    train = prepared.splits["train"]
    x, x_cat = torch.from_numpy(train.x), torch.from_numpy(train.x_cat)
    y = torch.from_numpy(train.y)
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-2)
    module.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(module(x, x_cat), y).backward()
        optimiser.step()
    module.eval()
    return save(module.state_dict())


@dataclass(frozen=True)
class Trained:
    frame: pd.DataFrame
    prepared: PreparedData
    bundle: ModelBundle
    weights: bytes


def train_in_process(frame: pd.DataFrame, target: str, calibrate: bool = True) -> Trained:
    prepared = prepare(frame, target, seed=0)
    weights = fit_in_process(prepared)
    bundle = ModelBundle(
        task=prepared.task, input_kind="table", model="mlp",
        model_inputs=dict(prepared.model_inputs), n_outputs=prepared.n_classes,
        classes=list(prepared.classes), schema=prepared.schema.to_json(),
        preprocessor=prepared.preprocessor, target_encoder=dict(prepared.target_encoder),
        fingerprints=dict(prepared.fingerprints),
    )
    if calibrate:
        val = prepared.splits["val"]
        proba = LoadedModel(bundle, weights).predict_arrays(val.x, val.x_cat, calibrated=False)
        bundle = dataclasses.replace(
            bundle, calibration=TemperatureScaler().fit(proba, val.y).to_json()
        )
    return Trained(frame, prepared, bundle, weights)


def register(settings: Settings, trained: Trained, name: str) -> Registered:
    registry = Registry.open(settings)
    version = registry.register(name, run_id=None, bundle=trained.bundle,
                                weights=trained.weights, metrics={}, actor="test",
                                reason="fixture")
    return Registered(settings, registry, version, trained.frame, trained.prepared)


@pytest.fixture(scope="session")
def cancer_trained() -> Trained:
    """Trained once per session; each test registers it into its own store."""
    return train_in_process(cancer_frame(), "target")


@pytest.fixture
def cancer_model(dl_settings: Settings, cancer_trained: Trained) -> Registered:
    return register(dl_settings, cancer_trained, "cancer")
