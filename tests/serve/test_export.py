"""Edge packages and runtimes: ONNX matches torch to 1e-4; int8 is smaller and close."""

from __future__ import annotations

import json

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from driftloop.data.prepare import apply_preprocessing
from driftloop.errors import UsageError
from driftloop.serve.export import export_edge_package
from driftloop.serve.runtimes import TorchRuntime, build_runtime, finish

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow


def test_edge_package_onnx_matches_torch_to_1e4(served_model: Served, tmp_path):
    registry = served_model.registry
    package = export_edge_package(registry, MODEL, 1, tmp_path / "edge", int8=True)
    assert set(package.files) == {"model.onnx", "model.int8.onnx", "preprocessing.json",
                                  "schema.json", "manifest.json"}
    manifest = json.loads((package.path / "manifest.json").read_text())
    preprocessor = json.loads((package.path / "preprocessing.json").read_text())
    x, x_cat = apply_preprocessing(preprocessor, served_model.frame)  # from the package alone
    session = ort.InferenceSession(str(package.path / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    feed = {"x": x, "x_cat": x_cat}
    logits = session.run(["logits"], {i.name: feed[i.name] for i in session.get_inputs()})[0]
    model = registry.load(MODEL, 1)
    torch_logits = TorchRuntime(model.module, "table").logits(x, x_cat)
    assert np.abs(logits - torch_logits).max() < 1e-4
    probs = finish(manifest["task"], logits, manifest["temperature"])
    np.testing.assert_allclose(probs, model.predict_raw(served_model.frame), atol=1e-4)
    # int8: smaller on disk, same decisions on nearly every row
    int8 = ort.InferenceSession(str(package.path / "model.int8.onnx"),
                                providers=["CPUExecutionProvider"])
    q = int8.run(["logits"], {i.name: feed[i.name] for i in int8.get_inputs()})[0]
    assert package.files["model.int8.onnx"] < package.files["model.onnx"]
    assert (q.argmax(1) == torch_logits.argmax(1)).mean() > 0.95
    with pytest.raises(UsageError, match="already exists"):
        export_edge_package(registry, MODEL, 1, tmp_path / "edge")


def test_int8_and_onnx_runtimes(served_model: Served):
    model = served_model.registry.load(MODEL, 1)
    x, x_cat = apply_preprocessing(model.bundle.preprocessor, served_model.frame)
    eager = TorchRuntime(model.module, "table").logits(x, x_cat)
    onnx = build_runtime("onnx", model.module, "table", model.bundle.model_inputs)
    int8 = build_runtime("int8", model.module, "table", model.bundle.model_inputs)
    assert np.abs(onnx.logits(x, x_cat) - eager).max() < 1e-4
    assert (int8.logits(x, x_cat).argmax(1) == eager.argmax(1)).mean() > 0.95
    with pytest.raises(UsageError, match="not one of"):
        build_runtime("tensorrt", model.module, "table", model.bundle.model_inputs)


def test_server_with_the_onnx_runtime_answers_like_torch(served_model: Served):
    rows = served_model.frame.iloc[:20]
    srv = start_server(served_model, runtime="onnx")
    try:
        r = httpx.post(srv.url + f"/v1/models/{MODEL}/predict",
                       json={"instances": instances(rows)})
        assert r.status_code == 200
        expected = served_model.registry.load(MODEL, 1).predict_raw(rows)
        np.testing.assert_allclose(r.json()["probabilities"], expected, atol=1e-4)
    finally:
        srv.stop()
