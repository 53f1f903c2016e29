"""Turn raw cells into numbers, booleans and category keys, the same way at fit and at serve.

Schema inference and preprocessing both read cells through these functions, so a value that
the schema accepted is read identically when the model is trained and when it is served.
Row numbers in messages are the frame's index labels; :func:`~driftloop.data.read.read_table`
gives 0-based data-row positions (the header row is not counted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftloop.errors import DataError

TRUE_WORDS = frozenset({"true", "yes"})
FALSE_WORDS = frozenset({"false", "no"})
BOOLEAN_PAIRS = (frozenset({"true", "false"}), frozenset({"yes", "no"}))
_WORD_VALUES = {**dict.fromkeys(TRUE_WORDS | {"1"}, 1.0), **dict.fromkeys(FALSE_WORDS | {"0"}, 0.0)}


def is_text(column: pd.Series) -> bool:
    """Return whether ``column`` holds text or arbitrary objects rather than typed values.

    Examples
    --------
    >>> import pandas as pd
    >>> is_text(pd.Series(["a"])), is_text(pd.Series([1.0])), is_text(pd.Series([True]))
    (True, False, False)
    """
    dtype = column.dtype
    return bool(
        pd.api.types.is_object_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def missing_mask(column: pd.Series) -> np.ndarray:
    """Return a boolean array: True where the cell is missing (NA, NaN, None or blank text).

    Examples
    --------
    >>> import pandas as pd
    >>> missing_mask(pd.Series(["a", "", None, "  "], dtype=object)).tolist()
    [False, True, True, True]
    """
    missing = column.isna().to_numpy(dtype=bool)
    if isinstance(column.dtype, pd.StringDtype):
        missing = missing | (column.str.strip() == "").to_numpy(dtype=bool, na_value=False)
    elif is_text(column):
        cells = column.to_numpy(dtype=object)
        blank = np.fromiter(
            (isinstance(cell, str) and not cell.strip() for cell in cells), bool, len(cells)
        )
        missing = missing | blank
    return missing


def parse_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column as float64; return the values (NaN where missing) and a mask of bad cells.

    A bad cell is present but cannot be read as a finite number (text, or infinity).

    Examples
    --------
    >>> import pandas as pd
    >>> values, bad = parse_numbers(pd.Series(["1", " 2.5", "", "n/a", "inf"], dtype=object))
    >>> values.tolist(), bad.tolist()
    ([1.0, 2.5, nan, nan, inf], [False, False, False, True, True])
    """
    if pd.api.types.is_bool_dtype(column.dtype) and not is_text(column):
        column = column.astype("float64")
    if not is_text(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isinf(values)
    missing = missing_mask(column)
    cells = column.to_numpy(dtype=object)
    if pd.api.types.is_object_dtype(column.dtype):
        # Booleans are not numbers here, although pd.to_numeric would read True as 1.
        is_bool = column.map(type).isin([bool, np.bool_]).to_numpy(dtype=bool)
        missing_or_bool = missing | is_bool
    else:
        missing_or_bool = missing
    cells = np.where(missing_or_bool, None, cells)
    values = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return values, ~missing & ~np.isfinite(values)


def parse_booleans(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column as 0.0/1.0; return the values (NaN where missing) and a mask of bad cells.

    Accepted: booleans, the numbers 0 and 1, and (any case) true/false, yes/no.

    Examples
    --------
    >>> import pandas as pd
    >>> values, bad = parse_booleans(pd.Series(["Yes", "no", None, "maybe"], dtype=object))
    >>> values.tolist(), bad.tolist()
    ([1.0, 0.0, nan, nan], [False, False, False, True])
    """
    missing = missing_mask(column)
    if not is_text(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~missing & ~np.isin(values, (0.0, 1.0))
        return np.where(bad, np.nan, values), bad
    words = _as_object(column).astype(str).str.strip().str.lower()
    values = words.map(_WORD_VALUES).to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.where(missing, np.nan, values)
    return values, ~missing & np.isnan(values)


def looks_boolean(present: pd.Series) -> bool:
    """Return whether non-missing values are exactly the two words of true/false or yes/no.

    Examples
    --------
    >>> import pandas as pd
    >>> looks_boolean(pd.Series(["Yes", "no", "yes"])), looks_boolean(pd.Series(["a", "b"]))
    (True, False)
    """
    if pd.api.types.is_bool_dtype(present.dtype) and not is_text(present):
        return True
    if not is_text(present):
        return False
    words = set(_as_object(present).astype(str).str.strip().str.lower().unique())
    return words in BOOLEAN_PAIRS


def category_keys(column: pd.Series) -> np.ndarray:
    """Return each cell as its category key (a string), or None where missing.

    Integral numbers are written without a decimal point, so ``3``, ``3.0`` and ``np.int8(3)``
    share the key ``"3"``; other values use ``str``.

    Examples
    --------
    >>> import pandas as pd
    >>> category_keys(pd.Series([3.0, None, 2.5])).tolist()
    ['3', None, '2.5']
    >>> category_keys(pd.Series(["b", True, 7], dtype=object)).tolist()
    ['b', 'True', '7']
    """
    missing = missing_mask(column)
    if is_text(column):
        cells = _as_object(column).to_numpy(dtype=object)
        if pd.api.types.infer_dtype(cells, skipna=True) == "string":
            keys = cells.copy()
        else:
            keys = np.array([_key(cell) for cell in cells], dtype=object)
    elif pd.api.types.is_bool_dtype(column.dtype):
        keys = np.where(column.to_numpy(dtype=bool, na_value=False), "True", "False")
        keys = keys.astype(object)
    else:
        keys = _number_keys(column.to_numpy(dtype=np.float64, na_value=np.nan))
    keys[missing] = None
    return keys


def to_float(column: pd.Series, kind: str, *, name: str, source: str = "data") -> np.ndarray:
    """Read a numeric or boolean column as float64 (NaN where missing), or raise DataError.

    Examples
    --------
    >>> import pandas as pd
    >>> to_float(pd.Series(["1", "2"]), "numeric", name="age").tolist()
    [1.0, 2.0]
    >>> to_float(pd.Series(["1", "old"]), "numeric", name="age")
    Traceback (most recent call last):
    ...
    driftloop.errors.DataError: data: column 'age', row 1: value 'old' cannot be parsed as a finite number (1 such cell). Fix or blank those cells.
    """  # noqa: E501
    if kind == "boolean":
        values, bad = parse_booleans(column)
        what = "a boolean (true/false, yes/no, 1/0)"
    else:
        values, bad = parse_numbers(column)
        what = "a finite number"
    if bad.any():
        raise bad_cell_error(column, bad, what, name=name, source=source)
    return values


def bad_cell_error(
    column: pd.Series, bad: np.ndarray, what: str, *, name: str, source: str
) -> DataError:
    """Build the DataError for cells of ``column`` that cannot be read as ``what``."""
    first = int(np.flatnonzero(bad)[0])
    count = int(bad.sum())
    return DataError(
        f"{source}: column {name!r}, row {column.index[first]}: value "
        f"{show(column.iloc[first])} cannot be parsed as {what} "
        f"({count} such cell{'s' if count > 1 else ''}). Fix or blank those cells."
    )


def show(value: object) -> str:
    """Return ``repr`` of a cell as a person would write it (``1``, not ``np.int64(1)``).

    Examples
    --------
    >>> import numpy as np
    >>> show(np.int64(1)), show("a")
    ('1', "'a'")
    """
    return repr(value.item() if isinstance(value, np.generic) else value)


def _number_keys(values: np.ndarray) -> np.ndarray:
    keys = np.empty(len(values), dtype=object)
    whole = np.isfinite(values) & (values == np.trunc(values))
    exact = whole & (np.abs(values) < 2**53)
    keys[exact] = values[exact].astype(np.int64).astype(str)
    # numpy writes floats as Python's str does (shortest round trip), so keys agree with _key.
    keys[~whole] = values[~whole].astype(str)
    keys[whole & ~exact] = [_key(value) for value in values[whole & ~exact]]
    return keys


def _as_object(column: pd.Series) -> pd.Series:
    # The .str accessor needs text or object values; categoricals may hold numbers.
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object)
    return column


def _key(cell: object) -> str:
    if isinstance(cell, (bool, np.bool_)):
        return str(bool(cell))
    if isinstance(cell, (int, np.integer)):
        return str(int(cell))
    if isinstance(cell, (float, np.floating)) and float(cell).is_integer():
        return str(int(cell))
    return str(cell)
