"""``driftloop features materialize`` as a user meets it: JSON and readable output, a second
run writes nothing, bad input exits 2 with one message."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from driftloop.cli import main
from driftloop.store import Store

FEATURES = {"entities": [{"name": "customer", "keys": ["customer_id"]}],
            "views": [{"name": "stats", "entity": "customer", "source": "stats.csv",
                       "event_time": "ts", "created_time": "cr", "ttl": "30d",
                       "features": ["spend"]}]}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _project(workdir, monkeypatch, store_url) -> None:
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", store_url)
    (workdir / "driftloop.yaml").write_text(yaml.safe_dump({"features": FEATURES}))
    pd.DataFrame({"customer_id": ["a", "a", "b"],
                  "ts": ["2024-01-01", "2024-01-03", "2024-01-02"],
                  "cr": ["2024-01-01", "2024-01-03", "2024-01-02"],
                  "spend": [1.0, 3.0, 2.0]}).to_csv(workdir / "stats.csv", index=False)


def test_materialize_reports_what_it_wrote_and_a_second_run_writes_nothing(
        workdir, monkeypatch, capsys, store_url):
    _project(workdir, monkeypatch, store_url)
    code, out, err = _run(capsys, "features", "materialize", "--json")
    assert code == 2 and "Traceback" not in err + out
    assert "'stats' is not registered" in " ".join(err.split())
    code, out, err = _run(capsys, "features", "apply")
    assert code == 0, err
    code, out, err = _run(capsys, "features", "materialize", "--json")
    assert code == 0, err
    (first,) = json.loads(out)
    assert (first["view"], first["version"], first["rows_read"], first["rows_written"],
            first["target"], first["since"]) == ("stats", 1, 3, 2, "sql", None)
    assert first["until"].startswith("2024-01-03")
    code, out, err = _run(capsys, "features", "materialize", "--view", "stats")
    assert code == 0, err
    assert "stats" in out and "2024-01-03" in out
    with Store.open(store_url) as store:
        runs = store.materializations("stats")
    assert [(r.rows_read, r.rows_written) for r in runs] == [(3, 2), (1, 0)]


def test_bad_flags_exit_2_with_one_message(workdir, monkeypatch, capsys, store_url):
    _project(workdir, monkeypatch, store_url)
    for argv, expected in [(["--view", "nope"], "no feature view 'nope' is declared"),
                           (["--since", "yesterday"], "--since 'yesterday' is not an ISO")]:
        code, out, err = _run(capsys, "features", "materialize", *argv)
        assert code == 2, (argv, err)
        assert expected in " ".join(err.split()) and "Traceback" not in err + out
