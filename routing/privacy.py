"""Masking of caller numbers: personal data under the plan's 谁管理、谁使用、谁负责 rule."""
from __future__ import annotations

import hashlib
import hmac


def mask_number(number: str | None) -> str:
    """Keep enough to recognise a line or region, hide the subscriber: 13812345678 -> 138****5678.

    Short service numbers (110, 12345) are not personal data and stay readable.
    """
    if not number:
        return ""
    digits = str(number)
    if len(digits) <= 6:
        return digits
    keep_head = 3
    keep_tail = 4 if len(digits) >= 11 else 2
    return digits[:keep_head] + "*" * (len(digits) - keep_head - keep_tail) + digits[-keep_tail:]


def caller_hash(number: str, key: bytes) -> str:
    """Keyed hash for lookups ("all calls from this caller") without storing the number."""
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()
