"""'Did you mean ...?' for near-miss keys, ids and numbers (difflib's ratio: one or two letters off)."""
from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Iterable, Iterator, Union, get_args, get_origin

from pydantic import BaseModel


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest candidates (ratio >= 0.6), best first; ties in their natural order (1234: 12345, 12348)."""
    scored = []
    for candidate in set(map(str, candidates)):
        matcher = difflib.SequenceMatcher(None, str(word), candidate)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and matcher.ratio() >= 0.6:
            scored.append((-matcher.ratio(), candidate))
    return [candidate for _, candidate in sorted(scored)[:n]]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' (or 'x' or 'y'), or '' when nothing is close: appended to an error message."""
    found = close_matches(word, candidates)
    if not found:
        return ""
    return "; did you mean " + " or ".join(f"'{m}'" for m in found) + "?"


def keys_at(model: Any, loc: tuple) -> set[str]:
    """The keys a pydantic model accepts at `loc` (a validation error's location of the mapping), as written
    in YAML (aliases). Empty when the path cannot be followed; best effort, for suggestions only."""
    return set(_keys(model, tuple(loc)))


def _keys(annotation: Any, loc: tuple) -> Iterator[str]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        yield from _keys(args[0], loc)
    elif origin in (Union, UnionType):
        for arg in args:
            yield from _keys(arg, loc)
    elif origin in (list, tuple, dict, Mapping, Sequence):
        if loc:
            item = args[1] if origin in (dict, Mapping) else args[0]
            yield from _keys(item, loc[1:])
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if loc and isinstance(loc[0], str) and (loc[0] == annotation.__name__ or loc[0].startswith("function-")):
            loc = loc[1:]                     # pydantic's tag of a union member or validator, not a key
        fields = annotation.model_fields
        if not loc:
            yield from (field.alias or name for name, field in fields.items())
            return
        for name, field in fields.items():
            if loc[0] in (name, field.alias):
                yield from _keys(field.annotation, loc[1:])
