"""The audit copy of a table keeps every line but masks the listed callers' numbers."""
from __future__ import annotations

from routing.snapshot import masked_table_text


def test_listed_numbers_are_masked_in_every_form_and_nothing_else_changes():
    text = ("abuse:\n  listed:\n    - {number: '13800001111', until: 2027-01-01, reason: r}\n"
            "    - number: 13900002222\n      reason: r\n"
            "    - {reason: r, number: \"+8613700003333\"}\n  queue: abuse-review\n"
            "lines:\n  \"12345\": {service: s}\n")
    masked = masked_table_text(text)
    for number in ("13800001111", "13900002222", "8613700003333"):
        assert number not in masked
    assert "'138****1111'" in masked and "139****2222" in masked and '"+86*******3333"' in masked
    assert masked.splitlines()[-1] == text.splitlines()[-1] and masked.count("\n") == text.count("\n")


def test_a_table_without_listings_is_kept_verbatim(routing_yaml):
    text = routing_yaml.read_text(encoding="utf-8")
    assert masked_table_text(text) == text
