"""`driftloop models optimize`: never recommends a runtime slower than fp32 or outside the
accuracy bound; the report is stored with the version, shown by `models show` and the card,
and `--apply` changes the runtime a real loopback server loads (serve.runtime auto)."""

from __future__ import annotations

import json
import os
import time

import httpx
import numpy as np
import pytest
import yaml

from driftloop.cli import main
from driftloop.errors import UsageError
from driftloop.loop.optimize import (
    Candidate,
    apply_recommendation,
    default_candidates,
    optimize_version,
)
from driftloop.registry.runtime_choice import APPLY_ACTION, applied_runtime, latest_optimization
from driftloop.serve.runtimes import OnnxRuntime, TorchRuntime

from .conftest import MODEL, Served, own_copy, start_server

pytestmark = pytest.mark.slow


class Slowed:
    """A runtime made slow on purpose: it waits ``delay_s`` before each call of ``inner``."""

    def __init__(self, inner, name: str, delay_s: float = 0.002) -> None:
        self.inner, self.name, self.delay_s = inner, name, delay_s

    def logits(self, x, x_cat):
        time.sleep(self.delay_s)
        return self.inner.logits(x, x_cat)


class Constant:
    """Fast and wrong: the same logits for every row (class 0 always wins)."""

    name = "constant"

    def __init__(self, outputs: int) -> None:
        self.outputs = outputs

    def logits(self, x, x_cat):
        return np.zeros((len(x), self.outputs), np.float32)


class Memo:
    """Fast and exact after the first call: fp32 outputs memoised by the input bytes."""

    name = "memo"

    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, {}

    def logits(self, x, x_cat):
        key = x.tobytes() + (b"" if x_cat is None else x_cat.tobytes())
        if key not in self.seen:
            self.seen[key] = self.inner.logits(x, x_cat)
        return self.seen[key]


def _by_name(report):
    return {r["name"]: r for r in report["runtimes"]}


def test_never_slower_than_fp32_nor_outside_the_bound(served_model: Served):
    registry = served_model.registry
    record = registry.get(MODEL, 1)
    loaded = registry.load(MODEL, 1)
    real = default_candidates(loaded, record.size_bytes)
    onnx = next(c for c in real if c.name == "onnx")
    torch_rt = TorchRuntime(loaded.module, "table")
    injected = [Candidate(Slowed(onnx.runtime, "onnx_slowed"), onnx.size_bytes),
                Candidate(Constant(loaded.bundle.n_outputs), 0),
                Candidate(Memo(torch_rt), record.size_bytes)]
    report = optimize_version(registry, record, max_drop=0.0, candidates=real + injected,
                              rounds=8, calls=10, batch=256, store=False)
    rows = _by_name(report)
    assert report["data"] == "test split" and report["rows"] > 50  # from the run folder
    assert set(rows) >= {"torch", "onnx", "onnx_int8", "onnx_slowed", "constant", "memo"}
    for r in report["runtimes"]:
        assert len(r["latency_b1_us"]["samples"]) == 8 * 10
        if r["eligible"]:
            assert r["latency_ratio"]["high"] < 1 and r["drop_upper_bound"] <= 0.0
    assert not rows["onnx_slowed"]["eligible"]
    assert any("not faster" in why for why in rows["onnx_slowed"]["refused"])
    assert not rows["constant"]["eligible"]  # far faster than fp32, but it drops accuracy
    assert rows["constant"]["latency_ratio"]["high"] < 1
    assert any("metric drop" in why for why in rows["constant"]["refused"])
    # the decision can say yes: the exact, faster runtime is eligible; the fastest eligible wins
    assert rows["memo"]["eligible"] and rows["memo"]["drop_upper_bound"] == 0.0
    eligible = [r for r in report["runtimes"] if r["eligible"]]
    assert report["recommended"] == min(eligible, key=lambda r: r["latency_ratio"]["value"])[
        "name"]
    assert rows["onnx_int8"]["size_bytes"] < rows["onnx"]["size_bytes"]
    # nothing faster within the bound: fp32 torch
    report = optimize_version(registry, record, max_drop=0.0, store=False, rounds=4, calls=5,
                              batch=64, candidates=[real[0], injected[0], injected[1]])
    assert report["recommended"] == "torch"


@pytest.fixture
def copy_home(served_model: Served, tmp_path, request) -> Served:
    return own_copy(served_model, tmp_path / "home", request, "optimize test")


def test_apply_changes_what_serve_loads_and_show_and_card_tell(copy_home: Served, tmp_path,
                                                               monkeypatch, capsys):
    registry = copy_home.registry
    record = registry.get(MODEL, 1)
    loaded = registry.load(MODEL, 1)
    data = copy_home.frame.assign(target=copy_home.target.to_numpy())
    inputs = loaded.bundle.model_inputs
    # fp32 torch slowed on purpose, so the exact ONNX runtime is surely faster here
    candidates = [Candidate(Slowed(TorchRuntime(loaded.module, "table"), "torch"), 1),
                  Candidate(OnnxRuntime(loaded.module, "table", n_numeric=inputs["n_numeric"],
                                        n_cat=len(inputs["cardinalities"])), 1)]
    report = optimize_version(registry, record, data=data, target="target",
                              candidates=candidates, rounds=5, calls=5, batch=64)
    assert report["recommended"] == "onnx"
    stored = latest_optimization(registry.audit, registry.artifacts, record)
    assert stored is not None and stored.report_sha256 == report["report_sha256"]
    assert stored.body["recommended"] == "onnx" and applied_runtime(registry.audit, record) is None
    srv = start_server(copy_home)  # serve.runtime auto, nothing applied: torch
    try:
        assert httpx.get(srv.url + "/v2/health/ready").json()["runtimes"] == {MODEL: "torch"}
    finally:
        srv.stop()
    applied = apply_recommendation(registry, record, report)
    assert applied["runtime"] == "onnx"
    (entry,) = registry.audit.entries(subject=f"{MODEL}:v1", action=APPLY_ACTION)
    assert entry.details["report_sha256"] == report["report_sha256"]
    srv = start_server(copy_home)
    try:
        assert httpx.get(srv.url + "/v2/health/ready").json()["runtimes"] == {MODEL: "onnx"}
        page = httpx.get(srv.url + f"/ui/api/models/{MODEL}/versions/1").json()["runtime"]
        assert page["recommended"] == "onnx" and page["applied"] == "onnx"
        assert [r["name"] for r in page["runtimes"]] == ["torch", "onnx"]
        rows = copy_home.frame.iloc[:5]
        answer = httpx.post(srv.url + f"/v1/models/{MODEL}/predict", json={"instances": [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in rows.to_dict(orient="records")]})
        np.testing.assert_allclose(answer.json()["probabilities"], loaded.predict_raw(rows),
                                   atol=1e-4)
    finally:
        srv.stop()
    srv = start_server(copy_home, runtime="torch")  # set explicitly: the setting wins
    try:
        assert httpx.get(srv.url + "/v2/health/ready").json()["runtimes"] == {MODEL: "torch"}
    finally:
        srv.stop()
    # models show and the card tell the measured choice and what is applied
    settings = copy_home.settings
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump(
        {"home": str(settings.home), "store_url": settings.store_url}))
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    assert main(["models", "show", f"{MODEL}:1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["runtime"]
    assert shown["recommended"] == "onnx" and shown["applied"] == "onnx"
    assert main(["models", "show", f"{MODEL}:1"]) == 0
    assert "runtime: onnx (applied; recommended onnx" in capsys.readouterr().out
    card = registry.card(MODEL, 1).to_json()
    items = {i["label"]: i["text"] for i in card["sections"]["model_details"]["items"]}
    assert "recommended onnx" in items["Runtime"] and "applied: onnx" in items["Runtime"]


def test_cli_table_json_and_bad_input(copy_home: Served, tmp_path, monkeypatch, capsys):
    settings = copy_home.settings
    data = tmp_path / "rows.csv"
    copy_home.frame.assign(target=copy_home.target.to_numpy()).to_csv(data, index=False)
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump(
        {"home": str(settings.home), "store_url": settings.store_url}))
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    argv = ["models", "optimize", MODEL, "1", "--data", str(data), "--rounds", "4",
            "--batch", "64"]
    assert main([*argv, "--apply", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["applied"]["runtime"] == body["recommended"]
    by_name = _by_name(body)
    assert {"torch", "onnx", "onnx_int8"} <= set(by_name)
    chosen = by_name[body["recommended"]]
    assert body["recommended"] == "torch" or (
        chosen["latency_ratio"]["high"] < 1 and chosen["drop_upper_bound"] <= body["max_drop"])
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "recommended:" in text and "onnx_int8" in text and "latency × fp32" in text
    assert main(["models", "optimize", MODEL, "9", "--data", str(data)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main([*argv, "--metric", "rmse"]) == 2
    assert "does not apply to a binary model" in " ".join(capsys.readouterr().err.split())
    assert main(["models", "optimize", MODEL, "1"]) == 2  # no run folder, no --data
    assert "--data" in capsys.readouterr().err


def test_regression_version_is_compared_on_rmse_in_target_units(tmp_path, request):
    import pandas as pd
    import torch
    from safetensors.torch import save

    from driftloop.config import Settings
    from driftloop.data import prepare
    from driftloop.models.architectures import build_model
    from driftloop.registry import ModelBundle, Registry
    from pg_server import store_overrides

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["price"] = 1000 + 50 * frame["a"] - 20 * frame["b"] + rng.normal(size=300)
    prepared = prepare(frame, "price", seed=0)
    torch.manual_seed(0)
    module = build_model("mlp", prepared.model_inputs, 1)
    bundle = ModelBundle(task="regression", input_kind="table", model="mlp",
                         model_inputs=prepared.model_inputs, n_outputs=1, classes=[],
                         schema=prepared.schema.to_json(), preprocessor=prepared.preprocessor,
                         target_encoder=prepared.target_encoder)
    home = tmp_path / "home"
    settings = Settings.load(overrides={"home": str(home), **store_overrides(request)},
                             environ={}, cwd=home)
    with Registry.open(settings) as registry:
        record = registry.register("price", run_id=None, bundle=bundle,
                                   weights=save(module.state_dict()), metrics={},
                                   actor="test", reason="regression optimize test")
        report = optimize_version(registry, record, data=frame, rounds=3, calls=3, batch=64,
                                  store=False)
        assert report["metric"] == "rmse"
        loaded = registry.load("price", 1)
        rmse = float(np.sqrt(np.mean((loaded.predict(frame) - frame["price"]) ** 2)))
        rows = _by_name(report)
        assert rows["torch"]["metric"]["value"] == pytest.approx(rmse, rel=1e-6)
        assert rows["onnx"]["drop_upper_bound"] < 1e-3 * rmse  # fp32 ONNX: the same answers
        with pytest.raises(UsageError, match="does not apply to a regression model"):
            optimize_version(registry, record, data=frame, metric="accuracy", store=False)
