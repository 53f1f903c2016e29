"""Data stage: read → schema → split → preprocess → fingerprint, and :func:`prepare` for all."""

from driftloop.data.fingerprint import fingerprint_arrays, fingerprint_frame
from driftloop.data.prepare import PreparedData, SplitArrays, apply_preprocessing, prepare
from driftloop.data.preprocess import TablePreprocessor, TargetEncoder
from driftloop.data.read import ArraySource, TableSource, read_arrays, read_table
from driftloop.data.schema import ColumnKind, ColumnSpec, Schema, Task, infer_schema
from driftloop.data.split import SplitIndices, split_rows

__all__ = [
    "ArraySource",
    "ColumnKind",
    "ColumnSpec",
    "PreparedData",
    "Schema",
    "SplitArrays",
    "SplitIndices",
    "TablePreprocessor",
    "TableSource",
    "TargetEncoder",
    "Task",
    "apply_preprocessing",
    "fingerprint_arrays",
    "fingerprint_frame",
    "infer_schema",
    "prepare",
    "read_arrays",
    "read_table",
    "split_rows",
]
