"""One masking rule for every caller-controlled text (routing.privacy): numbers written with separators, the
short-number and 7-10 digit cases, idempotence, and a property: whatever the separators, no run of more than
MAX_VISIBLE_RUN digits of a 7+ digit number survives."""
from __future__ import annotations

import io
import json

import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.privacy import MAX_VISIBLE_RUN, SHORT_KEPT, mask_number, mask_text
from scripts.logsetup import configure_logging


def test_numbers_written_with_separators_are_masked():
    for text in ("138 0013 8000", "138-0013-8000", "138.0013.8000", "(138) 0013/8000", "138*0013*8000"):
        masked = mask_text(f"Wang {text} x")
        assert "0013" not in masked and "138" in masked and masked.endswith("8000 x"), masked
    assert mask_text("138 0013 8000") == "138 **** 8000"            # separators stay where they stand


def test_short_numbers_stay_readable_and_local_numbers_are_mostly_hidden():
    assert mask_text("12345") == "12345" and mask_text("call 110") == "call 110" and mask_text("Agent 7") == "Agent 7"
    assert mask_number("6612345") == "6****45"                      # was 661**45: 5 of 7 digits visible
    assert mask_number("66123456") == "6*****56"
    assert mask_number("13812345678") == "138****5678" and mask_number("4951234567") == "495*****67"
    assert mask_number(None) == "" and mask_number("anonymous") == "anonymous"


def test_masking_twice_changes_nothing():
    for text in ("13812345678", "138 0013 8000", "6612345", "[13800138000] x"):
        assert mask_text(mask_text(text)) == mask_text(text)


def test_log_lines_mask_caller_names_with_separators():
    out = io.StringIO()
    configure_logging("info", "json", out)
    structlog.get_logger("t").info("x", caller="138-0013-8000", caller_name="Wang 138 0013 8000")
    line = json.loads(out.getvalue())
    assert line["caller"] == "138-****-8000" and line["caller_name"] == "Wang 138 **** 8000"


# separators: anything that is not a letter or a digit (what \W means, plus "_"), any length
SEPARATOR = st.text(st.characters(blacklist_categories=("L", "N", "Cs")) | st.just("_"), max_size=4)
DIGIT = st.sampled_from("0123456789０１２３４５６７８９")


@settings(max_examples=400, deadline=None)
@given(digits=st.lists(DIGIT, min_size=SHORT_KEPT + 1, max_size=20),
       seps=st.lists(SEPARATOR, min_size=19, max_size=19),
       before=st.sampled_from(["", "Wang ", "张三", "[12345] x "]), after=st.sampled_from(["", " x", "先生"]))
def test_no_long_run_of_a_number_survives_whatever_the_separators(digits, seps, before, after):
    text, positions = before, []
    for i, digit in enumerate(digits):
        if i:
            text += seps[i - 1]
        positions.append(len(text))
        text += digit
    text += after
    masked = mask_text(text)
    assert len(masked) == len(text)
    assert all(a == b or b == "*" for a, b in zip(text, masked))     # only digits become stars
    shown = [masked[p] == text[p] for p in positions]
    run = longest = 0
    for visible in shown:
        run = run + 1 if visible else 0
        longest = max(longest, run)
    assert longest <= MAX_VISIBLE_RUN
    assert shown.count(True) <= 7
    if not any("*" in sep for sep in seps):                          # (a star is a place of its own)
        assert shown.count(False) >= max(4, len(digits) - 7)       # most of it is hidden


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_is_masked_without_error_and_keeps_its_letters(text):
    masked = mask_text(text)
    assert len(masked) == len(text) and all(a == b or b == "*" for a, b in zip(text, masked))
    assert mask_text(masked) == masked


@settings(max_examples=400)
@given(st.text(alphabet="0123456789*", min_size=1, max_size=24))
def test_a_bare_run_of_digits_is_masked_as_the_regex_rule_masks_it(text):
    # mask_text takes a short way for the caller numbers of the call path (no regex, no cache): it must be the
    # rule itself, masked or not yet, of every length.
    from routing.privacy import _masked

    assert mask_text(text) == _masked(text)
