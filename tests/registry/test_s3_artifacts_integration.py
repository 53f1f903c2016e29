"""A registry whose artifacts are on a real S3 server (``moto_server``, see
``tests/s3_server.py``): a version registered by one process loads, verified, in another, and
the same data read from a folder or from ``s3://`` is one dataset for the gates. (A corrupted
object is caught on read: tests/store/test_artifacts_s3_integration.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.data.fingerprint import fingerprint_frame
from driftloop.data.read import read_table
from driftloop.registry import Registry
from quick_model import register_quick
from s3_server import BUCKET, S3Server

pytestmark = pytest.mark.slow


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n),
                         "label": np.where(x + 0.3 * rng.normal(size=n) > 0, "yes", "no")})


def _settings(home: Path, store_url: str, artifacts_url: str) -> Settings:
    return Settings.load(overrides={"home": str(home), "store_url": store_url,
                                    "artifacts_url": artifacts_url}, environ={}, cwd=home.parent)


def _upload(s3_server: S3Server, url: str, path: Path) -> None:
    s3_server.client().upload_file(str(path), BUCKET, url.split(f"s3://{BUCKET}/", 1)[1])


_LOAD = textwrap.dedent("""
    import json
    from driftloop.config import Settings
    from driftloop.registry import Registry
    with Registry.open(Settings.load()) as registry:
        model = registry.load("credit", 1)
        print(json.dumps({"sha": registry.get("credit", 1).weights_sha256,
                          "url": registry.artifacts.url, "classes": list(model.bundle.classes)}))
""")


def test_a_version_registered_to_s3_loads_verified_in_a_fresh_process(
        s3_url: str, s3_server: S3Server, tmp_path: Path, store_url: str) -> None:
    settings = _settings(tmp_path / "host-a", store_url, s3_url)
    with Registry.open(settings) as registry:
        version = register_quick(registry, _frame(), "credit", with_profile=False, steps=5)
    prefix = s3_url.split(f"s3://{BUCKET}/", 1)[1]
    assert f"{prefix}/{version.weights_sha256[:2]}/{version.weights_sha256}" in s3_server.keys(
        prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update(DRIFTLOOP_HOME=str(tmp_path / "host-b"), DRIFTLOOP_STORE_URL=store_url,
               DRIFTLOOP_ARTIFACTS_URL=s3_url, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded == {"sha": version.weights_sha256, "url": s3_url, "classes": ["no", "yes"]}
    assert not (tmp_path / "host-b" / "artifacts").exists()  # nothing came from a local disk



def test_the_same_csv_in_a_folder_and_on_s3_is_one_dataset_for_the_gates(
        s3_url: str, s3_server: S3Server, tmp_path: Path, store_url: str) -> None:
    frame = _frame(seed=1)
    local = tmp_path / "holdout.csv"
    frame.to_csv(local, index=False)
    remote = f"{s3_url}/copies/holdout.csv"
    _upload(s3_server, remote, local)
    here, there = read_table(local), read_table(remote)
    assert there.uri == remote and here.uri != there.uri
    assert fingerprint_frame(here.frame) == fingerprint_frame(there.frame)

    settings = _settings(tmp_path / "home", store_url, str(tmp_path / "artifacts"))
    with Registry.open(settings) as registry:
        register_quick(registry, _frame(), "credit", with_profile=False, steps=5)
        register_quick(registry, _frame(), "credit", with_profile=False, steps=30)
        registry.promote("credit", 1, to="prod", force=True, reason="test: first holder")
        registry.evaluate("credit:1", str(local))  # the holder on the local file
        registry.evaluate("credit:2", remote)  # the candidate on its copy on S3
        holder = {r.name: r for r in registry.gate("credit", 2, to="prod").results}["holder"]
        dataset = registry.store.get_dataset(fingerprint_frame(here.frame))
    # paired on the same rows: the gate measured a difference instead of asking for --data
    assert holder.measured is not None and "paired rows" in holder.detail, holder.detail
    assert dataset.source_uri == here.uri  # one dataset: its first source is kept
