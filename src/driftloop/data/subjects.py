"""Which data subject each row of a Parquet snapshot came from, kept beside the features.

A loop snapshot is training data: the subject id of a row must never become a feature, yet
``driftloop erase --subject-id`` must find that row again. So the subjects are not a column but
the Parquet key-value metadata ``driftloop.subjects`` of the file: a JSON object from subject
hash (the keyed hash the prediction log stores, :mod:`driftloop.data.hashing`) to the row
numbers of that subject's rows. Readers of the features (pandas, pyarrow, training) never see
it; the rows and their subjects live in one object, so rewriting a snapshot without a subject's
rows replaces both at once (:func:`drop_rows`).

Examples
--------
>>> import pyarrow as pa
>>> table = with_subjects(pa.table({"x": [1, 2, 3]}), ["h1", None, "h1"])
>>> table.column_names, subjects_of(table.schema, table.num_rows)
(['x'], ['h1', None, 'h1'])
>>> kept = drop_rows(table, [False, True, True])
>>> kept.column("x").to_pylist(), subjects_of(kept.schema, kept.num_rows)
([2, 3], [None, 'h1'])
>>> subjects_of(pa.table({"x": [1]}).schema, 1) is None
True
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

SUBJECTS_KEY = b"driftloop.subjects"


def with_subjects(table: pa.Table, subjects: Sequence[str | None]) -> pa.Table:
    """``table`` with ``subjects`` (one hash or None per row) in its schema metadata.

    Raises :class:`ValueError` when there is not one entry per row.
    """
    if len(subjects) != table.num_rows:
        raise ValueError(f"{len(subjects)} subject(s) for {table.num_rows} row(s); give one "
                         "per row (None for a row of no subject).")
    rows: dict[str, list[int]] = {}
    for i, subject in enumerate(subjects):
        if subject is not None:
            rows.setdefault(subject, []).append(i)
    metadata = dict(table.schema.metadata or {})
    metadata[SUBJECTS_KEY] = json.dumps(rows, separators=(",", ":")).encode("ascii")
    return table.replace_schema_metadata(metadata)


def subjects_of(schema: pa.Schema, n_rows: int) -> list[str | None] | None:
    """The subject of each of the ``n_rows`` rows (None: no subject), or None when the
    schema records none.

    Raises :class:`ValueError` when the metadata is not what :func:`with_subjects` wrote for
    that many rows.
    """
    raw = (schema.metadata or {}).get(SUBJECTS_KEY)
    if raw is None:
        return None
    needed, rows = _decoded(raw)
    if needed > n_rows:
        raise ValueError(f"its '{SUBJECTS_KEY.decode()}' metadata names row {needed - 1} of "
                         f"{n_rows} row(s)")
    out: list[str | None] = [None] * n_rows
    for subject, indices in rows.items():
        for i in indices:
            out[i] = subject
    return out


def drop_rows(table: pa.Table, keep: Sequence[bool]) -> pa.Table:
    """The rows of ``table`` where ``keep`` is true, schema metadata kept and the recorded
    subjects (if any) realigned to the rows that are left.

    Raises :class:`ValueError` as :func:`subjects_of` does.
    """
    kept = table.filter(pa.array(list(keep), pa.bool_()))
    subjects = subjects_of(table.schema, table.num_rows)
    if subjects is None:
        return kept
    return with_subjects(kept, [s for s, k in zip(subjects, keep, strict=True) if k])


def _decoded(raw: bytes) -> tuple[int, dict[str, list[int]]]:
    """(rows needed, subject → rows) of the metadata value; ValueError when malformed."""
    try:
        rows = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"its '{SUBJECTS_KEY.decode()}' metadata is not JSON ({exc})") from None
    if not isinstance(rows, dict) or not all(
            isinstance(v, list) and all(type(i) is int and i >= 0 for i in v)
            for v in rows.values()):
        raise ValueError(f"its '{SUBJECTS_KEY.decode()}' metadata is not an object of row "
                         "numbers")
    n_rows = 1 + max((i for v in rows.values() for i in v), default=-1)
    return n_rows, rows


__all__ = ["SUBJECTS_KEY", "drop_rows", "subjects_of", "with_subjects"]
