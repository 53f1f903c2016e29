"""PII scan: which text columns hold personal data, and how much of it.

Each entity is a :class:`Detector` in :data:`DETECTORS` (a table, not a chain of ifs): a
pattern that finds candidates in a cell and a check that confirms one — a checksum where the
entity has one (Luhn and a card-network prefix for card numbers, the ISO 7064 check digits for
IBANs), the address parser of :mod:`ipaddress` for IP addresses.

:func:`scan_pii` reads a seeded sample of each text (or long-integer) column's non-missing cells;
an entity found in at least ``min_rate`` of the sample is then confirmed on every cell of the
column, which gives the hit rate, the count and the rows. Values are never returned: examples
are masked (letters and digits become ``*``, separators stay; an e-mail keeps its first letter
and top-level domain, a card its first digit, an IBAN its country code).

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({
...     "contact": ["ann@example.com", "bob@mail.org", None, "n/a"],
...     "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "", "4000056655665556"],
...     "note": ["hello", "call 10.0.0.1", "ok", "fine"]})
>>> hits = scan_pii(frame, min_rate=0.2)
>>> [(h.column, h.entity, round(h.rate, 2), h.count) for h in hits]
[('contact', 'email', 0.67, 2), ('card', 'credit_card', 1.0, 3), ('note', 'ipv4', 0.25, 1)]
>>> hits[0].examples, hits[1].examples[0]
(['a**@*******.com', 'b**@****.org'], '4*** **** **** ****')
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from stdnum import iban, luhn

from driftloop.config import CheckSettings
from driftloop.data.values import is_text, missing_mask

_DEFAULTS = CheckSettings()
MAX_EXAMPLES = 3
# first digits of the card networks' number ranges (Visa, Mastercard, Amex, Discover, JCB,
# Diners); a random 16-digit number passes Luhn one time in ten, the prefix cuts that further
_CARD_PREFIX = re.compile(r"^(4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|30[0-5]|36|38)")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_SSN = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")  # never a phone number, valid SSN or not


@dataclass(frozen=True)
class Detector:
    """One kind of personal data: a candidate pattern, a confirmation and a mask."""

    name: str
    description: str
    pattern: re.Pattern[str]
    confirm: Callable[[str], bool] | None = None  # None: every match of the pattern counts
    mask: Callable[[str], str] = field(default=lambda text: _stars(text))

    def confirmed(self, text: str) -> bool:
        return self.confirm is None or self.confirm(text)


@dataclass(frozen=True)
class PiiColumn:
    """A column found to hold PII: its main entity, hit rate over non-missing cells, rows."""

    column: str
    entity: str
    description: str
    rate: float
    count: int
    rows: np.ndarray
    examples: list[str]  # masked
    entities: dict[str, float]  # every entity seen in the sample and its sample hit rate


def _stars(text: str, keep: Callable[[int, str], bool] = lambda i, c: False) -> str:
    return "".join(c if not c.isalnum() or keep(i, c) else "*" for i, c in enumerate(text))


def _mask_email(text: str) -> str:
    local, _, domain = text.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}{'*' * (len(local) - 1)}@{'*' * len(host)}.{tld}"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_card(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn.is_valid(digits)


def _is_phone(text: str) -> bool:
    digits = _digits(text)
    if not 7 <= len(digits) <= 15 or _DATE.match(text) or _SSN_SHAPE.fullmatch(text):
        return False
    if _is_ip(text) or _is_card(text):
        return False
    # a leading + or (area code), or at least two separators: bare digit runs are too often ids
    return text.startswith(("+", "(")) or len(re.findall(r"[ .()-]", text)) >= 2


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "email", "e-mail addresses",
        re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        mask=_mask_email,
    ),
    Detector(
        "credit_card", "credit card numbers (Luhn-checked)",
        re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])"), _is_card,
        lambda t: _stars(t, lambda i, c: i == 0),
    ),
    Detector(
        "iban", "IBANs (checksum-checked)",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), lambda t: iban.is_valid(t),
        lambda t: _stars(t, lambda i, c: i < 2),
    ),
    Detector(
        "us_ssn", "US social security numbers",
        re.compile(r"(?<![\d-])" + _SSN.pattern + r"(?![\d-])"),
    ),
    Detector(
        "phone", "phone numbers",
        re.compile(r"(?<![\w.+()-])[+(]?\d[\d ().-]{5,18}\d(?![\w-])"), _is_phone,
    ),
    Detector(
        "ipv4", "IPv4 addresses",
        re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), _is_ip,
    ),
    Detector(
        "ipv6", "IPv6 addresses",
        re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"), _is_ip,
    ),
)
"""Every entity the scan knows, in the order a cell is tested (a card before a phone)."""


def scan_pii(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    sample: int = _DEFAULTS.pii_sample,
    min_rate: float = _DEFAULTS.pii_min_rate,
    seed: int = _DEFAULTS.seed,
) -> list[PiiColumn]:
    """Scan ``columns`` (default: every text column and every integer column whose values are
    long enough to be card numbers) for the entities of :data:`DETECTORS`.

    Parameters
    ----------
    sample
        Non-missing cells read per column before deciding whether to confirm on all cells.
    min_rate
        Share of non-missing cells that must hold an entity for the column to count as PII.
    """
    rng = np.random.default_rng(seed)
    names = list(columns) if columns is not None else [
        str(c) for c in frame.columns if _scannable(frame[c])
    ]
    found = []
    for name in names:
        column = frame[name]
        present = np.flatnonzero(~missing_mask(column))
        if len(present) == 0:
            continue
        picked = present if len(present) <= sample else np.sort(
            rng.choice(present, sample, replace=False)
        )
        cells = _as_text(column.iloc[picked])
        rates = {d.name: float(_hits(cells, d).mean()) for d in DETECTORS}
        rates = {k: v for k, v in rates.items() if v > 0}
        best = max(rates, key=lambda k: rates[k], default=None)
        if best is None or rates[best] < min_rate:
            continue
        detector = next(d for d in DETECTORS if d.name == best)
        cells = _as_text(column.iloc[present])  # confirm on every non-missing cell
        hit = _hits(cells, detector)
        rows = present[hit]
        examples = [
            detector.mask(_first_match(cells.iloc[i], detector))
            for i in np.flatnonzero(hit)[:MAX_EXAMPLES]
        ]
        found.append(PiiColumn(
            column=name, entity=best, description=detector.description,
            rate=float(hit.mean()), count=int(hit.sum()), rows=rows, examples=examples,
            entities=rates,
        ))
    return found


def _scannable(column: pd.Series) -> bool:
    if is_text(column):
        return True
    if pd.api.types.is_integer_dtype(column.dtype):  # card numbers read from a CSV as int64
        values = column.dropna()
        return len(values) > 0 and bool((values.abs() >= 10**12).mean() > 0.5)
    return False


def _as_text(cells: pd.Series) -> pd.Series:
    # non-missing cells as str (numbers read from a CSV become their digits)
    values = cells.reset_index(drop=True)
    if pd.api.types.infer_dtype(values, skipna=True) == "string":
        return values.astype(object)
    return values.map(lambda v: v if isinstance(v, str) else _number_text(v)).astype(object)


def _number_text(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _hits(cells: pd.Series, detector: Detector) -> np.ndarray:
    # candidates by the vectorised regex first, then the (slower) confirmation per candidate
    candidate = cells.str.contains(detector.pattern, na=False).to_numpy(dtype=bool)
    if detector.confirm is None:
        return candidate
    hit = np.zeros(len(cells), dtype=bool)
    for i in np.flatnonzero(candidate):
        text = cells.iloc[i]
        hit[i] = any(detector.confirmed(m.group(0)) for m in detector.pattern.finditer(text))
    return hit


def _first_match(text: str, detector: Detector) -> str:
    matches = detector.pattern.finditer(text)
    return next(m.group(0) for m in matches if detector.confirmed(m.group(0)))


__all__ = ["DETECTORS", "Detector", "PiiColumn", "scan_pii"]
