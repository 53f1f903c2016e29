"""Load an edge package's model folder and predict, with onnxruntime and numpy only.

The folder (``model/`` inside the package) holds what
:func:`driftloop.serve.export.export_edge_package` writes (``model.onnx``,
``preprocessing.json``, ``schema.json``, ``manifest.json``) and ``edge.json`` (the columns
logged hashed and the package's PII key, see :func:`driftloop.data.hashing.edge_key`).
``SHA256SUMS.json`` beside the folder lists the sha256 of every file of the package; loading
checks each one and refuses a package with a changed, missing or extra file.

Rows are checked by the server's own :class:`RequestValidator` (same messages), preprocessed
by the server's own :class:`ColumnTransform`, run through ``model.onnx`` and turned into
``softmax(logits / temperature)`` as the server's ``finish`` does, so answers equal the
server's to float rounding.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .log import EdgeLog
from .shared import ColumnTransform, RequestInvalid, RequestValidator, subject_ids

SUMS = "SHA256SUMS.json"


class PackageInvalid(Exception):
    """The package's files do not match ``SHA256SUMS.json`` (changed, missing or extra)."""


def verify(root: str | os.PathLike[str]) -> None:
    """Check every file under ``root`` against ``root/SHA256SUMS.json``."""
    base = Path(root)
    try:
        sums = json.loads((base / SUMS).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageInvalid(
            f"{base / SUMS} cannot be read ({exc}); reinstall the package.") from None
    present = {p.relative_to(base).as_posix() for p in base.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.name != SUMS}
    for name in sorted(present | set(sums)):
        if name not in sums:
            raise PackageInvalid(f"{name} is not part of the package; remove it or reinstall.")
        if name not in present:
            raise PackageInvalid(f"{name} is missing from the package; reinstall it.")
        if hashlib.sha256((base / name).read_bytes()).hexdigest() != sums[name]:
            raise PackageInvalid(f"{name} changed since export (sha256 differs); reinstall.")


def row_ids(request_id: str, n: int) -> list[str]:
    """The id of each row, as the server names them (``driftloop.serve.prediction_log``).

    >>> row_ids("ab", 1), row_ids("ab", 2)
    (['ab'], ['ab-0', 'ab-1'])
    """
    return [request_id] if n == 1 else [f"{request_id}-{i}" for i in range(n)]


def finish(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities (N×K) or standardised outputs (N), as ``driftloop.serve.runtimes.finish``.

    >>> finish("binary", np.array([[0.0, 0.0]], np.float32)).tolist()
    [[0.5, 0.5]]
    """
    if task == "regression":
        return logits.reshape(len(logits), -1)[:, 0].astype(np.float64)
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class EdgeModel:
    """One exported model version, ready to predict.

    Parameters
    ----------
    folder
        The package's ``model`` folder.
    log_dir
        Where the prediction log goes (None: predictions are not logged).
    max_log_bytes, max_log_files
        The log's bounds (:class:`EdgeLog`).
    """

    def __init__(self, folder: str | os.PathLike[str], *,
                 log_dir: str | os.PathLike[str] | None = None,
                 max_log_bytes: int = 10_000_000, max_log_files: int = 20) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest = _json(self.folder / "manifest.json")
        self.edge = _json(self.folder / "edge.json")
        preprocessor = _json(self.folder / "preprocessing.json")
        self.validator = RequestValidator(_json(self.folder / "schema.json"), preprocessor,
                                          max_instances=int(self.edge["max_instances"]))
        self.columns = ColumnTransform(preprocessor)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one row at a time on small devices
        self.session = ort.InferenceSession(str(self.folder / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.name, self.version = str(self.manifest["model"]), int(self.manifest["version"])
        self.task = str(self.manifest["task"])
        self.log = None if log_dir is None else EdgeLog(
            log_dir, model=self.name, version=self.version, key=str(self.edge["pii_key"]),
            pii=frozenset(self.edge["pii"]), max_bytes=max_log_bytes, max_files=max_log_files)

    @property
    def features(self) -> list[str]:
        """The feature names the model expects, in the schema's order."""
        return list(self.validator.names)

    def answer(self, rows: Sequence[Mapping[str, Any]],
               ids: Sequence[Any] | None = None) -> tuple[list[str], dict[str, list[Any]]]:
        """The row ids and the server's answer (``predictions``, ``probabilities``) of
        ``rows``; ``ids``: each row's subject id (logged hashed, never fed to the model).
        Bad rows raise :class:`RequestInvalid` with the server's message."""
        instances = [dict(r) for r in rows]
        columns = self.validator.columns_from_instances(instances)
        subjects = subject_ids(None if ids is None else list(ids), instances)
        x, x_cat, _unknown = self.columns.transform(columns)
        feed = {"x": x, "x_cat": x_cat}
        logits = self.session.run(["logits"], {n: feed[n] for n in self.inputs})[0]
        outputs = finish(self.task, logits, float(self.manifest["temperature"]))
        answer = self._answer(outputs)
        rids = row_ids(uuid.uuid4().hex, len(instances))
        if self.log is not None:
            self.log.append(rids, columns, answer, subjects)
        return rids, answer

    def predict(self, rows: Sequence[Mapping[str, Any]],
                ids: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """One dict per row: ``request_id``, ``prediction`` and, for classification,
        ``probabilities`` (class label -> probability, in the model's class order)."""
        rids, answer = self.answer(rows, ids)
        classes = [str(c) for c in self.manifest.get("classes") or []]
        out = []
        for i, rid in enumerate(rids):
            item: dict[str, Any] = {"request_id": rid, "prediction": answer["predictions"][i]}
            if "probabilities" in answer:
                item["probabilities"] = dict(zip(classes, answer["probabilities"][i],
                                                 strict=True))
            out.append(item)
        return out

    def _answer(self, outputs: np.ndarray) -> dict[str, list[Any]]:
        encoder = self.manifest["target_encoder"]
        if self.task == "regression":
            values = outputs.astype(np.float64) * float(encoder["std"]) + float(encoder["mean"])
            return {"predictions": values.tolist()}
        labels = np.array(encoder["classes"])[outputs.argmax(axis=1)]
        return {"predictions": labels.tolist(), "probabilities": outputs.tolist()}


def _json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


__all__ = ["EdgeModel", "PackageInvalid", "RequestInvalid", "finish", "row_ids", "verify"]
