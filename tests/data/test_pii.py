"""PII: entities found and confirmed by checksum, rates per column, values never shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.data.pii import DETECTORS, scan_pii

VALID = {
    "email": ["ann.lee+news@example.co.uk", "b_o@mail.org"],
    "credit_card": ["4111-1111-1111-1111", "378282246310005", "5555 5555 5555 4444"],
    "iban": ["GB82 WEST 1234 5698 7654 32", "NO9386011117947"],
    "us_ssn": ["123-45-6789", "078-05-1120"],
    "phone": ["+1 (415) 555-2671", "+47 912 34 567", "020 7946 0958"],
    "ipv4": ["192.168.0.1", "8.8.4.4"],
    "ipv6": ["2001:db8::ff00:42:8329", "::1"],
}
NOT_PII = ["2024-01-05", "12:30:45", "3.14159", "order 12345678", "1,234,567", "v1.2.3",
           "2024-01-05 12:30:00", "4111-1111-1111-1112", "000-12-3456", "999.1.1.1",
           "hello world", "-122.4194", "37.7749, -122.4194", "a:b:c"]


@pytest.mark.parametrize("entity", sorted(VALID))
def test_each_entity_is_found_in_a_column_of_it(entity):
    frame = pd.DataFrame({"col": VALID[entity] * 10})
    [hit] = scan_pii(frame)
    assert hit.entity == entity and hit.rate == 1.0 and hit.count == len(frame)
    for example in hit.examples:  # masked: no value shown
        assert example not in VALID[entity] and "*" in example


def test_look_alikes_fail_their_checksums_and_patterns():
    frame = pd.DataFrame({"col": NOT_PII * 5})
    assert scan_pii(frame, min_rate=0.01) == []


def test_a_bad_iban_checksum_is_not_an_iban():
    hits = scan_pii(pd.DataFrame({"col": ["GB82 WEST 1234 5698 7654 33"] * 5}), min_rate=0.01)
    assert "iban" not in {h.entity for h in hits}


def test_rates_count_non_missing_cells_and_rows_are_positions():
    cells = [None, "", "x@y.io", "no", "z@y.io", "n/a", None, "q@y.io"]
    [hit] = scan_pii(pd.DataFrame({"contact": cells}), min_rate=0.5)
    assert hit.rate == pytest.approx(3 / 5) and hit.rows.tolist() == [2, 4, 7]
    assert scan_pii(pd.DataFrame({"contact": cells}), min_rate=0.7) == []


def test_card_numbers_read_as_integers_are_scanned_and_random_ids_are_not():
    rng = np.random.default_rng(0)
    cards = pd.Series([4111111111111111, 5555555555554444, 378282246310005] * 100)
    ids = pd.Series(rng.integers(10**15, 10**16, 300))  # Luhn passes 1 in 10 by chance
    hits = scan_pii(pd.DataFrame({"card": cards, "account_id": ids, "age": np.arange(300)}))
    assert [(h.column, h.entity) for h in hits] == [("card", "credit_card")]
    assert hits[0].examples[0] == "4***************"


def test_large_columns_are_sampled_before_being_confirmed_on_every_cell():
    n = 50_000
    cells = np.where(np.arange(n) % 4 == 0, "user@example.com", "nothing here")
    [hit] = scan_pii(pd.DataFrame({"c": cells}), sample=500)
    assert hit.count == n // 4 and hit.rate == pytest.approx(0.25)


def test_every_detector_has_a_distinct_name():
    assert len({d.name for d in DETECTORS}) == len(DETECTORS)
