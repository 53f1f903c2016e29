"""A real trained model, registered twice (v1 trained, v2 with nudged weights), for the
serving tests; trained once per session (it takes 10-25 s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from driftloop.ui import mount_dashboard
from pg_server import store_overrides

MODEL = "cancer"


@dataclass
class Served:
    settings: Settings
    registry: Registry
    frame: pd.DataFrame  # feature columns only
    target: pd.Series


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Served:
    from sklearn.datasets import load_breast_cancer

    from driftloop.train.launcher import train

    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    frame["band"] = rng.choice(["low", "mid", "high"], len(frame))
    # a column of personal data kept as a feature on purpose (allow_pii): the log must hash it
    frame["contact"] = rng.choice([f"user{i}@example.com" for i in range(12)], len(frame))
    home = tmp_path_factory.mktemp("serve-home")
    settings = Settings.load(overrides={"home": str(home), "train": {"patience": 100},
                                        **store_overrides(request)},
                             environ={}, cwd=home)
    train(frame, "target", workers=1, epochs=3, batch_size=32, settings=settings,
          progress=False, allow_pii=["contact"], name=MODEL)
    registry = Registry.open(settings)
    v1 = registry.load(MODEL, 1)
    state = {k: v.clone() for k, v in v1.module.state_dict().items()}
    last = [k for k in state if k.endswith("bias")][-1]
    state[last] += torch.tensor([0.5, -0.5])
    registry.register(MODEL, run_id=registry.get(MODEL, 1).run_id, bundle=v1.bundle,
                      weights=save(state), metrics={}, actor="test", reason="v2 for swaps")
    registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
    return Served(settings, registry, frame.drop(columns=["target"]), frame["target"])


def own_copy(served: Served, home: Any, request: pytest.FixtureRequest, why: str) -> Served:
    """The served model (v1, promoted) in a store of its own at ``home``: once a key was
    created, a store stays closed for good, so a test creating keys must not close the
    session's shared store."""
    settings = Settings.load(overrides={"home": str(home), **store_overrides(request)},
                             environ={}, cwd=home)
    registry = Registry.open(settings)
    source = served.registry
    record = source.get(MODEL, 1)
    registry.register(MODEL, run_id=None, bundle=source.bundle(record),
                      weights=source.artifacts.get_bytes(record.weights_sha256), metrics={},
                      actor="test", reason=why)
    registry.promote(MODEL, 1, to="production", force=True, reason="test bootstrap")
    return Served(settings, registry, served.frame, served.target)


def instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able instances of feature rows."""
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def start_server(served: Served, **serve: Any) -> BackgroundServer:
    """A real server on a loopback port, started and ready."""
    cfg = served.settings.serve.model_copy(update={"log_flush_ms": 50.0, "key_cache_s": 0.0,
                                                   **serve})
    server = BackgroundServer(
        create_app(served.registry, [MODEL], cfg, mount=[mount_dashboard])).start()
    try:
        return server.wait_ready()
    except RuntimeError:
        server.stop()
        raise
