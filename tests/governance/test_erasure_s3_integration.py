"""Two hosts (two homes) sharing one store and one artifact store on a real S3 server
(``moto_server``, see ``tests/s3_server.py``): they get one erasure salt, and a loop snapshot
one of them assembled is read and erased by the other."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.governance.erasure import (
    SALT_OBJECT,
    erase_subject,
    erasure_salt,
    find_erasures,
    subject_hash,
)
from driftloop.loop.dataset import assemble
from driftloop.registry import Registry
from driftloop.store import ArtifactStore, Store
from driftloop.store.clock import utcnow
from s3_server import S3Server

pytestmark = pytest.mark.slow


def _host(tmp_path: Path, name: str, store_url: str, s3_url: str) -> Settings:
    home = tmp_path / name
    return Settings.load(overrides={"home": str(home), "store_url": store_url,
                                    "artifacts_url": s3_url}, environ={}, cwd=tmp_path)


def _log_labelled(store: Store, n: int) -> None:
    store.add_predictions([
        {"request_id": f"r{i}", "model_name": "credit", "version": 1, "at": utcnow(),
         "features": {"customer_id": i % 40, "x": float(i)}, "output": {}} for i in range(n)])
    store.add_feedback([(f"r{i}", "yes" if i % 2 else "no") for i in range(n)])


def test_two_homes_sharing_s3_get_one_salt_and_one_subject_hash(
        s3_url: str, tmp_path: Path, store_url: str) -> None:
    a, b = (_host(tmp_path, h, store_url, s3_url) for h in ("host-a", "host-b"))
    assert erasure_salt(a) == erasure_salt(b)
    assert subject_hash(a, "c-17") == subject_hash(b, "c-17")
    assert not (Path(a.home) / "erasure.salt").exists()
    assert ArtifactStore(s3_url).named_exists(SALT_OBJECT)
    erase_subject(a, "c-17")  # erased on one host, confirmed on the other
    assert len(find_erasures(b, "c-17")) == 1


def test_a_snapshot_assembled_on_one_host_is_read_and_erased_on_another(
        s3_url: str, s3_server: S3Server, tmp_path: Path, store_url: str) -> None:
    a, b = (_host(tmp_path, h, store_url, s3_url) for h in ("host-a", "host-b"))
    with Registry.open(a) as registry:
        _log_labelled(registry.store, 200)
        data = assemble(registry.store, "credit", target="label", loop=a.loop,
                        artifacts=registry.artifacts, tag="loop1")
    assert data.train_uri.startswith(s3_url) and not (Path(a.home) / "loop").exists()
    train = pd.read_parquet(io.BytesIO(ArtifactStore(s3_url).read_named(data.train_name)))
    assert len(train) == data.train_rows and (train["customer_id"] == 7).sum() > 0
    holdout_rows = pd.read_parquet(io.BytesIO(
        ArtifactStore(s3_url).read_named(data.holdout_name)))["customer_id"].eq(7).sum()
    ArtifactStore(s3_url).write_named("loop/erase-staging/dead/credit-loop0-train.parquet",
                                      b"left by an erasure that died in its last step")

    result = erase_subject(b, 7)  # host B never saw the snapshot on its own disk

    assert result.snapshots[data.train_uri] == (train["customer_id"] == 7).sum()
    assert result.snapshots[data.holdout_uri] == holdout_rows
    after = pd.read_parquet(io.BytesIO(ArtifactStore(s3_url).read_named(data.train_name)))
    assert len(after) == len(train) - result.snapshots[data.train_uri]
    assert not after["customer_id"].eq(7).any()
    prefix = s3_url.split("/", 3)[3]
    keys = s3_server.keys(prefix)
    assert not [k for k in keys if "erase-staging" in k or ".tmp-" in k], keys
    with Store.open(store_url) as store:
        assert not [r for r in store.list_predictions() if r.features["customer_id"] == 7]
