"""A compiled snapshot of the validated (table, menus): what a classic AGI process loads instead of parsing and
validating both YAML files again (pydantic, the cross-checks) in every process, one per call.

Safety, in this order:
- **Keyed by content.** The key hashes the two files' paths and exact text, this format's number, the field
  names of every value class and the source of the modules that build the values. An edited or moved file, or
  upgraded loaders, give another key, and a snapshot under any other key is not used: the caller validates
  the files as before.
- **Data, never code.** The file is JSON (the stdlib's parser: it builds strings, numbers, lists and dicts, and
  runs nothing). Objects are rebuilt only as instances of the value classes listed in `_CLASSES` (frozen
  dataclasses) and the enums in `_ENUMS`, with exactly their fields; a tag naming anything else, or other fields,
  makes the file unusable. A class whose constructor does nothing but store its fields (no __post_init__, every
  field in __init__) gets them stored directly, as its constructor would (issue 14: a third of the decoding
  time was the keyword calls); the values were checked when the snapshot was written. Pickle was not used: loading a pickle runs whatever callables the file names, and signing it would
  need a secret in Asterisk's environment, which the classic wrapper never has.
- **Checked when written.** `write()` refuses a snapshot whose decoding does not give back exactly the
  objects it was made from (equal, and encoding again to the same tags: types, time zones, mapping kinds).
Anything wrong with the file (missing, truncated, foreign, stale, unreadable) makes `read()` answer None with
the reason; the caller then validates the files, as it always did.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from ivr import menu_values
from routing import model

FORMAT = 1
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024

_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for module in (model, menu_values)
    for cls in vars(module).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
}
_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls
    for module in (model, menu_values)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, enum.Enum) and cls.__module__ == module.__name__
}
_FIELDS: dict[type, frozenset[str]] = {cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in _CLASSES.values()}
# Classes whose __init__ only stores the fields: decoded without calling it (the same instance, field for field).
_STORED_ONLY = frozenset(cls for cls in _CLASSES.values() if not hasattr(cls, "__post_init__")
                         and "__slots__" not in vars(cls) and all(f.init for f in dataclasses.fields(cls)))
# The shape of the values: a snapshot written by code whose classes had other fields is never read.
_SHAPE = ";".join(f"{name}:{','.join(f.name for f in dataclasses.fields(cls))}"
                  for name, cls in sorted(_CLASSES.items())) + ";" + ";".join(
    f"{name}:{','.join(m.value for m in cls)}" for name, cls in sorted(_ENUMS.items()))


# The code that turns the files into values: after an upgrade that changed any of it, the old snapshot is stale
# even for the same files (a loader fix may build other values from the same text).
_BUILDERS = ("routing/loader.py", "routing/checks.py", "routing/schema.py", "routing/model.py", "routing/hours.py",
             "routing/yamlsource.py", "ivr/menus.py", "ivr/menu_values.py", "routing/config_snapshot.py")


def _builders_digest() -> bytes:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _BUILDERS:
        try:
            digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
        except OSError:
            digest.update(name.encode() + b"\0missing\0")
    return digest.digest()


class SnapshotUnusable(Exception):
    """Why a snapshot file was not used (the caller validates the files instead)."""


def source_key(table_path: str | Path, table_text: str, menus_path: str | Path, menus_text: str) -> str:
    digest = hashlib.sha256(_builders_digest())
    for part in (f"format {FORMAT}", _SHAPE, str(table_path), table_text, str(menus_path), menus_text):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


# ------------------------------------------------------------------ encoding (values -> JSON-able data)

def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):                     # before str: the enums here are str enums
        name = type(value).__name__
        if _ENUMS.get(name) is not type(value):
            raise TypeError(f"enum {name} is not a snapshot value")
        return {"$e": name, "v": value.value}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _CLASSES.get(name) is not type(value):
            raise TypeError(f"{name} is not a snapshot value")
        return {"$c": name, "f": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, datetime):
        tz = value.tzinfo
        if tz is None:
            return {"$dt": value.isoformat()}
        if isinstance(tz, ZoneInfo):
            return {"$dt": value.replace(tzinfo=None).isoformat(), "tz": tz.key, "fold": value.fold}
        return {"$dt": value.isoformat()}                 # a fixed offset: ISO keeps it
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise TypeError("a time of day with a time zone is not a snapshot value")
        return {"$t": value.isoformat()}
    if isinstance(value, ZoneInfo):
        return {"$z": value.key}
    if isinstance(value, MappingProxyType):
        return {"$mp": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, dict):
        return {"$m": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$tu": [_encode(v) for v in value]}
    if isinstance(value, frozenset):
        # sorted: a set's order differs between processes, the snapshot of the same files must not
        return {"$fs": sorted((_encode(v) for v in value), key=lambda e: json.dumps(e, sort_keys=True))}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not a snapshot value")


# ------------------------------------------------------------------ decoding (data -> values, whitelisted)

def _decode(node: Any) -> Any:
    if isinstance(node, list):
        return [_decode(v) for v in node]
    if not isinstance(node, dict):
        return node                                       # str, int, float, bool, None
    if "$c" in node:
        cls = _CLASSES.get(node["$c"])
        if cls is None:
            raise SnapshotUnusable(f"unknown class {node['$c']!r}")
        values = node["f"]
        if values.keys() != _FIELDS[cls]:
            raise SnapshotUnusable(f"malformed: the fields of {node['$c']} differ")
        if cls not in _STORED_ONLY:
            return cls(**{k: _decode(v) for k, v in values.items()})
        obj = object.__new__(cls)
        obj.__dict__.update({k: _decode(v) for k, v in values.items()})   # frozen: __setattr__ would refuse
        return obj
    if "$e" in node:
        cls = _ENUMS.get(node["$e"])
        if cls is None:
            raise SnapshotUnusable(f"unknown enum {node['$e']!r}")
        return cls(node["v"])
    if "$tu" in node:
        return tuple(_decode(v) for v in node["$tu"])
    if "$mp" in node:
        return MappingProxyType({_decode(k): _decode(v) for k, v in node["$mp"]})
    if "$m" in node:
        return {_decode(k): _decode(v) for k, v in node["$m"]}
    if "$fs" in node:
        return frozenset(_decode(v) for v in node["$fs"])
    if "$dt" in node:
        at = datetime.fromisoformat(node["$dt"])
        return at.replace(tzinfo=ZoneInfo(node["tz"]), fold=node.get("fold", 0)) if "tz" in node else at
    if "$d" in node:
        return date.fromisoformat(node["$d"])
    if "$t" in node:
        return time.fromisoformat(node["$t"])
    if "$z" in node:
        return ZoneInfo(node["$z"])
    raise SnapshotUnusable(f"unknown node {sorted(node)[:3]}")


# ------------------------------------------------------------------ files

def write(path: str | Path, key: str, table: model.RoutingTable, menus: menu_values.Menus) -> None:
    """Atomically (write aside, then rename) and only if it decodes back to exactly these values."""
    data = {"format": FORMAT, "key": key, "table": _encode(table), "menus": _encode(menus)}
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    back = json.loads(text)
    table_back, menus_back = _decode(back["table"]), _decode(back["menus"])
    # equal values, and equal encodings (the tags carry every type: enum, mapping kind, time zone)
    if (table_back != table or menus_back != menus or _encode(table_back) != data["table"]
            or _encode(menus_back) != data["menus"]):
        raise ValueError("the snapshot does not decode back to the validated values")
    import tempfile                                       # here: a call that reads a snapshot never needs it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)                              # readable by Asterisk's user, which runs classic AGI
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read(path: str | Path, key: str) -> tuple[model.RoutingTable, menu_values.Menus]:
    """The values stored under `key`; SnapshotUnusable (with the reason) for anything else."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SNAPSHOT_BYTES + 1)
    except FileNotFoundError:
        raise SnapshotUnusable("no snapshot yet") from None
    except OSError as exc:
        raise SnapshotUnusable(f"unreadable: {exc}") from None
    if len(raw) > MAX_SNAPSHOT_BYTES:
        raise SnapshotUnusable("too big")
    try:
        data = json.loads(raw)
    except ValueError as exc:                             # truncated, not JSON, not UTF-8
        raise SnapshotUnusable(f"not a snapshot: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotUnusable("another format")
    if data.get("key") != key:
        raise SnapshotUnusable("stale: made from other files")
    try:
        table, menus = _decode(data["table"]), _decode(data["menus"])
    except SnapshotUnusable:
        raise
    except Exception as exc:                              # wrong fields, bad dates, ...: never half-used
        raise SnapshotUnusable(f"malformed: {type(exc).__name__}: {exc}") from None
    if not isinstance(table, model.RoutingTable) or not isinstance(menus, menu_values.Menus):
        raise SnapshotUnusable("malformed: not a table and menus")
    return table, menus
