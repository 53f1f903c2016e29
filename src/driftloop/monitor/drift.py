"""``dl.drift``: did the data (and the model's outputs) move away from the reference?

:func:`compare` runs, for every feature, the test its kind or ``drift.tests`` names
(:data:`driftloop.monitor.stats.TESTS`) and a test of its missing rate; for every model output
the numeric test. All p-values of one report are one family, corrected together
(Benjamini–Hochberg by default, Bonferroni or none by ``drift.correction``). A test says
"drift" only when its corrected p-value is below ``alpha`` AND its effect size reaches the
floor of its effect metric (``drift.effect_floors``), so a trivial shift in a million rows is
significant but not an alarm; both numbers are reported. The dataset drifts when the share of
drifting features (among the testable ones) reaches ``share_threshold``, or when any model
output drifts (prediction drift). A feature that cannot be tested gets status
``not_testable`` with the reason, never NaN.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
>>> cur = pd.DataFrame({"x": rng.normal(1, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
>>> report = drift(ref, cur, settings=DriftSettings())
>>> [(f.name, f.status) for f in report.features]
[('x', 'drift'), ('c', 'ok')]
>>> report.share_drifted, report.drift_detected
(0.5, True)
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.config import DriftSettings, Settings
from driftloop.errors import ConfigError, DataError, DriftloopError, UsageError
from driftloop.monitor.profile import (
    FeatureProfile,
    Profile,
    build_reference,
    current_feature,
    infer_kind,
    output_columns,
    reference_feature,
)
from driftloop.monitor.stats import (
    DEFAULT_TESTS,
    TESTS,
    DriftTest,
    NotTestable,
    TestResult,
    adjust,
    missing_rate,
)

if TYPE_CHECKING:
    from driftloop.registry import Registry

STATUSES: tuple[str, ...] = ("ok", "drift", "not_testable")
Source = str | os.PathLike[str] | pd.DataFrame | Profile
_CELLS_PER_READ = 4_000_000  # cells read from Parquet at once (32 MB as float64)


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature (or one model output).

    Attributes
    ----------
    test, statistic, p_value, p_value_adjusted
        The distribution test, its statistic, raw and family-corrected p-values (None when not
        tested).
    effect_size, effect_metric
        How far the distributions are apart (None when not tested) and in which metric.
    drifted, status
        ``status`` is ``"drift"`` (the distribution or the missing rate drifted), ``"ok"`` or
        ``"not_testable"`` (``reason`` says why; the missing rate may still have been tested).
    missing
        ``{"reference_rate", "current_rate", "p_value", "p_value_adjusted", "effect_size",
        "drifted"}`` of the missing-rate test (p-values None when there was nothing to test).
    method
        How the test was computed (exact or binned, what was pooled).
    """

    name: str
    kind: str
    test: str
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None
    effect_size: float | None
    effect_metric: str
    drifted: bool
    status: str
    reason: str | None
    missing: dict[str, Any]
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: every number finite or None."""
        return _clean(dataclasses.asdict(self))


@dataclass(frozen=True)
class DriftReport:
    """Per-feature and prediction drift of current data against a reference.

    ``to_dict()`` is what ``driftloop drift --json`` prints; ``to_html()`` a page to share.
    """

    drift_detected: bool
    share_drifted: float | None
    correction: str
    alpha: float
    features: list[FeatureDrift]
    prediction: dict[str, Any]
    reference_rows: int
    current_rows: int
    share_threshold: float = 0.5
    effect_floors: dict[str, float] = field(default_factory=dict)
    n_tests: int = 0

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted."""
        return [f.name for f in self.features if f.drifted]

    def headline(self) -> str:
        """One line: the verdict and the numbers behind it.

        >>> DriftReport(False, None, "bh", 0.05, [], {"drift_detected": False, "outputs": []},
        ...             10, 0).headline()
        'no drift: no feature could be tested · 0 tests, bh-corrected at alpha 0.05'
        """
        testable = [f for f in self.features if f.status != "not_testable"]
        if self.share_drifted is None:
            share = "no feature could be tested"
        else:
            share = (f"{len(self.drifted)} of {len(testable)} testable features drifted "
                     f"({self.share_drifted:.0%}; threshold {self.share_threshold:.0%})")
        verdict = "DRIFT" if self.drift_detected else "no drift"
        if self.prediction.get("drift_detected"):
            share += " · prediction drift"
        return (f"{verdict}: {share} · {self.n_tests} tests, {self.correction}-corrected at "
                f"alpha {self.alpha:g}")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON (``json.dumps(..., allow_nan=False)`` works)."""
        testable = [f for f in self.features if f.status != "not_testable"]
        return _clean({
            "drift_detected": self.drift_detected,
            "share_drifted": self.share_drifted,
            "n_features": len(self.features),
            "n_testable": len(testable),
            "n_drifted": len(self.drifted),
            "correction": self.correction,
            "alpha": self.alpha,
            "share_threshold": self.share_threshold,
            "effect_floors": dict(self.effect_floors),
            "n_tests": self.n_tests,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction,
        })

    def to_html(self) -> str:
        """A self-contained HTML page (no scripts, no CDN): the verdict and one table row per
        feature and output; status is written out, colour only repeats it."""
        return _html(self)


def compare(
    reference: Profile, current: Profile, *, settings: DriftSettings | None = None
) -> DriftReport:
    """Test every feature and output of ``current`` against ``reference``.

    ``current`` must be counted over the reference's bins (:func:`profile_like`); a reference
    feature absent from ``current`` is not testable.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from driftloop.monitor.profile import build_reference, profile_like
    >>> rng = np.random.default_rng(1)
    >>> ref = build_reference(pd.DataFrame({"x": rng.normal(size=50_000)}))
    >>> cur = profile_like(ref, pd.DataFrame({"x": rng.normal(0.02, 1, 50_000)}))
    >>> f = compare(ref, cur).features[0]
    >>> f.p_value_adjusted < 0.05, round(f.effect_size, 2), f.drifted
    (True, 0.03, False)
    """
    settings = settings or DriftSettings()
    pending = [
        _run(name, ref, current.features.get(name), settings)
        for name, ref in reference.features.items()
    ]
    outputs = [
        _run(name, ref, current.outputs.get(name), settings)
        for name, ref in reference.outputs.items()
    ]
    family = [p for item in pending + outputs for p in item.p_values()]
    adjusted = iter(adjust(family, settings.correction).tolist())
    features = [item.decide(adjusted, settings) for item in pending]
    judged_outputs = [item.decide(adjusted, settings) for item in outputs]
    testable = [f for f in features if f.status != "not_testable"]
    share = sum(f.drifted for f in testable) / len(testable) if testable else None
    prediction_drift = any(o.drifted for o in judged_outputs)
    prediction: dict[str, Any] = {
        "drift_detected": prediction_drift,
        "outputs": [o.to_dict() for o in judged_outputs],
    }
    if not reference.outputs:
        prediction["reason"] = "the reference profiles no model outputs"
    elif not current.outputs:
        prediction["reason"] = "the current data has no model outputs"
    return DriftReport(
        drift_detected=bool(
            (share is not None and share >= settings.share_threshold) or prediction_drift
        ),
        share_drifted=share, correction=settings.correction, alpha=settings.alpha,
        features=features, prediction=prediction, reference_rows=reference.rows,
        current_rows=current.rows, share_threshold=settings.share_threshold,
        effect_floors=dict(settings.effect_floors), n_tests=len(family),
    )


def drift(
    reference: Source,
    current: Source,
    *,
    target: str | None = None,
    settings: Settings | DriftSettings | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` feature by feature (and the model's outputs).

    Parameters
    ----------
    reference
        A DataFrame, a CSV/Parquet path, a :class:`Profile`, or ``"NAME:VERSION"``: the
        reference profile stored with that model version at training time (then the model's
        outputs on ``current`` are compared with its outputs on the validation split too).
    current
        A DataFrame, a CSV/Parquet path, or a :class:`Profile` counted with
        :func:`profile_like` on the same reference.
    target
        A column dropped from both before comparing (e.g. the label).
    settings
        driftloop settings (the ``drift:`` section is used) or just the ``drift:`` section;
        None: :meth:`Settings.load`.

    Parquet files are read a few columns at a time, so the table is never in memory as a
    whole. Columns of ``current`` that the reference does not have are ignored.

    Examples
    --------
    >>> import driftloop as dl                                          # doctest: +SKIP
    >>> report = dl.drift("credit:3", "requests-2026-11.parquet")         # doctest: +SKIP
    >>> report.drift_detected, report.drifted                            # doctest: +SKIP
    (False, ['income'])
    """
    full = settings if isinstance(settings, Settings) else None
    config = settings if isinstance(settings, DriftSettings) else (
        full or Settings.load()).drift
    drop = {target} if target is not None else set()
    seen: set[str] = set()  # every column name read, to check the target
    ref_profile, model = _reference(reference, drop, config, full, seen)
    if isinstance(current, Profile):
        cur_profile = current
    else:
        cur_profile = _profile_current(current, ref_profile, drop, config, seen)
    if target is not None and seen and target not in seen:
        raise DataError(
            f"target column {target!r} is in neither the reference nor the current data; "
            "check --target (it only leaves the label out of the comparison)."
        )
    report = compare(ref_profile, cur_profile, settings=config)
    if model is not None and ref_profile.outputs and not isinstance(current, Profile):
        report = _with_model_outputs(report, model, ref_profile, cur_profile, current, config)
    return report


# -- one feature ---------------------------------------------------------------------------------


@dataclass
class _Pending:
    """One feature's tests before the family's correction."""

    name: str
    kind: str
    test: DriftTest
    result: TestResult | None
    reason: str | None
    missing: dict[str, Any]

    def p_values(self) -> list[float]:
        found = [] if self.result is None else [self.result.p_value]
        return found + ([] if self.missing["p_value"] is None else [self.missing["p_value"]])

    def decide(self, adjusted: Iterator[float], settings: DriftSettings) -> FeatureDrift:
        floors = settings.effect_floors
        p_adj = None if self.result is None else next(adjusted)
        drifted = self.result is not None and _drifts(
            p_adj, self.result.effect_size, floors.get(self.test.effect_metric, 0.0),
            settings.alpha,
        )
        missing = dict(self.missing)
        missing["p_value_adjusted"] = None if missing["p_value"] is None else next(adjusted)
        missing["drifted"] = missing["p_value"] is not None and _drifts(
            missing["p_value_adjusted"], missing["effect_size"], floors.get("missing_rate", 0.0),
            settings.alpha,
        )
        reason = self.reason
        if self.result is None and missing["p_value"] is not None and reason is not None:
            reason += "; only the missing rate was tested"
        either = drifted or missing["drifted"]
        status = "drift" if either else ("ok" if self.result is not None else "not_testable")
        r = self.result
        return FeatureDrift(
            name=self.name, kind=self.kind, test=self.test.name,
            statistic=None if r is None else _finite(r.statistic),
            p_value=None if r is None else _finite(r.p_value),
            p_value_adjusted=_finite(p_adj), effect_size=None if r is None else _finite(
                r.effect_size),
            effect_metric=self.test.effect_metric, drifted=bool(either), status=status,
            reason=reason, missing=_clean(missing), method=None if r is None else r.method,
        )


def _run(
    name: str, ref: FeatureProfile, cur: FeatureProfile | None, settings: DriftSettings
) -> _Pending:
    test = _choose_test(name, ref, settings)
    missing: dict[str, Any] = {"reference_rate": _rate(ref), "current_rate": None,
                               "p_value": None, "effect_size": None}
    if cur is None:
        return _Pending(name, ref.kind, test, None, "not in the current data", missing)
    _check_same_bins(name, ref, cur)
    missing["current_rate"] = _rate(cur)
    if ref.rows >= 2 and cur.rows >= 2:
        missing["p_value"], missing["effect_size"] = missing_rate(
            ref.missing, ref.rows, cur.missing, cur.rows
        )
    reason = _untestable(ref, cur)
    if reason is not None:
        return _Pending(name, ref.kind, test, None, reason, missing)
    try:
        result = test.run(ref, cur)
    except NotTestable as exc:
        return _Pending(name, ref.kind, test, None, str(exc), missing)
    return _Pending(name, ref.kind, test, result, None, missing)


def _choose_test(name: str, ref: FeatureProfile, settings: DriftSettings) -> DriftTest:
    chosen = settings.tests.get(name, DEFAULT_TESTS[ref.kind])
    test = TESTS.get(chosen)
    if test is None or ref.kind not in test.kinds:
        allowed = [t.name for t in TESTS.values() if ref.kind in t.kinds]
        raise ConfigError(
            f"drift.tests gives {name!r} the test {chosen!r}, which does not apply to a "
            f"{ref.kind} feature. Use one of: {', '.join(allowed)}."
        )
    if test.effect_metric == "wasserstein" and _constant(ref):
        # a constant reference has no spread to scale a distance by: compare the shares
        # below, at and above the constant instead
        return TESTS["chi2"]
    return test


def _untestable(ref: FeatureProfile, cur: FeatureProfile) -> str | None:
    for side, profile in (("reference", ref), ("current data", cur)):
        if profile.rows == 0:
            return f"the {side} has no rows"
        if profile.rows == 1:
            return f"the {side} has a single row; at least 2 are needed"
    for side, profile in (("reference", ref), ("current data", cur)):
        if profile.present == 0:
            return f"every value is missing in the {side}"
        if profile.present == 1:
            return f"only one value is present in the {side}; at least 2 are needed"
    if ref.kind == "numeric" and _constant(ref) and _constant(cur) and (
        ref.minimum == cur.minimum
    ):
        return (f"constant ({ref.minimum:g}) in both the reference and the current data: "
                "nothing to compare, no drift")
    if ref.kind == "categorical":
        ref_slots = np.flatnonzero(ref.counts)
        cur_slots = np.flatnonzero(cur.counts)
        if len(ref_slots) == 1 and ref_slots.tolist() == cur_slots.tolist():
            category = (ref.categories or [])[ref_slots[0]]
            return (f"one category ({category!r}) in both the reference and the current data: "
                    "nothing to compare, no drift")
    return None


def _check_same_bins(name: str, ref: FeatureProfile, cur: FeatureProfile) -> None:
    if (ref.kind, ref.edges, ref.categories, len(ref.counts)) != (
        cur.kind, cur.edges, cur.categories, len(cur.counts)
    ):
        raise UsageError(
            f"feature {name!r}: the current profile was not counted over the reference's bins "
            "or categories. Build it with profile_like(reference, frame)."
        )


def _constant(profile: FeatureProfile) -> bool:
    return profile.minimum is not None and profile.minimum == profile.maximum


def _rate(profile: FeatureProfile) -> float | None:
    return profile.missing / profile.rows if profile.rows else None


def _drifts(p_adjusted: float | None, effect: float | None, floor: float, alpha: float) -> bool:
    if p_adjusted is None or effect is None or not math.isfinite(effect):
        return False
    return p_adjusted < alpha and effect >= floor


# -- reading the two sides -----------------------------------------------------------------------


def _reference(
    reference: Source, drop: set[str], config: DriftSettings, full: Settings | None,
    seen: set[str],
) -> tuple[Profile, tuple[Registry, str, int] | None]:
    if isinstance(reference, Profile):
        return reference, None
    if isinstance(reference, pd.DataFrame):
        seen.update(str(c) for c in reference.columns)
        return build_reference(_without(reference, drop), settings=config), None
    if not isinstance(reference, (str, os.PathLike)):
        raise UsageError(
            f"reference must be a DataFrame, a CSV/Parquet path, a Profile or NAME:VERSION; "
            f"got {type(reference).__name__}."
        )
    if _is_file_like(reference):
        rows, chunks = _chunks(reference, seen, drop=drop)
        features = {
            str(name): reference_feature(str(name), chunk[name], infer_kind(chunk[name]), config)
            for chunk in chunks for name in chunk.columns
        }
        return Profile(features=features, outputs={}, rows=rows), None
    from driftloop.evaluate.report import parse_ref
    from driftloop.monitor.reference import load_reference
    from driftloop.registry import Registry

    name, version = parse_ref(str(reference))
    if version is None:
        raise DataError(
            f"{reference}: no such file, and not NAME:VERSION. Pass a CSV or Parquet file, or a "
            "registered model as NAME:VERSION (e.g. credit:3) to use its stored profile."
        )
    registry = Registry.open(full or Settings.load())
    return load_reference(registry, name, version), (registry, name, version)


def _profile_current(
    current: Source, reference: Profile, drop: set[str], config: DriftSettings, seen: set[str]
) -> Profile:
    if isinstance(current, pd.DataFrame) or (
        isinstance(current, (str, os.PathLike)) and _is_file_like(current)
    ):
        wanted = set(reference.features) - drop
        rows, chunks = _chunks(current, seen, keep=wanted)
        features = {
            str(name): current_feature(reference.features[str(name)], chunk[name], rows, config)
            for chunk in chunks for name in chunk.columns
        }
        return Profile(features=features, outputs={}, rows=rows)
    if isinstance(current, (str, os.PathLike)):
        raise DataError(f"{current}: file not found. Check the path (working dir: {Path.cwd()}).")
    raise UsageError(
        f"current must be a DataFrame, a CSV/Parquet path or a Profile; got "
        f"{type(current).__name__}."
    )


def _is_file_like(source: str | os.PathLike[str]) -> bool:
    from driftloop.data.read import table_suffix

    path = Path(source)
    return path.exists() or table_suffix(path) is not None or ":" not in str(source)


def _chunks(
    source: str | os.PathLike[str] | pd.DataFrame,
    seen: set[str],
    *,
    drop: set[str] = frozenset(),  # type: ignore[assignment]
    keep: set[str] | None = None,
) -> tuple[int, Iterator[pd.DataFrame]]:
    """Rows and the table's columns in groups (Parquet: read a group at a time)."""
    from driftloop.data.read import PARQUET_SUFFIXES, read_table, table_suffix

    def wanted(names: list[str]) -> list[str]:
        seen.update(names)
        return [n for n in names if n not in drop and (keep is None or n in keep)]

    if isinstance(source, pd.DataFrame):
        frame = source.rename(columns=str)
        if frame.columns.duplicated().any():
            raise DataError("the DataFrame has duplicate column names; rename them.")
        return len(frame), iter([frame[wanted(list(frame.columns))]])
    if table_suffix(source) not in PARQUET_SUFFIXES:
        frame = read_table(source).frame
        return len(frame), iter([frame[wanted(list(frame.columns))]])
    return _parquet_chunks(Path(source), wanted)


def _parquet_chunks(
    path: Path, wanted: Any
) -> tuple[int, Iterator[pd.DataFrame]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftloop.data.read import read_table

    if not path.is_file():
        read_table(path)  # raises the house's "file not found" / "is a directory" message
    try:
        file = pq.ParquetFile(path)
        names = list(file.schema_arrow.names)
        rows = file.metadata.num_rows
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot be read as Parquet ({str(exc).splitlines()[0]}). Check that the "
            "file is complete and was written as Parquet."
        ) from None
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names. Rename them to be unique.")
    columns = wanted(names)
    step = max(1, _CELLS_PER_READ // max(rows, 1))

    def read() -> Iterator[pd.DataFrame]:
        for start in range(0, len(columns), step):
            yield file.read(columns=columns[start:start + step]).to_pandas()

    return rows, read()


def _without(frame: pd.DataFrame, drop: set[str]) -> pd.DataFrame:
    frame = frame.rename(columns=str)
    return frame.drop(columns=[c for c in drop if c in frame.columns])


def _with_model_outputs(
    report: DriftReport,
    model: tuple[Registry, str, int],
    reference: Profile,
    current_profile: Profile,
    current: Source,
    config: DriftSettings,
) -> DriftReport:
    """The report again with the model's outputs on ``current`` compared as well."""
    from driftloop.data.read import read_table

    registry, name, version = model
    try:
        loaded = registry.load(name, version)
        features = [f["name"] for f in (loaded.bundle.schema or {}).get("features", [])]
        frame = read_table(current).frame  # type: ignore[arg-type]
        outputs = loaded.predict_raw(frame[features] if features else frame)
        outputs = loaded.to_original_scale(outputs)
        columns, names = output_columns(loaded.task, loaded.bundle.classes, outputs)
        if names != list(reference.outputs):
            raise DataError(f"the model's outputs {names} are not the profiled "
                            f"{list(reference.outputs)}")
    except (DriftloopError, KeyError) as exc:
        reason = f"model outputs not computed for the current data: {exc}"
        return dataclasses.replace(report, prediction={**report.prediction, "reason": reason})
    outputs_profile = {
        out: current_feature(ref, pd.Series(columns[:, i]), len(frame), config)
        for i, (out, ref) in enumerate(reference.outputs.items())
    }
    with_outputs = dataclasses.replace(current_profile, outputs=outputs_profile)
    return compare(reference, with_outputs, settings=config)


# -- output ----------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clean(obj: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN and infinity to None."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite(obj)
    return obj


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse;margin-top:1rem}th,td{padding:.3rem .6rem;border:1px solid #ccc;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.drift{background:#fde2e1}.ok{background:#e6f4ea}.not_testable{background:#eeeeee}
.verdict{font-size:1.2rem;font-weight:600}
"""


def _html(report: DriftReport) -> str:
    esc = html.escape
    rows = []
    outputs = [FeatureDrift(**o) for o in report.prediction.get("outputs", [])]
    labels = {"drift": "▲ DRIFT", "ok": "✓ ok", "not_testable": "– not testable"}
    for f in [*report.features, *outputs]:
        missing = f.missing
        rates = f"{_fmt(missing.get('reference_rate'), 3)} → {_fmt(missing.get('current_rate'), 3)}"
        if missing.get("drifted"):
            rates += " (drift)"
        status = labels[f.status] + (f": {f.reason}" if f.reason else "")
        rows.append(
            f"<tr class='{f.status}'><td>{esc(f.name)}</td><td>{esc(f.kind)}</td>"
            f"<td>{esc(f.test)}</td><td class='num'>{_fmt(f.statistic)}</td>"
            f"<td class='num'>{_fmt(f.p_value)}</td>"
            f"<td class='num'>{_fmt(f.p_value_adjusted)}</td>"
            f"<td class='num'>{_fmt(f.effect_size)} {esc(f.effect_metric)}</td>"
            f"<td class='num'>{esc(rates)}</td><td>{esc(status)}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in (
        "feature", "kind", "test", "statistic", "p", "p adjusted", "effect", "missing rate",
        "status"))
    floors = ", ".join(f"{esc(k)} ≥ {v:g}" for k, v in report.effect_floors.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>driftloop drift report</title><style>{_STYLE}</style></head><body>"
        f"<h1>Drift report</h1><p class='verdict'>{esc(report.headline())}</p>"
        f"<p>{report.reference_rows} reference rows, {report.current_rows} current rows. A test "
        f"drifts when its corrected p-value is below {report.alpha:g} and its effect reaches "
        f"the floor ({floors}).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )


__all__ = ["STATUSES", "DriftReport", "FeatureDrift", "compare", "drift"]
