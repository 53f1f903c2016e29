"""Edge packages: a model version as ONNX plus the JSON needed to use it without driftloop.

The folder holds ``model.onnx`` (fp32; inputs ``x`` float32 N×F and, for tables with
categories, ``x_cat`` int64 N×C; output ``logits``), ``model.int8.onnx`` with ``int8=True``
(ONNX Runtime dynamic quantisation of the MatMul/Gemm weights), ``preprocessing.json`` (the
fitted transform, see :func:`driftloop.data.prepare.apply_preprocessing`), ``schema.json``,
and ``manifest.json`` (task, classes, temperature, target encoding, the sha256 of each file).
Probabilities are ``softmax(logits / temperature)``. The package is written to a temporary
folder and renamed into place, so a failed export leaves nothing half-written.

:func:`export_edge_project` (``--format edge``) wraps that folder in a pip-installable project
that runs with onnxruntime and numpy only: the code of :mod:`driftloop.serve.edge` plus
verbatim copies of the server's preprocessing, validation and hashing modules (``_COPIED``;
the validation copy's one ``driftloop.errors`` import is rewritten to the package's own
``_errors``), ``edge.json`` (the columns logged hashed and the package's PII key, derived per
model by :func:`driftloop.data.hashing.edge_key`: the store's own key never leaves the store)
and ``SHA256SUMS.json`` (every file, checked when the package loads).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.data.hashing import edge_key
from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.registry.evidence import logged_pii_columns
from driftloop.serve.runtimes import ONNX_OPSET, export_onnx_bytes
from driftloop.store.secrets import pii_key

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
        _publish(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return EdgePackage(target, files)


def _publish(work: Path, target: Path) -> None:
    """Put the finished folder ``work`` in place of ``target`` (a rename, so never half-written)."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(work, target)


_SRC = Path(__file__).resolve().parents[1]  # src/driftloop
# package file <- (source file under src/driftloop, exact line replacements); a test checks
# each copy equals its source but for these lines
_COPIED: dict[str, tuple[str, dict[str, str]]] = {
    "_features.py": ("serve/features.py", {}),
    "_validation.py": ("serve/validation.py", {
        "from driftloop.errors import DriftloopError": "from ._errors import DriftloopError"}),
    "_hashing.py": ("data/hashing.py", {}),
    "runtime.py": ("serve/edge/runtime.py", {}),
    "log.py": ("serve/edge/log.py", {}),
    "cli.py": ("serve/edge/cli.py", {}),
}
_GENERATED = {
    "shared.py": '''"""The server's modules this package carries, copied verbatim."""

from __future__ import annotations

from ._features import ColumnTransform
from ._hashing import hash_value
from ._validation import RequestInvalid, RequestValidator, subject_ids

__all__ = ["ColumnTransform", "RequestInvalid", "RequestValidator", "hash_value", "subject_ids"]
''',
    "_errors.py": '''"""The one driftloop exception the copied validation module needs."""


class DriftloopError(Exception):
    """Base of the package's own errors (driftloop's is not installed here)."""

    exit_code = 2
''',
    "__main__.py": '''import sys

from .cli import main

sys.exit(main())
''',
    "__init__.py": '''"""{model} v{version}, exported by driftloop (runs on onnxruntime + numpy).

>>> import {package}
>>> {package}.predict([{{...}}])  # one dict of feature values per row  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .runtime import EdgeModel, PackageInvalid, RequestInvalid, verify

ROOT = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=4)
def _load(log_dir: str | None) -> EdgeModel:
    verify(ROOT)
    return EdgeModel(ROOT / "model", log_dir=log_dir)


def load(log_dir: str | None = None) -> EdgeModel:
    """The package's model (checked against SHA256SUMS.json once), logging to ``log_dir``
    (default ``$DRIFTLOOP_EDGE_LOG_DIR``; neither: no log)."""
    return _load(log_dir or os.environ.get("DRIFTLOOP_EDGE_LOG_DIR"))


def predict(rows: list[dict[str, Any]], ids: list[Any] | None = None,
            log_dir: str | None = None) -> list[dict[str, Any]]:
    """One answer per row (request_id, prediction, probabilities), as the server gives."""
    return load(log_dir).predict(rows, ids)


__all__ = ["EdgeModel", "PackageInvalid", "RequestInvalid", "load", "predict", "verify"]
''',
}
_PYPROJECT = '''[build-system]
requires = ["flit_core>=3.9,<5"]
build-backend = "flit_core.buildapi"

[project]
name = "{package}"
version = "{version}"
description = "{model} v{version}, exported by driftloop (onnxruntime + numpy only)"
requires-python = ">=3.10"
dependencies = ["numpy>=1.24", "onnxruntime>=1.16"]

[project.scripts]
{script} = "{package}.cli:main"
'''


def package_name(model: str, version: int) -> str:
    """The import name of ``model`` v``version``'s edge package.

    >>> package_name("Churn-EU.2", 3)
    'driftloop_edge_churn_eu_2_v3'
    """
    return f"driftloop_edge_{re.sub(r'[^a-z0-9]+', '_', model.lower()).strip('_')}_v{version}"


def copied_source(package_file: str) -> str:
    """The text ``package_file`` has in an exported package (a copy of driftloop's source)."""
    source, replace = _COPIED[package_file]
    text = (_SRC / source).read_text("utf-8")
    for old, new in replace.items():
        if text.count(old) != 1:
            raise AssertionError(f"{source} no longer holds {old!r} exactly once")
        text = text.replace(old, new)
    return text


def export_edge_project(registry: Registry, name: str, version: int | None,
                        out: str | os.PathLike[str], *, overwrite: bool = False) -> EdgePackage:
    """Export ``name`` v``version`` as a pip-installable project folder ``out`` (see above)."""
    target = Path(out)
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists; pass --overwrite or choose another folder.")
    record = registry.get(name, version)
    bundle = registry.bundle(record)
    if bundle.input_kind != "table" or bundle.schema is None:
        raise UsageError(f"{name} v{record.version} takes {bundle.input_kind} inputs; the edge "
                         "package serves table models only (use --format onnx).")
    package = package_name(name, record.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        code = work / package
        export_edge_package(registry, name, record.version, code / "model")
        pii, _notes = logged_pii_columns(registry.store, registry.artifacts, record)
        key = pii_key(registry.settings.serve.pii_hash_key, registry.artifacts)
        _write_json(code / "model" / "edge.json", {
            "format": PACKAGE_FORMAT, "model": name, "version": record.version,
            "pii": sorted(pii), "pii_key": edge_key(key, name),
            "max_instances": registry.settings.serve.max_instances})
        fill = {"model": name, "version": record.version, "package": package,
                "script": package.replace("_", "-")}
        for file in _COPIED:
            (code / file).write_text(copied_source(file), "utf-8")
        for file, text in _GENERATED.items():
            (code / file).write_text(text.format(**fill) if file == "__init__.py" else text,
                                     "utf-8")
        (work / "pyproject.toml").write_text(_PYPROJECT.format(**fill), "utf-8")
        sums = {p.relative_to(code).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(code.rglob("*")) if p.is_file()}
        _write_json(code / "SHA256SUMS.json", sums)
        files = {p.relative_to(work).as_posix(): p.stat().st_size
                 for p in sorted(work.rglob("*")) if p.is_file()}
        _publish(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return EdgePackage(target, files)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False), "utf-8")


__all__ = ["EdgePackage", "copied_source", "export_edge_package", "export_edge_project",
           "package_name"]
