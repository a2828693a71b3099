"""Masking of caller numbers: personal data under the plan's 谁管理、谁使用、谁负责 rule.

One rule for every caller-controlled text (the caller number, a caller name, a note): every *number* in it is
masked, where a number is a run of digits that may be broken up by separators, i.e. anything but a letter
(`138 0013 8000`, `138-0013-8000`, `(0898) 6612 345`, `138*0013*8000`). Logs (scripts/logsetup.py), records
(records/rows.py), the table audit (records/audit_text.py, which finds the phone-like runs in the admin's YAML
itself so that times, dates and ports stay readable, then masks them here) and the supervisors' view
(supervisor/state.py) all call this module, so what is hidden is the same everywhere.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

# A digit or an earlier mask star, then more of them across any separators that are not letters. Stars count
# as places, so masking twice changes nothing and `138*0013*8000` is one number, not three short ones. A leading
# `+` counts as a place too, so `+8613812345678` keeps `+86` as its visible head.
_NUMBER = re.compile(r"\+?[\d*](?:(?:[^\w*]|_)*[\d*])*")
_PLACE = re.compile(r"^\+|[\d*]")
SHORT_KEPT = 6      # service numbers (110, 12345, 95555) are not personal data and stay readable
MAX_VISIBLE_RUN = 4  # no more than this many consecutive digits of a longer number are ever shown


def _visible(places: int) -> tuple[int, int]:
    """How many places stay visible at the head and at the tail of a number of `places` digits."""
    if places >= 11:
        return 3, 4       # mobile and long landline: 138****5678 (the national convention)
    if places >= 10:
        return 3, 2       # 495*****67
    return 1, 2           # 7-9 digits, a local landline: 6****45 (most of it hidden)


def _mask_match(match: re.Match[str]) -> str:
    text = match.group()
    places = [m.start() for m in _PLACE.finditer(text)]
    if len(places) <= SHORT_KEPT:
        return text
    head, tail = _visible(len(places))
    chars = list(text)
    for index in places[head:len(places) - tail]:
        chars[index] = "*"
    return "".join(chars)


def mask_text(text: str | None) -> str:
    """Mask every number in `text` (see the module doc); letters and separators stay where they stand."""
    if not text:
        return ""
    text = str(text)
    if text.isascii() and not text.strip(_DIGITS_AND_STARS):
        return _masked_places(text)
    return _masked(text)


_DIGITS_AND_STARS = "0123456789*"


def _masked_places(text: str) -> str:
    """The rule for a text that is one run of places (digits and earlier stars: a caller number, masked or not),
    without the regex: the common case on the call path, where the cache rarely helps (a new caller each call)."""
    places = len(text)
    if places <= SHORT_KEPT:
        return text
    head, tail = _visible(places)
    return text[:head] + "*" * (places - head - tail) + text[places - tail:]


@lru_cache(maxsize=4096)
def _masked(text: str) -> str:
    # Cached: a call's log lines mask the same caller fields again and again (the regex is most of the cost).
    return _NUMBER.sub(_mask_match, text)


def mask_number(number: str | None) -> str:
    """Keep enough to recognise a line or region, hide the subscriber: 13812345678 -> 138****5678.

    The same rule as mask_text: a caller number is caller-controlled text too.
    """
    return mask_text(number)


def caller_hash(number: str, key: bytes) -> str:
    """Keyed hash for lookups ("all calls from this caller") without storing the number."""
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()
