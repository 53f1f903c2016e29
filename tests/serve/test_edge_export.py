"""``--format edge``: the package installs into a fresh venv without torch or driftloop and
answers as a real loopback server does, to 1e-5, with the server's messages for bad rows."""

from __future__ import annotations

import ast
import csv
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from driftloop.cli import main
from driftloop.serve.export import _COPIED, copied_source, export_edge_project, package_name

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package(served_model: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("edge") / f"{MODEL}-v1-edge"
    export_edge_project(served_model.registry, MODEL, 1, out)
    return out


@pytest.fixture(scope="module")
def edge_python(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site packages) with the package pip-installed from its folder
    (numpy and onnxruntime come from the index or pip's cache)."""
    home = tmp_path_factory.mktemp("edge-venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(home)
    python = home / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", str(package)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_fresh_venv_without_torch_answers_as_the_server(served_model: Served, package: Path,
                                                        edge_python: Path, tmp_path) -> None:
    pkg = package_name(MODEL, 1)
    probe = _run(edge_python, "-c", "import torch", cwd=tmp_path)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    probe = _run(edge_python, "-c", "import driftloop", cwd=tmp_path)
    assert probe.returncode != 0 and "No module named 'driftloop'" in probe.stderr
    rows = instances(served_model.frame.iloc[:40])
    rows_csv = _write_csv(tmp_path / "rows.csv", rows)
    done = _run(edge_python, "-m", pkg, "predict", str(rows_csv), "--out", "preds.csv",
                "--log-dir", "log", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "preds.csv", newline="", encoding="utf-8") as f:
        edge = list(csv.DictReader(f))
    srv = start_server(served_model)
    try:
        r = httpx.post(srv.url + f"/v1/models/{MODEL}/predict", json={"instances": rows})
        assert r.status_code == 200
        served = r.json()
        bad = [dict(rows[0]), dict(rows[1], **{"mean radius": "big"})]
        refused = httpx.post(srv.url + f"/v1/models/{MODEL}/predict", json={"instances": bad})
    finally:
        srv.stop()
    classes = [str(c) for c in served_model.registry.bundle(
        served_model.registry.get(MODEL, 1)).classes]
    edge_probs = np.array([[float(e[f"p_{c}"]) for c in classes] for e in edge])
    assert np.abs(edge_probs - np.array(served["probabilities"])).max() < 1e-5
    assert [str(p) for p in served["predictions"]] == [e["prediction"] for e in edge]
    assert len({e["request_id"] for e in edge}) == 40
    # the device's own log holds every row, with the ids the answers gave
    logged = [json.loads(line) for p in sorted((tmp_path / "log").glob("edge-*.jsonl"))
              for line in p.read_text("utf-8").splitlines()]
    assert [r["request_id"] for r in logged if r["kind"] == "row"] == [
        e["request_id"] for e in edge]
    # a bad row: the server's own message, exit 2, no traceback
    assert refused.status_code == 422
    bad_csv = _write_csv(tmp_path / "bad.csv", bad)
    done = _run(edge_python, "-m", pkg, "predict", str(bad_csv), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {refused.json()['error']['message']}"
    # the Python API: one dict per row, same numbers
    script = tmp_path / "api.py"
    script.write_text(f"import json, {pkg}\nrows = json.load(open('rows.json'))\n"
                      f"print(json.dumps({pkg}.predict(rows)))\n", "utf-8")
    (tmp_path / "rows.json").write_text(json.dumps(rows[:5]), "utf-8")
    api = _run(edge_python, str(script), cwd=tmp_path)
    assert api.returncode == 0, api.stderr
    answers = json.loads(api.stdout)
    np.testing.assert_allclose([[a["probabilities"][c] for c in classes] for a in answers],
                               served["probabilities"][:5], atol=1e-5)


def test_a_changed_file_is_refused(package: Path, edge_python: Path, tmp_path) -> None:
    site = _run(edge_python, "-c", f"import {package_name(MODEL, 1)} as p; print(p.ROOT)",
                cwd=tmp_path)
    root = Path(site.stdout.strip())
    schema = root / "model" / "schema.json"
    original = schema.read_bytes()
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text("x\n1\n", "utf-8")
    try:
        schema.write_bytes(original.replace(b'"numeric"', b'"categorical"', 1))
        done = _run(edge_python, "-m", package_name(MODEL, 1), "predict", str(rows_csv),
                    cwd=tmp_path)
    finally:
        schema.write_bytes(original)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: model/schema.json changed since export (sha256 " \
                                  "differs); reinstall."


def test_copies_are_the_servers_modules_and_import_no_driftloop(package: Path) -> None:
    code = package / package_name(MODEL, 1)
    source = Path(__file__).resolve().parents[2] / "src" / "driftloop"
    for file, (origin, replaced) in _COPIED.items():
        text = (code / file).read_text("utf-8")
        assert text == copied_source(file)
        original = (source / origin).read_text("utf-8").splitlines()
        changed = [(a, b) for a, b in zip(original, text.splitlines(), strict=True) if a != b]
        assert changed == list(replaced.items())
    allowed = {"numpy", "onnxruntime", "__future__"} | set(sys.stdlib_module_names)
    for path in code.glob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                # frame() of the validation copy imports pandas lazily: never called here
                if path.name == "_validation.py" and name in ("pandas", "driftloop.data.values"):
                    continue
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_cli_exports_edge_format(served_model: Served, tmp_path, monkeypatch) -> None:
    for key, value in _settings_env(served_model).items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "pkg"
    assert main(["models", "export", MODEL, "v1", "--format", "edge", "--out", str(out),
                 "--json"]) == 0
    sums = json.loads((out / package_name(MODEL, 1) / "SHA256SUMS.json").read_text("utf-8"))
    assert {"model/model.onnx", "model/edge.json", "_features.py", "runtime.py"} <= set(sums)
    edge = json.loads((out / package_name(MODEL, 1) / "model" / "edge.json").read_text("utf-8"))
    assert edge["pii"] == ["contact"] and len(edge["pii_key"]) == 64
    assert main(["models", "export", MODEL, "1", "--format", "edge", "--out", str(out)]) == 2
    assert main(["models", "export", MODEL, "1", "--format", "edge", "--int8",
                 "--out", str(tmp_path / "other")]) == 2
    assert not (tmp_path / "other").exists()


def _settings_env(served: Served) -> dict[str, str]:
    s = served.settings
    env = {"DRIFTLOOP_HOME": str(s.home)}
    if s.store_url:
        env["DRIFTLOOP_STORE_URL"] = s.store_url
    return env
