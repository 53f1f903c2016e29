"""The runner's choices: which models to serve, and the warning for an exposed bind."""

from __future__ import annotations

import pytest

from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from driftloop.serve.server import exposure_warning, served_models


def test_exposed_bind_without_keys_warns_and_nothing_promoted_is_a_usage_error(dl_settings):
    registry = Registry.open(dl_settings)
    assert exposure_warning(registry, "127.0.0.1") is None
    assert "no API key" in exposure_warning(registry, "0.0.0.0")
    create_key(registry.store, registry.audit, "svc", "predict", actor="test")
    assert exposure_warning(registry, "0.0.0.0") is None
    assert served_models(registry, "production", ["a"]) == ["a"]
    with pytest.raises(UsageError, match="no model has a version under alias 'production'"):
        served_models(registry, "production", None)
