"""The jobs table: one unfinished job per model, kept by the database even when two writers
race; a finished job no longer changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from driftloop.errors import ConflictError
from driftloop.store import Store


def test_one_unfinished_job_per_model_and_a_finished_job_stays_finished(store_url):
    with Store.open(store_url) as store:
        first = store.create_job("train", "loans", {"upload": "a" * 64}, actor="dashboard")
        with pytest.raises(ConflictError, match="already has a train job under way"):
            store.create_job("check", "loans", {}, actor="dashboard")
        other = store.create_job("check", "churn", {}, actor="dashboard")  # another model: fine
        store.update_job(first.id, status="cancelling")
        # a worker's late progress write does not undo the cancel request
        assert store.update_job(first.id, status="running").status == "cancelling"
        done = store.update_job(first.id, status="cancelled", error="cancelled")
        assert not done.active
        assert store.update_job(first.id, status="succeeded", result={"x": 1}).status == (
            "cancelled")
        again = store.create_job("train", "loans", {}, actor="dashboard")
        assert store.latest_job("loans").id == again.id
        assert [j.id for j in store.list_jobs()] == [again.id, other.id, first.id]


def test_two_writers_starting_a_job_at_once_start_one(store_url):
    with Store.open(store_url) as store:
        def start(_: int) -> str:
            try:
                return str(store.create_job("train", "race", {}, actor="dashboard").id)
            except ConflictError:
                return "refused"

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(start, range(4)))
        assert answers.count("refused") == 3
