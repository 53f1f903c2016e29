"""Edge packages: a model version as ONNX plus the JSON needed to use it without driftloop.

The folder holds ``model.onnx`` (fp32; inputs ``x`` float32 N×F and, for tables with
categories, ``x_cat`` int64 N×C; output ``logits``), ``model.int8.onnx`` with ``int8=True``
(ONNX Runtime dynamic quantisation of the MatMul/Gemm weights), ``preprocessing.json`` (the
fitted transform, see :func:`driftloop.data.prepare.apply_preprocessing`), ``schema.json``,
and ``manifest.json`` (task, classes, temperature, target encoding, the sha256 of each file).
Probabilities are ``softmax(logits / temperature)``. The package is written to a temporary
folder and renamed into place, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.runtimes import ONNX_OPSET, export_onnx_bytes

PACKAGE_FORMAT = 1


@dataclass(frozen=True)
class EdgePackage:
    """Where the package went and the size of each file."""

    path: Path
    files: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "files": self.files}


def export_edge_package(registry: Registry, name: str, version: int | None,
                        out: str | os.PathLike[str], *, int8: bool = False,
                        overwrite: bool = False) -> EdgePackage:
    """Export ``name`` v``version`` (latest when None) as an edge package folder ``out``."""
    target = Path(out)
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists; pass --overwrite or choose another folder.")
    record = registry.get(name, version)
    loaded = registry.load(name, record.version)
    bundle = loaded.bundle
    inputs = bundle.model_inputs
    onnx_bytes = export_onnx_bytes(loaded.module, bundle.input_kind,
                                   n_numeric=int(inputs.get("n_numeric", 0)),
                                   n_cat=len(inputs.get("cardinalities", [])),
                                   shape=inputs.get("shape"))
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (work / "model.onnx").write_bytes(onnx_bytes)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(work / "model.onnx", work / "model.int8.onnx",
                             weight_type=QuantType.QInt8)
        _write_json(work / "preprocessing.json", bundle.preprocessor)
        _write_json(work / "schema.json", bundle.schema)
        files = {p.name: p.stat().st_size for p in sorted(work.iterdir())}
        manifest = {
            "format": PACKAGE_FORMAT, "model": name, "version": record.version,
            "task": bundle.task, "input_kind": bundle.input_kind, "classes": bundle.classes,
            "temperature": loaded.temperature, "target_encoder": bundle.target_encoder,
            "model_inputs": inputs, "opset": ONNX_OPSET,
            "inputs": ["x", "x_cat"] if bundle.input_kind == "table" else ["x"],
            "output": "logits",
            "sha256": {n: hashlib.sha256((work / n).read_bytes()).hexdigest() for n in files},
        }
        _write_json(work / "manifest.json", manifest)
        files["manifest.json"] = (work / "manifest.json").stat().st_size
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return EdgePackage(target, files)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False), "utf-8")


__all__ = ["EdgePackage", "export_edge_package"]
