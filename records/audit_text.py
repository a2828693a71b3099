"""The text of a routing table or menus file as the audit trail stores it (`table_versions.content`), with the
personal data masked wherever it stands. Every stored text passes here (records.rows.table_version_row).

The rule (one pass over every "phone-like run": digits, optionally `+` first, with at most one space, `-` or
`.` between two digits, e.g. `13800138000`, `138 0013 8000`, `+86-138-0013-8000`):

- a run whose digits are, or contain, or are part of a listed caller's number (`abuse.listed[*].number`, written
  in any YAML form: plain, quoted, block scalar) is masked anywhere in the text;
- in comments and in the listed callers' `reason`s, every run of 7 digits or more is masked (a number someone
  wrote down there is personal data until shown otherwise), except a calendar date written `YYYY-MM-DD`;
- everything else (line numbers, times, hosts, dates, expiries) is kept verbatim, so a diff of two versions
  shows what changed. Masking is `routing.privacy.mask_number` on the digits (6 digits or fewer stay readable),
  separators kept in place, so the text keeps its length, lines and columns.

A text that is not YAML (it cannot have been loaded either) has every run of 7 digits or more masked.
"""
from __future__ import annotations

import bisect
import re
from typing import Any, Iterable

import yaml

from routing.privacy import mask_number

PHONE_LIKE = re.compile(r"\+?\d(?:[ .\-]?\d)*")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MIN_FREE_TEXT_DIGITS = 7        # fewer: a service number (110, 12345), a count, a time; not a person's number


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def mask_run(run: str) -> str:
    """Mask the digits of a run in place: separators and `+` stay where they are."""
    masked = iter(mask_number(_digits(run)))
    return "".join(next(masked) if ch.isdigit() else ch for ch in run)


def _listed_numbers_and_reasons(root: Any) -> tuple[list[str], list[tuple[int, int]]]:
    numbers: list[str] = []
    reasons: list[tuple[int, int]] = []
    abuse = _child(root, "abuse")
    listed = _child(abuse, "listed")
    if isinstance(listed, yaml.SequenceNode):
        for entry in listed.value:
            number, reason = _child(entry, "number"), _child(entry, "reason")
            if isinstance(number, yaml.ScalarNode) and len(_digits(number.value)) >= MIN_FREE_TEXT_DIGITS:
                numbers.append(_digits(number.value))
            if isinstance(reason, yaml.ScalarNode):
                reasons.append((reason.start_mark.index, reason.end_mark.index))
    return numbers, reasons


def _child(node: Any, key: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _comments(text: str, tokens: Iterable[yaml.Token]) -> list[tuple[int, int]]:
    """Comment spans: a `#` outside every token (so not inside a quoted or block scalar), at a line start or after
    blank space, up to the end of its line."""
    spans = sorted((t.start_mark.index, t.end_mark.index) for t in tokens if t.end_mark.index > t.start_mark.index)
    starts = [s for s, _ in spans]
    comments = []
    position = 0
    while (hash_at := text.find("#", position)) != -1:
        end = text.find("\n", hash_at)
        end = len(text) if end == -1 else end
        i = bisect.bisect_right(starts, hash_at) - 1
        inside = i >= 0 and spans[i][0] <= hash_at < spans[i][1]
        if not inside and (hash_at == 0 or text[hash_at - 1] in " \t\n\r"):
            comments.append((hash_at, end))
            position = end
        else:
            position = hash_at + 1
    return comments


def _within(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= start and end <= e for s, e in spans)


def mask_config_text(text: str) -> str:
    try:
        tokens = list(yaml.scan(text, Loader=yaml.SafeLoader))
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError, RecursionError):
        return PHONE_LIKE.sub(lambda m: mask_run(m.group()) if len(_digits(m.group())) >= MIN_FREE_TEXT_DIGITS
                              else m.group(), text)
    listed, reasons = _listed_numbers_and_reasons(root)
    free_text = _comments(text, tokens) + reasons

    def replace(match: re.Match[str]) -> str:
        run = match.group()
        digits = _digits(run)
        if len(digits) >= MIN_FREE_TEXT_DIGITS and any(n in digits or digits in n for n in listed):
            return mask_run(run)
        if (len(digits) >= MIN_FREE_TEXT_DIGITS and not ISO_DATE.fullmatch(run)
                and _within(free_text, match.start(), match.end())):
            return mask_run(run)
        return run

    return PHONE_LIKE.sub(replace, text)
