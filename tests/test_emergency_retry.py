"""The table's emergency section: per-trunk retry (attempts, ring, pause, overall bound, announcement, next
route), validated with file:line errors like the rest of the table."""
from __future__ import annotations

from pathlib import Path

import pytest

from routing.loader import TableError, load_table, load_table_with_warnings
from routing.model import EmergencyRetry

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8")
TRUNKS_LINE = "  trunks: {}               # per emergency trunk: any of the fields above, and next"


def table_text(trunks: str, retry: str | None = None) -> str:
    text = SHIPPED.replace(TRUNKS_LINE, trunks)
    if retry is not None:
        text = text.replace("    attempts: 3            # Dial attempts per trunk", retry)
    return text


def problems(text: str) -> list[str]:
    with pytest.raises(TableError) as caught:
        load_table("routing.yaml", text=text)
    return [str(p) for p in caught.value.problems]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_shipped_table_retries_every_emergency_trunk_within_a_bound():
    table = load_table(ROOT / "conf" / "routing.yaml")
    assert set(table.emergency_retry) == {"emergency-110", "emergency-119", "emergency-120", "emergency-122"}
    for retry in table.emergency_retry.values():
        assert retry.pause_seconds > 0 and retry.next is None
        assert retry.attempts * retry.ring_seconds + (retry.attempts - 1) * retry.pause_seconds <= retry.within_seconds


def test_a_trunk_entry_overrides_only_what_it_names():
    text = table_text("  trunks:\n    emergency-119: {ring_seconds: 10, next: emergency-110}")
    table = load_table("routing.yaml", text=text)
    assert table.retry_for("emergency-119") == EmergencyRetry(3, 10, 5, 60, "hotline/emergency-unreachable",
                                                              "emergency-110")
    assert table.retry_for("emergency-110").next is None


def test_next_route_must_be_an_emergency_trunk_and_not_loop():
    text = table_text("  trunks:\n    emergency-110: {next: seat-12348}\n    emergency-119: {next: emergency-120}\n"
                      "    emergency-120: {next: emergency-119}\n    seat-12348: {attempts: 2}\n"
                      "    emergency-122: {next: nowhere}")
    found = problems(text)
    assert f"routing.yaml:{line_of(text, 'next: seat-12348')}:" in "".join(found)
    assert any("'seat-12348' is a retained_seat trunk" in p for p in found)
    assert any("emergency routes loop: emergency-119 -> emergency-120 -> emergency-119" in p for p in found)
    assert any(p.startswith(f"routing.yaml:{line_of(text, 'seat-12348: {attempts')}:") and "retained_seat" in p
               for p in found)
    assert any("emergency trunk 'nowhere' is not defined" in p for p in found)


def test_bound_shorter_than_one_ring_is_an_error_and_attempts_that_do_not_fit_warn():
    text = table_text("  trunks:\n    emergency-110: {ring_seconds: 30, within_seconds: 20}")
    (found,) = [p for p in problems(text) if "within_seconds" in p]
    assert found.startswith(f"routing.yaml:{line_of(text, 'emergency-110: {ring_seconds: 30')}:")
    assert "shorter than one attempt's ring_seconds (30)" in found
    text = table_text("  trunks:\n    emergency-110: {attempts: 4, ring_seconds: 20, within_seconds: 45}")
    result = load_table_with_warnings("routing.yaml", text=text)
    (warning,) = [str(w) for w in result.warnings if "within_seconds" in str(w)]
    assert "a gateway that rings out gets 2 full attempt(s)" in warning


@pytest.mark.parametrize("field, value", [("attempts", 0), ("pause_seconds", -1), ("within_seconds", 0),
                                          ("ring_seconds", 500), ("announce", "'bad name!'")])
def test_each_field_is_range_checked_with_its_position(field, value):
    text = table_text(f"  trunks:\n    emergency-110:\n      {field}: {value}")
    found = problems(text)
    assert any(p.startswith(f"routing.yaml:{line_of(text, f'      {field}: ')}:") for p in found), found
