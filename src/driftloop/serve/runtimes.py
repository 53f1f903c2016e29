"""Runtimes that turn preprocessed arrays into raw model outputs: eager torch, int8, ONNX.

Every runtime exposes ``name`` and ``logits(x, x_cat) -> np.ndarray`` (the module's raw output,
float32); :func:`finish` turns raw outputs into what the server answers (temperature-calibrated
probabilities for classification, the standardised value for regression), the same way
:meth:`~driftloop.models.loaded.LoadedModel.predict_arrays` does.

- ``torch``: the module as trained, eager, under ``torch.inference_mode``;
- ``int8``: ``torch.ao.quantization.quantize_dynamic`` on the ``nn.Linear`` layers (weights
  int8, activations quantised on the fly); outputs differ slightly from fp32. Only while torch
  still ships that API (:func:`torch_int8_available`): it is deprecated upstream in favour of
  torchao (pytorch/pytorch#153892), and torchao 0.18 was measured and not adopted — on this
  CPU its ``Int8DynamicActivationInt8WeightConfig`` ran a wide MLP 2.97× and a CNN 2.44× the
  fp32 latency at batch 1 (no faster at batch 1024), and its import added 1.5 s
  (benchmarks/RESULTS.md, "Runtime choice"). ``driftloop models optimize`` measures whether
  int8 pays for a given model on a given machine;
- ``onnx``: the module exported to ONNX (opset 17, dynamic batch axis) and run by ONNX Runtime;
  fp32 outputs match torch to 1e-4;
- ``onnx_int8``: that ONNX model with its MatMul/Gemm weights quantised to int8 by ONNX
  Runtime's dynamic quantisation (as the edge package's ``model.int8.onnx``).

Examples
--------
>>> import torch, numpy as np
>>> from driftloop.models.architectures import TabularMLP
>>> _ = torch.manual_seed(0)
>>> module = TabularMLP(3, [4], 2).eval()
>>> x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
>>> x_cat = np.ones((5, 1), np.int64)
>>> eager = TorchRuntime(module, "table")
>>> onnx = OnnxRuntime(module, "table", n_numeric=3, n_cat=1)
>>> bool(np.abs(eager.logits(x, x_cat) - onnx.logits(x, x_cat)).max() < 1e-4)
True
>>> Int8Runtime(module, "table").logits(x, x_cat).shape
(5, 2)
>>> build_runtime("onnx_int8", module, "table", {"n_numeric": 3, "cardinalities": [2]}).name
'onnx_int8'
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from driftloop.errors import UsageError

RUNTIMES = ("torch", "int8", "onnx", "onnx_int8")
ONNX_OPSET = 17


class Runtime(Protocol):
    name: str

    def logits(self, x: np.ndarray, x_cat: np.ndarray | None) -> np.ndarray: ...


class TorchRuntime:
    """The eager torch module."""

    name = "torch"

    def __init__(self, module: nn.Module, input_kind: str) -> None:
        self.module = module.eval()
        self.table = input_kind == "table"

    def logits(self, x: np.ndarray, x_cat: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            inputs = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))]
            if self.table:
                inputs.append(torch.from_numpy(np.ascontiguousarray(x_cat, dtype=np.int64)))
            return self.module(*inputs).float().numpy()


class Int8Runtime(TorchRuntime):
    """``nn.Linear`` layers dynamically quantised to int8 (a copy; the original is kept)."""

    name = "int8"

    def __init__(self, module: nn.Module, input_kind: str) -> None:
        super().__init__(quantize_int8(module), input_kind)


def torch_int8_available() -> bool:
    """Whether this torch still has ``torch.ao.quantization.quantize_dynamic`` (deprecated
    upstream, to be removed; the ``int8`` runtime needs it, ``onnx_int8`` does not).

    >>> isinstance(torch_int8_available(), bool)
    True
    """
    quantization = getattr(getattr(torch, "ao", None), "quantization", None)
    return callable(getattr(quantization, "quantize_dynamic", None))


def quantize_int8(module: nn.Module) -> nn.Module:
    """A dynamically quantised (int8 weights) copy of ``module``'s linear layers."""
    if not torch_int8_available():
        raise UsageError(f"torch {torch.__version__} no longer has torch.ao.quantization's "
                         "dynamic quantisation, which the 'int8' runtime uses; use the "
                         "'onnx_int8' runtime instead (serve.runtime or --runtime).")
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao (and the quantised tensor
        # constructors theirs); the API still works as documented
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(module).eval(), {nn.Linear}, dtype=torch.qint8)


def export_onnx_bytes(module: nn.Module, input_kind: str, *, n_numeric: int = 0,
                      n_cat: int = 0, shape: list[int] | None = None) -> bytes:
    """The module as an ONNX model with inputs ``x`` (and ``x_cat`` for tables) and output
    ``logits``, batch axis dynamic."""
    module = copy.deepcopy(module).eval()
    if input_kind == "table":
        example: tuple[torch.Tensor, ...] = (torch.zeros(2, n_numeric),
                                             torch.zeros(2, n_cat, dtype=torch.int64))
        names = ["x", "x_cat"]
    else:
        example = (torch.zeros(2, *(shape or [])),)
        names = ["x"]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of the torch.export one, which
        # needs onnxscript; this one has no extra dependency and exports these modules exactly
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            module, example, buffer, dynamo=False, opset_version=ONNX_OPSET,
            input_names=names, output_names=["logits"],
            dynamic_axes={**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}},
        )
    return buffer.getvalue()


def quantize_onnx_int8(model_bytes: bytes) -> bytes:
    """``model_bytes`` with MatMul/Gemm weights quantised to int8 (ONNX Runtime's dynamic
    quantisation, activations quantised on the fly); it reads and writes files, so it works in
    a temporary folder."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # its root-logger advice to pre-process applies to static quantisation
    try:
        with tempfile.TemporaryDirectory(prefix="driftloop-int8-") as work:
            source, target = Path(work) / "model.onnx", Path(work) / "model.int8.onnx"
            source.write_bytes(model_bytes)
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
            return target.read_bytes()
    finally:
        root.removeFilter(advice)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


class OnnxRuntime:
    """The module exported to ONNX and run by ONNX Runtime (or given ONNX bytes)."""

    name = "onnx"

    def __init__(self, module: nn.Module | None, input_kind: str, *, n_numeric: int = 0,
                 n_cat: int = 0, shape: list[int] | None = None,
                 model_bytes: bytes | None = None, threads: int = 0,
                 int8: bool = False) -> None:
        import onnxruntime as ort

        if model_bytes is None:
            if module is None:
                raise UsageError("OnnxRuntime needs a module or ONNX model bytes.")
            model_bytes = export_onnx_bytes(module, input_kind, n_numeric=n_numeric,
                                            n_cat=n_cat, shape=shape)
            if int8:
                model_bytes = quantize_onnx_int8(model_bytes)
        if int8:
            self.name = "onnx_int8"
        self.model_bytes = model_bytes  # what it runs: its size is the runtime's size on disk
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model_bytes, options,
                                            providers=["CPUExecutionProvider"])
        # an input the graph does not use (x_cat of a table without categories) is dropped
        self.inputs = {i.name for i in self.session.get_inputs()}

    def logits(self, x: np.ndarray, x_cat: np.ndarray | None) -> np.ndarray:
        feed: dict[str, Any] = {"x": np.ascontiguousarray(x, dtype=np.float32)}
        if "x_cat" in self.inputs:
            feed["x_cat"] = np.ascontiguousarray(x_cat, dtype=np.int64)
        return np.asarray(self.session.run(["logits"], feed)[0], dtype=np.float32)


def build_runtime(kind: str, module: nn.Module, input_kind: str,
                  model_inputs: dict[str, Any]) -> Runtime:
    """The runtime ``kind`` (one of :data:`RUNTIMES`) for a loaded module."""
    if kind == "torch":
        return TorchRuntime(module, input_kind)
    if kind == "int8":
        return Int8Runtime(module, input_kind)
    if kind in ("onnx", "onnx_int8"):
        return OnnxRuntime(module, input_kind,
                           n_numeric=int(model_inputs.get("n_numeric", 0)),
                           n_cat=len(model_inputs.get("cardinalities", [])),
                           shape=model_inputs.get("shape"), int8=kind == "onnx_int8")
    raise UsageError(f"runtime '{kind}' is not one of {', '.join(RUNTIMES)}.")


def finish(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Calibrated probabilities (N×K, classification) or standardised outputs (N, regression).

    >>> finish("binary", np.array([[0.0, 0.0]], np.float32)).tolist()
    [[0.5, 0.5]]
    """
    if task == "regression":
        return logits.reshape(len(logits), -1)[:, 0].astype(np.float64)
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


__all__ = [
    "RUNTIMES", "Int8Runtime", "OnnxRuntime", "Runtime", "TorchRuntime", "build_runtime",
    "export_onnx_bytes", "finish", "quantize_int8", "quantize_onnx_int8", "torch_int8_available",
]
