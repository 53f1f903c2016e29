"""Reference profiles: per-feature count histograms that windows and replicas merge by adding.

A numeric feature of the reference is cut into (up to) ``bins`` bins at its own quantiles; a
categorical feature keeps its ``max_categories`` most frequent categories plus an "other"
bucket. A profile of *current* data (:func:`profile_like`) counts into the reference's bins, so
profiles of several windows or several server replicas merge exactly by adding counts
(:meth:`Profile.merge`).

Bins of a numeric feature
    ``edges`` ``e_0 < e_1 < … < e_k`` give ``k`` bins ``[e_i, e_{i+1})``; values below ``e_0``
    count in the first bin and values at or above ``e_k`` in the last. The first and last bins
    are guards that hold no reference value: ``[min⁻, min)`` and ``[max⁺, max⁺⁺)`` (``x⁺`` is
    the next float above ``x``), so current values outside the reference's range are counted
    apart. The bins between start at the reference's quantiles at levels ``j / (bins - 3)``
    (the sorted values at positions ``floor(j n / (bins - 3))``: observed values, so discrete
    data and ties give clean bins; duplicates dropped) and end at ``max⁺``; when the maximum
    is a point mass (ties), or every quantile is one value, the maximum gets a bin of its own
    (a 0/1 column keeps two bins). At most ``bins + 1`` edges (``bins >= 4``); a constant
    reference gets three bins: below, at and above the constant. NaN and ±inf count as
    missing; text that does not parse as a number counts as missing too.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"age": rng.normal(40, 10, 1000), "city": rng.choice(["a", "b"], 1000)})
>>> ref = build_reference(frame)
>>> len(ref.features["age"].counts), ref.features["city"].categories
(99, ['b', 'a'])
>>> a, b = profile_like(ref, frame[:600]), profile_like(ref, frame[600:])
>>> a.merge(b).features["age"].counts == ref.features["age"].counts
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings
from driftloop.data.values import category_keys, is_text, parse_numbers
from driftloop.errors import DataError, UsageError

KINDS: tuple[str, ...] = ("numeric", "categorical")
FORMAT = "driftloop.profile/1"
_DEFAULTS = DriftSettings()


@dataclass(frozen=True)
class FeatureProfile:
    """Counts of one feature (or one model output) over fixed bins or categories.

    Attributes
    ----------
    name, kind
        The column and ``"numeric"`` or ``"categorical"``.
    rows, missing
        Rows seen (missing included) and how many of them were missing.
    edges
        Numeric: the bin edges (see the module docstring); None for categorical.
    categories
        Categorical: the kept categories; ``counts`` has one more slot, "other". None for numeric.
    counts
        Per bin or per category (+ other), missing values excluded.
    minimum, maximum
        Of the non-missing values (numeric; None when there are none).
    sample
        The raw non-missing values, in row order, when ``rows <= exact_max_rows`` (for exact
        tests); None otherwise. A merge of two profiles with samples keeps both.
    mean, std
        Of the non-missing values (numeric references; population std), which scale the
        Wasserstein distance; None on profiles of current data. A merge combines them with the
        parallel formula (exact up to floating-point rounding, unlike the counts).
    test_counts
        Categorical references with more than ``max_categories`` categories only: the counts
        (same slots) of every second non-missing value, the half that did *not* choose which
        categories to keep (the other half did). The tests compare with these: counts of the
        same values that picked the most frequent categories are biased upwards for the kept
        categories near the cut and downwards for "other" (the winner's curse), which would
        make chi-square alarm on data that did not move.
    """

    name: str
    kind: str
    rows: int
    missing: int
    edges: list[float] | None
    categories: list[str] | None
    counts: list[int]
    minimum: float | None
    maximum: float | None
    sample: list[float] | None
    mean: float | None = None
    std: float | None = None
    test_counts: list[int] | None = None

    @property
    def present(self) -> int:
        """Non-missing values counted."""
        return self.rows - self.missing

    def merge(self, other: FeatureProfile) -> FeatureProfile:
        """The profile of both inputs together: counts, rows and missing add exactly.

        Raises ValueError when the two were not counted over the same bins or categories.

        >>> a = FeatureProfile("x", "categorical", 3, 1, None, ["u"], [1, 1], None, None, None)
        >>> a.merge(a).counts
        [2, 2]
        """
        if (self.name, self.kind, self.edges, self.categories) != (
            other.name, other.kind, other.edges, other.categories
        ) or len(self.counts) != len(other.counts):
            raise ValueError(
                f"cannot merge profiles of {self.name!r} and {other.name!r}: they were not "
                "counted over the same bins or categories. Build both with profile_like on "
                "the same reference."
            )
        mean, std = _merge_moments(self, other)
        return FeatureProfile(
            name=self.name, kind=self.kind, rows=self.rows + other.rows,
            missing=self.missing + other.missing, edges=self.edges, categories=self.categories,
            counts=[a + b for a, b in zip(self.counts, other.counts, strict=True)],
            minimum=_extreme(min, self.minimum, other.minimum),
            maximum=_extreme(max, self.maximum, other.maximum),
            sample=(None if self.sample is None or other.sample is None
                    else self.sample + other.sample),
            mean=mean, std=std,
            test_counts=(None if self.test_counts is None or other.test_counts is None
                         else [a + b for a, b in zip(self.test_counts, other.test_counts,
                                                     strict=True)]),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists, numbers, strings, None)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureProfile:
        """Rebuild from :meth:`to_json` output.

        >>> f = FeatureProfile("x", "numeric", 2, 0, [0.0, 1.0], None, [2], 0.0, 0.5, [0.0, 0.5])
        >>> FeatureProfile.from_json(f.to_json()) == f
        True
        """
        try:
            profile = cls(**{key: data[key] for key in _FIELDS if key in data})
        except TypeError as exc:
            raise UsageError(f"feature profile JSON is malformed ({exc}).") from None
        if profile.kind not in KINDS:
            raise UsageError(
                f"feature profile {profile.name!r} has kind {profile.kind!r}; expected one of "
                f"{', '.join(KINDS)}."
            )
        return profile


_FIELDS = tuple(FeatureProfile.__dataclass_fields__)

LABELLED_MAX_ROWS = 20_000
"""Most reference rows whose outputs are kept with their labels (a seeded sample)."""


@dataclass(frozen=True)
class LabelledOutputs:
    """A seeded sample of a model's outputs on reference rows with their true labels: what a
    label-free performance estimator is fitted on
    (:func:`~driftloop.monitor.estimator.reference_estimator`).

    Attributes
    ----------
    labels
        The true class of each sampled row as a class code (its output column), in row order.
    columns
        The calibrated class probabilities, one list per class (a binary model keeps class 1
        only, as the profile's outputs do), rounded to 6 significant digits.
    rows
        Reference rows the sample was drawn from (``len(labels)`` when all were kept).

    Examples
    --------
    >>> import numpy as np
    >>> part = labelled_outputs(np.array([[0.8, 0.2], [0.3, 0.7], [0.55, 0.45]]), [0, 1, 1])
    >>> part.columns, part.labels
    ([[0.2, 0.7, 0.45]], [0, 1, 1])
    >>> proba, labels = part.arrays()
    >>> proba[0].tolist(), labels.dtype.name
    ([0.8, 0.2], 'int64')
    """

    labels: list[int]
    columns: list[list[float]]
    rows: int

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The N×K probabilities and the N class codes."""
        columns = np.asarray(self.columns, dtype=np.float64).T.reshape(len(self.labels), -1)
        if columns.shape[1] == 1:
            columns = np.column_stack([1.0 - columns[:, 0], columns[:, 0]])
        return columns, np.asarray(self.labels, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``{"labels", "columns", "rows"}``."""
        return {"labels": self.labels, "columns": self.columns, "rows": self.rows}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabelledOutputs:
        try:
            labels = [int(v) for v in data["labels"]]
            columns = [[float(v) for v in column] for column in data["columns"]]
            part = cls(labels=labels, columns=columns, rows=int(data["rows"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"labelled reference JSON is malformed (bad field {exc}).") from None
        if any(len(column) != len(labels) for column in columns):
            raise UsageError("labelled reference JSON is malformed (columns and labels differ "
                             "in length).")
        return part


def labelled_outputs(
    outputs: np.ndarray, labels: Sequence[int] | np.ndarray, *,
    max_rows: int = LABELLED_MAX_ROWS, seed: int = 0,
) -> LabelledOutputs:
    """Keep ``outputs`` (N×K class probabilities) with their class codes ``labels``: all rows
    when there are at most ``max_rows``, else a seeded sample of ``max_rows`` (in row order).

    >>> import numpy as np
    >>> part = labelled_outputs(np.full((50_000, 3), 1 / 3), np.zeros(50_000, int))
    >>> len(part.labels), part.rows, len(part.columns), part.columns[0][0]
    (20000, 50000, 3, 0.333333)
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:  # a binary model's class-1 probabilities
        outputs = np.column_stack([1.0 - outputs, outputs])
    codes = np.asarray(labels, dtype=np.int64)
    if outputs.ndim != 2 or len(outputs) != len(codes):
        raise ValueError(f"outputs must be N×K with one label per row; got shape "
                         f"{outputs.shape} and {len(codes)} labels.")
    keep = np.arange(len(codes))
    if len(keep) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), max_rows, replace=False))
    kept = outputs[keep][:, 1:] if outputs.shape[1] == 2 else outputs[keep]
    # 6 significant digits: a fifth of the JSON of full floats, far finer than any estimate
    columns = [[float(f"{v:.6g}") for v in column] for column in kept.T.tolist()]
    return LabelledOutputs(labels=codes[keep].tolist(), columns=columns, rows=len(codes))


@dataclass(frozen=True)
class Profile:
    """Profiles of a table's features and of a model's outputs on it.

    Attributes
    ----------
    features
        Feature name -> :class:`FeatureProfile`.
    outputs
        Model outputs: ``{"proba:CLASS": ...}`` (classification; a binary model keeps the
        positive class only) or ``{"value": ...}`` (regression); ``{}`` when none.
    rows
        Rows profiled.
    labelled
        A training reference's outputs on the validation split with their true labels (a
        sample of at most :data:`LABELLED_MAX_ROWS`), for the label-free performance
        estimator; None on profiles of current data and on references stored before
        driftloop kept them. A merge keeps none.
    """

    features: dict[str, FeatureProfile]
    outputs: dict[str, FeatureProfile]
    rows: int
    labelled: LabelledOutputs | None = None

    def merge(self, other: Profile) -> Profile:
        """Both profiles together (same features and outputs, same bins); counts add exactly.

        >>> import pandas as pd
        >>> ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}))
        >>> both = ref.merge(ref)
        >>> both.rows, both.features["x"].counts
        (8, [0, 2, 2, 2, 2, 0])
        """
        if self.features.keys() != other.features.keys() or (
            self.outputs.keys() != other.outputs.keys()
        ):
            raise ValueError(
                "cannot merge profiles with different features or outputs "
                f"({sorted(self.features)} vs {sorted(other.features)}). Build both with "
                "profile_like on the same reference."
            )
        return Profile(
            features={k: v.merge(other.features[k]) for k, v in self.features.items()},
            outputs={k: v.merge(other.outputs[k]) for k, v in self.outputs.items()},
            rows=self.rows + other.rows,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``{"format", "rows", "features": [...], "outputs": [...]}`` and, when
        kept, ``"labelled"`` (:meth:`LabelledOutputs.to_json`).

        Features and outputs are lists (in order; each names itself), so that canonical JSON,
        which sorts keys, keeps the table's column order.
        """
        out: dict[str, Any] = {
            "format": FORMAT,
            "rows": self.rows,
            "features": [v.to_json() for v in self.features.values()],
            "outputs": [v.to_json() for v in self.outputs.values()],
        }
        if self.labelled is not None:  # absent, not null: older profiles read the same
            out["labelled"] = self.labelled.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Profile:
        """Rebuild from :meth:`to_json` output.

        >>> import pandas as pd
        >>> ref = build_reference(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", None]}))
        >>> Profile.from_json(ref.to_json()) == ref
        True
        """
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise UsageError(
                f"not a driftloop profile (expected format {FORMAT!r}); build one with "
                "build_reference."
            )
        try:
            labelled = data.get("labelled")
            return cls(
                features=_named(data["features"]), outputs=_named(data["outputs"]),
                rows=int(data["rows"]),
                labelled=None if labelled is None else LabelledOutputs.from_json(labelled),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"profile JSON is malformed (bad field {exc}).") from None


def _named(items: Any) -> dict[str, FeatureProfile]:
    if isinstance(items, Mapping):  # also read the keyed form
        items = list(items.values())
    profiles = [FeatureProfile.from_json(item) for item in items]
    return {p.name: p for p in profiles}


def infer_kind(column: pd.Series) -> str:
    """``"numeric"`` for numbers and datetimes, ``"categorical"`` for bool, text and categories.

    >>> import pandas as pd
    >>> infer_kind(pd.Series([1.5])), infer_kind(pd.Series([True])), infer_kind(pd.Series(["a"]))
    ('numeric', 'categorical', 'categorical')
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or is_text(column):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "numeric"
    return "categorical"


def build_reference(
    frame: pd.DataFrame,
    *,
    kinds: Mapping[str, str] | None = None,
    outputs: np.ndarray | None = None,
    output_names: Sequence[str] | None = None,
    settings: DriftSettings | None = None,
) -> Profile:
    """Profile ``frame`` as a reference: quantile bins / kept categories, and their counts.

    Parameters
    ----------
    frame
        The reference rows (e.g. the training split's raw feature columns).
    kinds
        Feature -> ``"numeric"`` or ``"categorical"`` (``"boolean"`` counts as categorical);
        when given, exactly these columns are profiled. None: every column, numbers (and
        datetimes) numeric, bool / text / category dtypes categorical.
    outputs, output_names
        The model's outputs on reference rows, ``(n, k)`` calibrated class probabilities or
        ``(n,)`` regression outputs, and their names (default ``proba:0 …`` / ``value``).
    settings
        ``bins``, ``max_categories`` and ``exact_max_rows`` of the ``drift:`` settings.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"n": [0, 1, 1, 0, 1, 1], "c": ["x", "y", "x", None, "x", "z"]})
    >>> ref = build_reference(frame, outputs=np.linspace(0, 1, 6), output_names=["value"])
    >>> ref.features["n"].edges[1:-1], ref.features["n"].counts
    ([0.0, 1.0, 1.0000000000000002], [0, 2, 4, 0])
    >>> ref.features["c"].categories, ref.features["c"].counts, ref.features["c"].missing
    (['x', 'y', 'z'], [3, 1, 1, 0], 1)
    >>> sorted(ref.outputs)
    ['value']
    """
    settings = settings or _DEFAULTS
    columns = _columns_and_kinds(frame, kinds)
    features = {
        name: reference_feature(name, frame[name], kind, settings)
        for name, kind in columns.items()
    }
    return Profile(
        features=features, outputs=_reference_outputs(outputs, output_names, settings),
        rows=len(frame),
    )


def profile_like(
    reference: Profile,
    frame: pd.DataFrame,
    *,
    outputs: np.ndarray | None = None,
    settings: DriftSettings | None = None,
) -> Profile:
    """Profile ``frame`` over the reference's bins and categories, so that profiles merge.

    Unknown categories count in "other"; a reference column missing from ``frame`` counts as
    all-missing. ``outputs`` are the model's outputs on these rows, in the reference's output
    order (a binary model's ``(n, 2)`` probabilities may be passed whole when the reference
    kept only the positive class).

    Examples
    --------
    >>> import pandas as pd
    >>> ref = build_reference(pd.DataFrame({"c": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}))
    >>> cur = profile_like(ref, pd.DataFrame({"c": ["a", "new", None]}))
    >>> cur.features["c"].counts, cur.features["c"].missing, cur.features["x"].missing
    ([1, 0, 1], 1, 3)
    """
    settings = settings or _DEFAULTS
    features = {}
    for name, ref in reference.features.items():
        column = frame[name] if name in frame.columns else None
        features[name] = current_feature(ref, column, len(frame), settings)
    return Profile(
        features=features, outputs=_current_outputs(reference, outputs, len(frame), settings),
        rows=len(frame),
    )


def reference_feature(
    name: str, column: pd.Series, kind: str, settings: DriftSettings | None = None
) -> FeatureProfile:
    """The reference profile of one column (see :func:`build_reference`)."""
    settings = settings or _DEFAULTS
    kind = _check_kind(name, kind)
    if kind == "categorical":
        keys = category_keys(column)
        present = keys[pd.notna(keys)]
        categories = _top_categories(present, settings.max_categories)
        profile = _categorical_profile(name, len(column), present, categories)
        if profile.counts[-1] == 0:  # every category kept: no choice, nothing biased
            return profile
        # too many categories: every second value chooses the kept ones, the others are
        # counted for the tests (see FeatureProfile.test_counts)
        categories = _top_categories(present[0::2], settings.max_categories)
        held_out = _categorical_profile(name, len(column), present[1::2], categories)
        return replace(_categorical_profile(name, len(column), present, categories),
                       test_counts=held_out.counts)
    values = numeric_values(column)
    ordered = np.sort(values)
    edges = reference_edges(ordered, settings.bins)
    profile = _numeric_profile(name, len(column), values, ordered, edges, settings)
    if len(values) == 0:
        return profile
    mean = float(values.mean())
    deviations = values - mean
    std = math.sqrt(float(np.dot(deviations, deviations)) / len(values))  # np.std, one pass less
    return replace(profile, mean=mean, std=std)


def current_feature(
    reference: FeatureProfile,
    column: pd.Series | None,
    rows: int,
    settings: DriftSettings | None = None,
) -> FeatureProfile:
    """One column counted over ``reference``'s bins (``column`` None: ``rows`` missing values)."""
    settings = settings or _DEFAULTS
    if reference.kind == "categorical":
        keys = np.empty(0, object) if column is None else category_keys(column)
        present = keys[pd.notna(keys)]
        return _categorical_profile(reference.name, rows, present, reference.categories or [])
    values = np.empty(0) if column is None else numeric_values(column)
    edges = np.asarray(reference.edges or [], dtype=np.float64)
    return _numeric_profile(reference.name, rows, values, np.sort(values), edges, settings)


def numeric_values(column: pd.Series) -> np.ndarray:
    """The finite values of a column as float64 (missing, ±inf and unparsable text dropped).

    >>> import pandas as pd
    >>> numeric_values(pd.Series(["1", "x", None, "2.5"], dtype=object)).tolist()
    [1.0, 2.5]
    """
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        stamps = column.to_numpy(dtype="datetime64[ns]")
        values = np.where(np.isnat(stamps), np.nan, stamps.astype(np.int64) / 1e9)
    elif is_text(column) or pd.api.types.is_bool_dtype(dtype):
        values, _ = parse_numbers(column)
    else:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def reference_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges of sorted finite values (see the module docstring).

    >>> import numpy as np
    >>> reference_edges(np.arange(1.0, 11.0), 8).tolist()
    [0.9999999999999999, 1.0, 3.0, 5.0, 7.0, 9.0, 10.000000000000002, 10.000000000000004]
    >>> reference_edges(np.array([3.0, 3.0]), 8).tolist()
    [2.9999999999999996, 3.0, 3.0000000000000004, 3.000000000000001]
    """
    n = len(ordered)
    if n == 0:
        return np.empty(0)
    low, high = ordered[0], ordered[-1]
    levels = max(1, bins - 3)  # + the guard bins below and above, + a bin for a point-mass max
    # "lower" quantiles are observed values, so ties and discrete data give clean bins
    inner = np.unique(ordered[np.floor(np.arange(levels) / levels * n).astype(np.int64)])
    if low != high and (len(inner) == 1 or ordered[-2] == high):
        inner = np.union1d(inner, [high])  # the maximum is a point mass: its own bin
    above = np.nextafter(high, np.inf)
    return np.concatenate(
        ([np.nextafter(low, -np.inf)], inner, [above, np.nextafter(above, np.inf)])
    )


def bin_counts(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of sorted values in the bins of ``edges`` (outer bins take what lies beyond).

    >>> import numpy as np
    >>> bin_counts(np.array([-5.0, 0.0, 0.5, 1.0, 9.0]), np.array([0.0, 1.0, 2.0])).tolist()
    [3, 2]
    """
    if len(edges) < 2:
        return np.empty(0, np.int64)
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")
    return np.diff(np.concatenate(([0], cuts, [len(ordered)]))).astype(np.int64)


def output_columns(
    task: str, classes: Sequence[Any], outputs: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """The model-output columns a profile keeps, and their names.

    Classification keeps one column per class (``proba:CLASS``), a binary model only the
    positive (second) class, since the other is one minus it; regression keeps ``value``.

    >>> import numpy as np
    >>> cols, names = output_columns("binary", ["no", "yes"], np.array([[0.2, 0.8]]))
    >>> cols.tolist(), names
    ([[0.8]], ['proba:yes'])
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if task == "regression":
        return outputs.reshape(len(outputs), 1), ["value"]
    names = [f"proba:{c}" for c in classes]
    if task == "binary" and outputs.ndim == 2 and outputs.shape[1] == 2:
        return outputs[:, 1:], names[1:]
    return outputs, names


def _numeric_profile(
    name: str,
    rows: int,
    values: np.ndarray,
    ordered: np.ndarray,
    edges: np.ndarray,
    settings: DriftSettings,
) -> FeatureProfile:
    present = len(values)
    return FeatureProfile(
        name=name, kind="numeric", rows=rows, missing=rows - present,
        edges=[float(e) for e in edges], categories=None,
        counts=bin_counts(ordered, edges).tolist(),
        minimum=float(ordered[0]) if present else None,
        maximum=float(ordered[-1]) if present else None,
        sample=values.tolist() if rows <= settings.exact_max_rows else None,
    )


def _categorical_profile(
    name: str, rows: int, present: np.ndarray, categories: list[str]
) -> FeatureProfile:
    codes = pd.Index(categories, dtype=object).get_indexer(present) if len(present) else (
        np.empty(0, np.int64))
    codes = np.where(codes < 0, len(categories), codes)  # unknown -> "other"
    counts = np.bincount(codes, minlength=len(categories) + 1)
    return FeatureProfile(
        name=name, kind="categorical", rows=rows, missing=rows - len(present), edges=None,
        categories=list(categories), counts=counts.tolist(), minimum=None, maximum=None,
        sample=None,
    )


def _top_categories(present: np.ndarray, keep: int) -> list[str]:
    if len(present) == 0:
        return []
    counted = pd.Series(present, dtype=object).value_counts(sort=False)  # hashing, not sorting
    values = counted.index.to_numpy(dtype=str)
    order = np.lexsort((values, -counted.to_numpy()))  # most frequent first, ties by name
    return [str(v) for v in values[order[:keep]]]


def _columns_and_kinds(frame: pd.DataFrame, kinds: Mapping[str, str] | None) -> dict[str, str]:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise DataError("the table has duplicate column names; rename them to be unique.")
    if kinds is None:
        return {str(c): infer_kind(frame[c]) for c in frame.columns}
    absent = [name for name in kinds if name not in frame.columns]
    if absent:
        raise DataError(
            f"column {absent[0]!r} (named in kinds) is not in the table. Columns: "
            f"{', '.join(names)}."
        )
    return {name: _check_kind(name, kind) for name, kind in kinds.items()}


def _check_kind(name: str, kind: str) -> str:
    kind = "categorical" if kind == "boolean" else kind
    if kind not in KINDS:
        raise UsageError(
            f"feature {name!r} has kind {kind!r}; it must be one of {', '.join(KINDS)}."
        )
    return kind


def _output_matrix(outputs: np.ndarray, width: int | None) -> np.ndarray:
    array = np.asarray(outputs, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise UsageError(f"model outputs must be (n,) or (n, k); got shape {array.shape}.")
    if width is not None and array.shape[1] != width:
        if width == 1 and array.shape[1] == 2:  # binary probabilities: the positive class
            return array[:, 1:]
        raise UsageError(
            f"model outputs have {array.shape[1]} columns but the reference profiles {width}."
        )
    return array


def _reference_outputs(
    outputs: np.ndarray | None, names: Sequence[str] | None, settings: DriftSettings
) -> dict[str, FeatureProfile]:
    if outputs is None:
        return {}
    matrix = _output_matrix(outputs, None)
    width = matrix.shape[1]
    if names is None:
        names = ["value"] if np.ndim(outputs) == 1 else [f"proba:{i}" for i in range(width)]
    if len(names) != width:
        raise UsageError(f"{len(names)} output names for {width} output columns.")
    return {
        name: reference_feature(name, pd.Series(matrix[:, i]), "numeric", settings)
        for i, name in enumerate(names)
    }


def _current_outputs(
    reference: Profile, outputs: np.ndarray | None, rows: int, settings: DriftSettings
) -> dict[str, FeatureProfile]:
    if outputs is None or not reference.outputs:
        if outputs is not None:
            raise UsageError("outputs were given but the reference profiles no model outputs.")
        return {}
    matrix = _output_matrix(outputs, len(reference.outputs))
    if len(matrix) != rows:
        raise UsageError(f"{len(matrix)} rows of model outputs for {rows} rows of data.")
    return {
        name: current_feature(ref, pd.Series(matrix[:, i]), rows, settings)
        for i, (name, ref) in enumerate(reference.outputs.items())
    }


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return float(pick(a, b))


def _merge_moments(a: FeatureProfile, b: FeatureProfile) -> tuple[float | None, float | None]:
    if a.mean is None or a.std is None or a.present == 0:
        return b.mean, b.std
    if b.mean is None or b.std is None or b.present == 0:
        return a.mean, a.std
    # Chan et al.'s parallel update of mean and sum of squared deviations
    n_a, n_b = a.present, b.present
    n = n_a + n_b
    delta = b.mean - a.mean
    mean = a.mean + delta * n_b / n
    m2 = a.std**2 * n_a + b.std**2 * n_b + delta**2 * n_a * n_b / n
    return mean, math.sqrt(max(m2, 0.0) / n)


__all__ = [
    "FORMAT",
    "KINDS",
    "LABELLED_MAX_ROWS",
    "FeatureProfile",
    "LabelledOutputs",
    "Profile",
    "bin_counts",
    "build_reference",
    "current_feature",
    "infer_kind",
    "labelled_outputs",
    "numeric_values",
    "output_columns",
    "profile_like",
    "reference_edges",
    "reference_feature",
]
