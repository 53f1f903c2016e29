"""The runner's choices: which models to serve, and the warning for an exposed bind."""

from __future__ import annotations

import pytest

from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from driftloop.serve.server import exposure_warning, served_models


def test_exposed_bind_without_keys_is_refused_unless_insecure(dl_settings):
    registry = Registry.open(dl_settings)
    assert exposure_warning(registry, "127.0.0.1") is None
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 with no API key"):
        exposure_warning(registry, "0.0.0.0")
    assert "--insecure" in exposure_warning(registry, "0.0.0.0", insecure=True)
    create_key(registry.store, registry.audit, "svc", "predict", actor="test")
    assert exposure_warning(registry, "0.0.0.0") is None
    assert served_models(registry, "production", ["a"]) == ["a"]
    with pytest.raises(UsageError, match="no model has a version under alias 'production'"):
        served_models(registry, "production", None)


def test_serve_on_an_exposed_address_with_no_key_exits_2_before_binding(tmp_path, monkeypatch,
                                                                        capsys):
    from driftloop.cli import main

    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    code = main(["serve", "--model", "m", "--host", "0.0.0.0", "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to serve on 0.0.0.0" in " ".join(err.split())
    assert "Traceback" not in err
