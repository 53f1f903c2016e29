"""The subjects a Parquet snapshot records for its rows (metadata, never a column)."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop.data.subjects import SUBJECTS_KEY, drop_rows, subjects_of, with_subjects


def _roundtrip(table: pa.Table) -> pa.Table:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


def test_subjects_survive_a_file_and_never_become_a_column():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]})
    table = with_subjects(pa.Table.from_pandas(frame, preserve_index=False), ["h1", None, "h2"])
    read = _roundtrip(table)
    assert subjects_of(read.schema, read.num_rows) == ["h1", None, "h2"]
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    assert list(pd.read_parquet(io.BytesIO(buffer.getvalue())).columns) == ["x", "label"]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.booleans()), max_size=40))
def test_dropping_rows_keeps_each_remaining_rows_subject(rows):
    subjects = [s for s, _ in rows]
    keep = [k for _, k in rows]
    table = with_subjects(pa.table({"i": list(range(len(rows)))}), subjects)
    kept = _roundtrip(drop_rows(table, keep))
    assert kept.column("i").to_pylist() == [i for i, k in enumerate(keep) if k]
    assert subjects_of(kept.schema, kept.num_rows) == [s for s, k in rows if k]


@pytest.mark.parametrize("raw, words", [
    (b"{not json", "not JSON"), (b"[1]", "object of row numbers"),
    (b'{"h": [-1]}', "object of row numbers"), (b'{"h": [true]}', "object of row numbers"),
    (b'{"h": [5]}', "names row 5 of 2 row(s)"),
])
def test_recorded_subjects_that_do_not_fit_are_refused(raw, words):
    schema = pa.schema([("x", pa.int64())], metadata={SUBJECTS_KEY: raw})
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        subjects_of(schema, 2)


def test_one_subject_per_row_is_required():
    with pytest.raises(ValueError, match="2 subject"):
        with_subjects(pa.table({"x": [1]}), ["a", "b"])
