"""Reading tables from a real S3 server (``moto_server``, see ``tests/s3_server.py``) through
s3fs, and the one message each misconfiguration gives, in Python and on the CLI (exit 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.data.read import read_table
from driftloop.errors import DataError
from s3_server import BUCKET, S3Server

pytestmark = pytest.mark.slow


def test_a_parquet_and_a_gzipped_csv_on_s3_read_like_local_files(
        s3_url: str, s3_server: S3Server, tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "label": ["a", "b", "a"]})
    prefix = s3_url.split(f"s3://{BUCKET}/", 1)[1]
    for name in ("t.parquet", "t.csv.gz"):
        local = tmp_path / name
        frame.to_parquet(local) if name.endswith(".parquet") else frame.to_csv(local, index=False)
        s3_server.client().upload_file(str(local), BUCKET, f"{prefix}/{name}")
        table = read_table(f"{s3_url}/{name}")
        assert table.uri == f"{s3_url}/{name}"
        pd.testing.assert_frame_equal(table.frame, read_table(local).frame)


def test_bad_s3_data_urls_give_one_message(s3_url: str) -> None:
    with pytest.raises(DataError, match=r"s3://.*/missing\.csv: file not found"):
        read_table(f"{s3_url}/missing.csv")
    with pytest.raises(DataError, match="unknown file type"):
        read_table(f"{s3_url}/notes.txt")


def test_cli_with_a_missing_bucket_exits_2_naming_it(s3_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRIFTLOOP_ARTIFACTS_URL", "s3://no-such-bucket-here/artifacts")
    code = main(["erase", "--subject-id", "42", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "bucket 'no-such-bucket-here' does not exist" in " ".join(err.split())
    assert "Traceback" not in err

    monkeypatch.delenv("DRIFTLOOP_ARTIFACTS_URL")
    code = main(["data", "check", f"{s3_url}/missing.csv", "--target", "label", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "missing.csv: file not found" in " ".join(err.split())
    assert "Traceback" not in err


def test_cli_data_check_reads_s3(s3_url: str, s3_server: S3Server, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5] * 20, "label": ["a", "b"] * 30})
    frame.to_csv(tmp_path / "d.csv", index=False)
    prefix = s3_url.split(f"s3://{BUCKET}/", 1)[1]
    s3_server.client().upload_file(str(tmp_path / "d.csv"), BUCKET, f"{prefix}/d.csv")
    assert main(["data", "check", "d.csv", "--target", "label", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["data", "check", f"{s3_url}/d.csv", "--target", "label", "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["dataset"]["source"] == f"{s3_url}/d.csv" != local["dataset"]["source"]
    assert remote["dataset"]["fingerprint"] == local["dataset"]["fingerprint"]
