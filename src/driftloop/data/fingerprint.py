"""Content fingerprints of tables and arrays: a sha256 over a canonical encoding.

The encoding is chosen so that the same content gives the same hash however pandas or numpy
happen to store it:

- columns are visited in sorted-name order, so column order does not matter;
- each column is hashed with its name and a normalised type: ``numeric`` (every integer and
  float width, nullable or not, as float64 little-endian bytes; NaN and missing become one NaN,
  -0.0 becomes 0.0; integers beyond 2**53 lose precision), ``bool``, ``datetime`` (int64
  nanoseconds since the epoch in UTC, whatever the unit) or ``string`` (everything else, as
  UTF-8 of ``str(value)``, length-prefixed, with a distinct marker for missing values);
- the row count is hashed too; the index is not, and neither is where the data came from.

Only content counts: the same file read from a folder, from ``s3://`` or copied elsewhere is
the same dataset for lineage, data checks and the gates. Row order matters: shuffled rows are
different data for a time split and for lineage.

The encoding's version is hashed first (``driftloop-frame-v2``, ``driftloop-arrays-v2``).
Version 1 also hashed the source URI, so fingerprints recorded by a driftloop that wrote v1
never equal v2 ones: evidence stored under them is still found through its run, but a check
or evaluation made now does not pair with it (the gates then ask for ``--data``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pandas as pd

ValueType = Literal["numeric", "bool", "datetime", "string"]

_CHUNK = 1 << 20  # elements per float64 conversion, so large image arrays are not copied whole


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """Return the sha256 hex digest of ``frame``'s content (not of where it came from).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"a": np.array([1, 2, 3], dtype="int32"), "b": ["x", None, "z"]})
    >>> wide = frame.astype({"a": "int64"})[["b", "a"]]
    >>> fingerprint_frame(frame) == fingerprint_frame(wide)
    True
    >>> fingerprint_frame(frame) == fingerprint_frame(frame[::-1])
    False
    >>> fingerprint_frame(frame)[:16]
    '785cf254e83021f1'
    """
    digest = hashlib.sha256(b"driftloop-frame-v2\0")
    _update_int(digest, len(frame))
    names = [str(name) for name in frame.columns]
    for position in sorted(range(len(names)), key=lambda i: names[i]):
        column = frame.iloc[:, position]
        kind = value_type(column)
        _update_text(digest, names[position])
        _update_text(digest, kind)
        _ENCODERS[kind](digest, column)
    return digest.hexdigest()


def fingerprint_arrays(x: np.ndarray, y: np.ndarray) -> str:
    """Return the sha256 hex digest of arrays ``x`` and ``y`` (shapes and values).

    Numbers are hashed as float64, so float32 and float64 copies of the same values agree.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((4, 2, 3))
    >>> y = np.array([0, 1, 0, 1])
    >>> same = fingerprint_arrays(x, y) == fingerprint_arrays(x.copy(), y.astype("int8"))
    >>> changed = fingerprint_arrays(x, y[::-1])
    >>> same, changed == fingerprint_arrays(x, y)
    (True, False)
    """
    digest = hashlib.sha256(b"driftloop-arrays-v2\0")
    for name, values in (("x", np.asarray(x)), ("y", np.asarray(y))):
        _update_text(digest, name)
        _update_int(digest, values.ndim)
        for size in values.shape:
            _update_int(digest, size)
        if np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
            _update_text(digest, "numeric")
            _update_float_chunks(digest, values.reshape(-1))
        else:
            _update_text(digest, "string")
            _update_strings(digest, pd.Series(values.reshape(-1), dtype=object))
    return digest.hexdigest()


def value_type(column: pd.Series) -> ValueType:
    """Return the normalised type a column is hashed as.

    Examples
    --------
    >>> import pandas as pd
    >>> [value_type(pd.Series(v)) for v in ([1], [1.5], [True], ["a"], pd.to_datetime(["2024"]))]
    ['numeric', 'numeric', 'bool', 'string', 'datetime']
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _update_int(digest: hashlib._Hash, value: int) -> None:
    digest.update(int(value).to_bytes(8, "little", signed=True))


def _update_text(digest: hashlib._Hash, text: str) -> None:
    data = text.encode("utf-8")
    _update_int(digest, len(data))
    digest.update(data)


def _update_float_chunks(digest: hashlib._Hash, flat: np.ndarray) -> None:
    for start in range(0, len(flat), _CHUNK):
        _update_floats(digest, flat[start : start + _CHUNK].astype(np.float64))


def _update_floats(digest: hashlib._Hash, values: np.ndarray) -> None:
    # One NaN bit pattern, and -0.0 + 0.0 == +0.0, so equal values give equal bytes.
    canonical = np.where(np.isnan(values), np.nan, values + 0.0)
    digest.update(canonical.astype("<f8").tobytes())


def _update_numeric(digest: hashlib._Hash, column: pd.Series) -> None:
    _update_floats(digest, column.to_numpy(dtype=np.float64, na_value=np.nan))


def _update_bool(digest: hashlib._Hash, column: pd.Series) -> None:
    missing = column.isna().to_numpy()
    codes = np.where(missing, 2, column.fillna(False).to_numpy(dtype=np.uint8))
    digest.update(codes.astype(np.uint8).tobytes())


def _update_datetime(digest: hashlib._Hash, column: pd.Series) -> None:
    if getattr(column.dtype, "tz", None) is not None:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    nanoseconds = column.astype("datetime64[ns]").to_numpy().view(np.int64)
    digest.update(nanoseconds.astype("<i8").tobytes())


def _update_strings(digest: hashlib._Hash, column: pd.Series) -> None:
    missing = column.isna().to_numpy()
    values = column.to_numpy(dtype=object)
    encoded = [str(value).encode("utf-8") for value in values[~missing]]
    # Length -1 marks a missing cell; lengths make the concatenation unambiguous.
    lengths = np.full(len(values), -1, dtype="<i8")
    lengths[~missing] = [len(data) for data in encoded]
    digest.update(lengths.tobytes())
    digest.update(b"".join(encoded))


_ENCODERS = {
    "numeric": _update_numeric,
    "bool": _update_bool,
    "datetime": _update_datetime,
    "string": _update_strings,
}
