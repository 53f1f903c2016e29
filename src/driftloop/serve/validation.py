"""Check a request's features against the model's schema, column by column, never per cell.

Both request shapes become columns first: ``{"instances": [{feature: value}, ...]}`` (v1) and
the KServe V2 ``{"inputs": [{"name", "shape", "datatype", "data"}]}`` (already columnar). Then
each column is checked once with set-of-types and numpy operations:

- ``numeric``: JSON numbers or null (missing, imputed as in training); NaN or infinite refused;
- ``boolean``: true/false, 0/1, "true"/"false"/"yes"/"no" (any case) or null;
- ``categorical``: text, numbers or null; a category never seen in training is mapped to the
  unknown bucket (code 0) and counted, not refused.

A v1 request may also name the data subject of each instance, ``"ids": [...]`` beside
``"instances"`` (:func:`subject_ids`): never a feature, only logged as a keyed hash.

Apart from :meth:`RequestValidator.frame` (pandas, imported there), this module imports only
numpy, the standard library and :mod:`driftloop.errors`: an edge package
(:mod:`driftloop.serve.edge`) carries a copy of it, the one import line rewritten to the
package's own ``DriftloopError``, so edge devices refuse bad rows with the server's messages.

Every refusal is a :class:`RequestInvalid` with an HTTP status (400 malformed, 413 too large,
422 against the schema), the fields at fault and what was expected.

Examples
--------
>>> schema = {"features": [{"name": "age", "kind": "numeric"},
...                        {"name": "city", "kind": "categorical"}]}
>>> v = RequestValidator(schema, {"categorical": [{"name": "city", "categories": ["Oslo"]}]})
>>> frame, unknown = v.frame(v.columns_from_instances([{"age": 40, "city": "Rome"}]))
>>> frame["age"].tolist(), unknown
([40.0], {'city': 1})
>>> try:
...     v.columns_from_instances([{"age": "old", "city": "Oslo"}])
... except RequestInvalid as exc:
...     print(exc.status, exc.fields, exc)
422 ['age'] instance 0: feature 'age' must be a number (or null), got str 'old'.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.errors import DriftloopError

if TYPE_CHECKING:
    import pandas as pd

_BOOL_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}
_EXPECTED = {
    "numeric": "a number (or null)",
    "boolean": "a boolean (true/false, yes/no, 1/0, or null)",
    "categorical": "text or a number (or null)",
}


class RequestInvalid(DriftloopError):
    """A request the schema refuses: HTTP ``status``, machine ``code`` and the ``fields``."""

    exit_code = 2

    def __init__(self, message: str, *, status: int = 422, code: str = "invalid_input",
                 fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = list(fields)

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self), "fields": self.fields}}


class RequestValidator:
    """Validate requests for one model version.

    Parameters
    ----------
    schema
        The bundle's schema JSON (``features`` with ``name`` and ``kind``).
    preprocessor
        The bundle's preprocessor JSON; its categories tell unknown categories apart.
    max_instances
        Most instances one request may hold (413 past it).
    """

    def __init__(self, schema: Mapping[str, Any], preprocessor: Mapping[str, Any] | None = None,
                 *, max_instances: int = 1000) -> None:
        self.kinds: dict[str, str] = {f["name"]: f["kind"] for f in schema["features"]}
        self.names = list(self.kinds)
        self._name_set = frozenset(self.names)
        self._getter = operator.itemgetter(*self.names)
        self.categories: dict[str, frozenset[str]] = {
            c["name"]: frozenset(c["categories"])
            for c in (preprocessor or {}).get("categorical", [])
        }
        self.max_instances = max_instances
        # past this a value standardised at training's scale overflows float32 (the model's
        # input): refused per request, so it cannot fail the other requests of its batch
        self.bounds: dict[str, float] = {
            c["name"]: 0.5 * _FLOAT32_MAX * max(float(c["std"]), 1e-12)
            for c in (preprocessor or {}).get("numeric", []) if "std" in c
        }

    def _check_count(self, n: int) -> None:
        if n == 0:
            raise RequestInvalid("the request holds no instances; send at least one.",
                                 status=422, code="empty", fields=["instances"])
        if n > self.max_instances:
            raise RequestInvalid(
                f"the request holds {n} instances, more than the limit of {self.max_instances}; "
                "split it into smaller requests.", status=413, code="too_many_instances",
                fields=["instances"])

    def columns_from_instances(self, instances: Any) -> dict[str, list[Any]]:
        """Columns of a v1 ``instances`` list; every instance must hold exactly the features."""
        if not isinstance(instances, list):
            raise RequestInvalid(
                f"'instances' must be a list of objects, got {_type(instances)}.",
                status=422, code="bad_shape", fields=["instances"])
        self._check_count(len(instances))
        names = self._name_set
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict):
                raise RequestInvalid(
                    f"instance {i} must be an object of feature values, got {_type(inst)}.",
                    status=422, code="bad_shape", fields=["instances"])
            if inst.keys() != names:
                self._key_error(i, inst.keys())
        # rows -> columns in C (itemgetter, zip) rather than one Python loop per feature
        rows = map(self._getter, instances)
        if len(self.names) == 1:
            rows = ((value,) for value in rows)
        columns = dict(zip(self.names, map(list, zip(*rows, strict=True)), strict=True))
        self._check_columns(columns, lambda j, name: f"instance {j}")
        return columns

    def columns_from_v2(self, inputs: Any) -> dict[str, list[Any]]:
        """Columns of a KServe V2 ``inputs`` list: one tensor of shape [N] per feature."""
        if not isinstance(inputs, list) or not all(isinstance(t, dict) for t in inputs):
            raise RequestInvalid("'inputs' must be a list of tensors (objects with name, shape, "
                                 "datatype and data).", code="bad_shape", fields=["inputs"])
        by_name: dict[str, Any] = {}
        for t in inputs:
            name = t.get("name")
            if not isinstance(name, str):
                raise RequestInvalid("every input tensor needs a 'name' (a feature name).",
                                     code="bad_shape", fields=["inputs"])
            by_name[name] = t
        if by_name.keys() != self._name_set:
            self._key_error(None, by_name.keys())
        sizes = set()
        columns: dict[str, list[Any]] = {}
        for name in self.names:
            data = by_name[name].get("data")
            if not isinstance(data, list):
                raise RequestInvalid(f"input '{name}': 'data' must be a list of values.",
                                     code="bad_shape", fields=[name])
            shape = by_name[name].get("shape")
            if shape is not None and shape not in ([len(data)], [len(data), 1]):
                raise RequestInvalid(
                    f"input '{name}': shape {shape!r} does not match its {len(data)} values; "
                    f"expected [{len(data)}].", code="bad_shape", fields=[name])
            sizes.add(len(data))
            columns[name] = data
        if len(sizes) > 1:
            raise RequestInvalid(
                f"input tensors differ in length ({sorted(sizes)}); every feature needs one "
                "value per instance.", code="bad_shape", fields=self.names)
        self._check_count(sizes.pop() if sizes else 0)
        self._check_columns(columns, lambda j, n: f"input '{n}' element {j}")
        return columns

    def frame(self, columns: Mapping[str, list[Any]]) -> tuple[pd.DataFrame, dict[str, int]]:
        """A DataFrame the preprocessor accepts, and unknown-category counts per feature."""
        # imported here: the rest of this module is numpy-only, so an edge package carries a
        # copy of it (with no pandas) for the same checks and messages as the server's
        import pandas as pd

        from driftloop.data.values import category_keys

        data: dict[str, Any] = {}
        unknown: dict[str, int] = {}
        for name in self.names:
            values, kind = columns[name], self.kinds[name]
            if kind == "numeric":
                data[name] = np.array([np.nan if v is None else v for v in values], np.float64)
            elif kind == "boolean":
                data[name] = pd.Series([_bool_value(v) for v in values], dtype=object)
            else:
                column = pd.Series(values, dtype=object)
                data[name] = column
                known = self.categories.get(name)
                if known is not None:
                    keys = category_keys(column)
                    count = sum(1 for k in keys if k is not None and k not in known)
                    if count:
                        unknown[name] = count
        return pd.DataFrame(data), unknown

    def _key_error(self, index: int | None, keys: Any) -> None:
        missing = [n for n in self.names if n not in keys]
        extra = sorted(str(k) for k in keys if k not in self._name_set)
        where = "" if index is None else f"instance {index}: "
        parts = []
        if missing:
            parts.append(f"missing feature(s) {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"unknown feature(s) {', '.join(map(repr, extra))}")
        raise RequestInvalid(
            f"{where}{'; '.join(parts)}. The model expects exactly: {', '.join(self.names)}.",
            code="missing_feature" if missing else "extra_feature", fields=missing + extra)

    def _check_columns(self, columns: Mapping[str, list[Any]], where: Any) -> None:
        """Check every column's value types; ``where(j, name)`` names element ``j``.

        One ``set(map(type, ...))`` per column and one C-level ``sum`` over its numbers (a NaN,
        an infinity or an int past the float range makes the sum non-finite); the element at
        fault is looked for only when a column fails."""
        for name, values in columns.items():
            kind = self.kinds[name]
            types = set(map(type, values))
            allowed = _ALLOWED[kind]
            if not types <= allowed:
                j = next(j for j, v in enumerate(values) if type(v) not in allowed)
                self._bad(name, kind, values[j], where(j, name))
            if kind == "boolean":
                self._check_booleans(name, values, types, where)
            elif types & _NUMBERS and not _sum_is_finite(values, types):
                j = next((j for j, v in enumerate(values)
                          if type(v) in _NUMBERS and not _is_finite(v)), None)
                if j is not None:  # None: only the sum overflowed; every value is finite
                    raise RequestInvalid(
                        f"{where(j, name)}: feature '{name}' is {_show(values[j])}, which is not "
                        "allowed; send a finite number, or null for a missing value.",
                        code="not_finite", fields=[name])
            if types & _NUMBERS and name in self.bounds:
                self._check_range(name, values, where)

    def _check_range(self, name: str, values: list[Any], where: Any) -> None:
        bound = self.bounds[name]
        j = next((j for j, v in enumerate(values)
                  if type(v) in _NUMBERS and not -bound <= v <= bound), None)
        if j is not None:
            raise RequestInvalid(
                f"{where(j, name)}: feature '{name}' is {_show(values[j])}, too large for the "
                f"model's input (at most {bound:.3g} in size for this feature); send a value "
                "on the scale it was trained on.", code="out_of_range", fields=[name])

    def _check_booleans(self, name: str, values: list[Any], types: set[type],
                        where: Any) -> None:
        if str in types:
            j = next((j for j, v in enumerate(values)
                      if isinstance(v, str) and v.strip().lower() not in _BOOL_WORDS), None)
            if j is not None:
                self._bad(name, "boolean", values[j], where(j, name))
        if types & _NUMBERS:
            j = next((j for j, v in enumerate(values)
                      if type(v) in _NUMBERS and v not in (0, 1)), None)
            if j is not None:
                self._bad(name, "boolean", values[j], where(j, name))

    def _bad(self, name: str, kind: str, value: Any, where: str) -> None:
        raise RequestInvalid(
            f"{where}: feature '{name}' must be {_EXPECTED[kind]}, got {_type(value)} "
            f"{_show(value)}.", code="wrong_type", fields=[name])


MAX_ID_CHARS = 128


def subject_ids(ids: Any, instances: Any) -> list[str | None] | None:
    """The subject id text of each instance from a request's ``ids`` (None: none sent).

    ``ids`` is absent (None) or a list of one entry per instance, each a string of 1 to
    ``MAX_ID_CHARS`` characters (not blank), an integer (its decimal text), or null (this
    instance names no subject). Booleans and floats are refused: ``42.0`` or ``true`` as an
    id is more likely a mistake than an id, and a float's text is not stable. When
    ``instances`` is not a list, its own error comes first: None is returned.

    Examples
    --------
    >>> subject_ids([42, "c-7", None], [{}, {}, {}])
    ['42', 'c-7', None]
    >>> try:
    ...     subject_ids([4.5], [{}])
    ... except RequestInvalid as exc:
    ...     print(exc.status, exc.code, exc.fields, exc)
    422 bad_ids ['ids'] 'ids' entry 0 must be text or a whole number (or null), got float 4.5.
    """
    if ids is None or not isinstance(instances, list):
        return None
    if not isinstance(ids, list) or len(ids) != len(instances):
        got = f"{len(ids)} entries" if isinstance(ids, list) else _type(ids)
        raise RequestInvalid(
            f"'ids' must be a list of one subject id per instance ({len(instances)}), got "
            f"{got}.", code="bad_ids", fields=["ids"])
    return [_id_text(i, value) for i, value in enumerate(ids)]


def _id_text(i: int, value: Any) -> str | None:
    if value is None:
        return None
    if type(value) not in (str, int):
        raise RequestInvalid(
            f"'ids' entry {i} must be text or a whole number (or null), got {_type(value)} "
            f"{_show(value)}.", code="bad_ids", fields=["ids"])
    text = str(value)
    if not text.strip() or len(text) > MAX_ID_CHARS:
        raise RequestInvalid(
            f"'ids' entry {i} must be 1 to {MAX_ID_CHARS} characters and not blank.",
            code="bad_ids", fields=["ids"])
    return text


_NUMBERS = frozenset({int, float})
_FLOAT32_MAX = 3.4028234663852886e38
_ALLOWED: dict[str, set[type]] = {
    "numeric": {int, float, type(None)},
    "boolean": {bool, int, float, str, type(None)},
    "categorical": {str, int, float, bool, type(None)},
}


def _sum_is_finite(values: list[Any], types: set[type]) -> bool:
    numbers = values if types <= _NUMBERS else [v for v in values if type(v) in _NUMBERS]
    try:
        return math.isfinite(sum(numbers))
    except OverflowError:  # an int too large for a float
        return False


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _bool_value(v: Any) -> Any:
    if isinstance(v, str):
        return _BOOL_WORDS[v.strip().lower()] == 1.0
    if v is None or isinstance(v, bool):
        return v
    return bool(v)


def _type(value: Any) -> str:
    return {dict: "object", list: "list", type(None): "null"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["MAX_ID_CHARS", "RequestInvalid", "RequestValidator", "subject_ids"]
