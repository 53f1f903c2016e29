"""The workbench's actions over real HTTP: once a key exists they need an admin key (audited as
it); a training job can be cancelled from the page's endpoint and its worker stops; a job that
fails says why in one line, as the CLI would."""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.config import Settings
from driftloop.loop.demo import TARGET, credit_frame
from driftloop.registry import Registry
from driftloop.serve.auth import create_key
from driftloop.serve.server import BackgroundServer
from driftloop.ui.server import create_ui_app

pytestmark = pytest.mark.slow  # worker processes


@pytest.fixture
def bench(tmp_path):
    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "ui": {"train_epochs": 200},
                                        "serve": {"key_cache_s": 0.0}}, environ={}, cwd=tmp_path)
    registry = Registry.open(settings)
    body = credit_frame(600, seed=3).to_csv(index=False).encode()
    with BackgroundServer(create_ui_app(registry)) as server:
        yield server.url, registry, body
    registry.store.close()


def _wait(registry, job_id, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while (job := registry.store.get_job(job_id)).active:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_with_keys_actions_need_an_admin_key_and_are_audited_as_it(bench):
    url, registry, body = bench
    admin = create_key(registry.store, registry.audit, "wb-admin", "admin", actor="test")
    read = create_key(registry.store, registry.audit, "wb-read", "read", actor="test")
    upload = f"{url}/ui/api/uploads?filename=credit.csv"
    assert httpx.post(upload, content=body).status_code == 401
    refused = httpx.post(upload, content=body, headers={"Authorization": f"Bearer {read.secret}"})
    assert refused.status_code == 403 and "role 'admin'" in refused.json()["error"]["message"]
    done = httpx.post(upload, content=body, headers={"Authorization": f"Bearer {admin.secret}"})
    assert done.status_code == 200, done.text
    entry = registry.audit.entries(action="upload", limit=1)[0]
    assert entry.actor == f"api_key:{admin.record.prefix}"
    sha = done.json()["upload"]
    job = httpx.post(f"{url}/ui/api/jobs", headers={"Authorization": f"Bearer {read.secret}"},
                     json={"kind": "check", "model": "m", "upload": sha, "target": TARGET})
    assert job.status_code == 403 and registry.store.latest_job("m") is None


def test_a_training_is_cancelled_and_a_second_job_waits_for_the_first(bench):
    url, registry, body = bench
    sha = httpx.post(f"{url}/ui/api/uploads?filename=c.csv", content=body).json()["upload"]
    start = {"kind": "train", "model": "slow", "upload": sha, "target": TARGET}
    job = httpx.post(f"{url}/ui/api/jobs", json=start).json()
    second = httpx.post(f"{url}/ui/api/jobs", json={**start, "kind": "check"})
    assert second.status_code == 409 and "already has a train job" in second.text
    deadline = time.monotonic() + 60
    while registry.store.get_job(job["id"]).progress.get("stage") != "training":
        assert time.monotonic() < deadline, registry.store.get_job(job["id"])
        time.sleep(0.2)
    assert httpx.post(f"{url}/ui/api/jobs/{job['id']}/cancel").status_code == 200
    ended = _wait(registry, job["id"])
    assert ended.status == "cancelled"
    pid = ended.pid
    time.sleep(1.0)
    with pytest.raises(ProcessLookupError):  # the worker (and its ranks' group) stopped
        import os
        os.kill(pid, 0)
    assert [e.action for e in registry.audit.entries(limit=10)].count("job_cancel") == 1


def test_a_failing_job_says_why_in_one_line(bench):
    url, registry, _ = bench
    tiny = b"a,b,y\n" + b"".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n".encode()
                                  for i in range(8))
    sha = httpx.post(f"{url}/ui/api/uploads?filename=t.csv", content=tiny).json()["upload"]
    job = httpx.post(f"{url}/ui/api/jobs", json={"kind": "train", "model": "tiny",
                                                 "upload": sha, "target": "y"}).json()
    ended = _wait(registry, job["id"])
    assert ended.status == "failed"
    assert "Traceback" not in ended.error and "\n" not in ended.error.strip(), ended.error
