"""Records -> JSON-safe rows, the form they take in the spool and in SQL.

Masking, hashing and (callback numbers) encryption happen here, before the spool: a clear caller number never
reaches disk.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from routing.privacy import caller_hash, mask_number

from records.audit_text import mask_config_text
from records.callbacks import CallbackCipher
from records.schema import SPOOLED_TABLES, UtcDateTime
from records.types import CallbackRequest, CallRecord, SupervisorAction, TableVersion, TransferRecord

Row = dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _value(enum_or_none: Any) -> Any:
    return getattr(enum_or_none, "value", enum_or_none)


def call_row(rec: CallRecord, key: bytes) -> Row:
    return {
        "uniqueid": rec.uniqueid,
        "dialed": rec.dialed,
        "line": rec.line,
        "caller_masked": mask_number(rec.caller) if rec.caller else None,
        "caller_hash": caller_hash(rec.caller, key) if rec.caller else None,
        "arrived_at": _iso(rec.arrived_at),
        "ended_at": _iso(rec.ended_at),
        "ivr_path": ">".join(rec.ivr_path) if rec.ivr_path else None,
        "category": _value(rec.category),
        "rule_id": rec.rule_id,
        "action": _value(rec.action),
        "target": rec.target,
        "tags": "+".join(rec.tags) if rec.tags else None,
        "language": rec.language,
        "wait_seconds": rec.wait_seconds,
        "answered_by": rec.answered_by,
        "outcome": _value(rec.outcome),
        "hangup_cause": rec.hangup_cause,
        "table_version": rec.table_version,
        "revision": rec.revision,
        "queue_legs": [dict(leg) for leg in rec.queue_legs] or None,
        "answered_at": _iso(rec.answered_at),
        "talk_seconds": rec.talk_seconds,
    }


def transfer_row(rec: TransferRecord) -> Row:
    return {
        "record_id": rec.record_id,
        "uniqueid": rec.uniqueid,
        "kind": _value(rec.kind),
        "from_line": rec.from_line,
        "first_line": rec.first_line,
        "target_trunk": rec.target_trunk,
        "target_queue": rec.target_queue,
        "agent": rec.agent,
        "work_order": rec.work_order,
        "started_at": _iso(rec.started_at),
        "ended_at": _iso(rec.ended_at),
        "outcome": _value(rec.outcome),
    }


def callback_row(rec: CallbackRequest, key: bytes, cipher: CallbackCipher) -> Row:
    """Encrypted here, before the spool: the number an agent will call is on disk only as a Fernet token."""
    return {
        "record_id": rec.record_id,
        "uniqueid": rec.uniqueid,
        "line": rec.line,
        "queue": rec.queue,
        "number_masked": mask_number(rec.number),
        "number_hash": caller_hash(rec.number, key),
        "number_encrypted": cipher.encrypt(rec.number),
        "status": "pending",
        "language": rec.language,
        "requested_at": _iso(rec.requested_at),
    }


def table_version_row(rec: TableVersion) -> Row:
    return {
        "record_id": rec.record_id,
        "version": rec.version,
        "loaded_by": rec.loaded_by,
        "loaded_at": _iso(rec.loaded_at),
        "source": rec.source,
        "content": mask_config_text(rec.content) if rec.content else rec.content,   # listed callers, notes
    }


def supervisor_action_row(rec: SupervisorAction) -> Row:
    return {
        "record_id": rec.record_id,
        "at": _iso(rec.at),
        "user": rec.user,
        "role": rec.role[:16],           # the column widths: an overlong name is cut, never refused
        "action": rec.action[:32],
        "params": {key: value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
                   for key, value in rec.params.items()},
        "result": rec.result,
        "message": rec.message,
    }


def sql_params(kind: str, row: Row) -> Row:
    """A spooled row with its ISO timestamps parsed back into datetimes; unknown keys are an error."""
    known, columns = _columns(kind)
    if not known.issuperset(row):
        raise ValueError(f"{kind} row has unknown fields: {sorted(set(row) - known)}")
    params = dict(row)
    for key, filled_by_database, required, default, is_time in columns:
        if key not in params:
            if filled_by_database:
                continue                    # the database fills it (calls.recorded_at: its own clock)
            if required:
                raise ValueError(f"{kind} row lacks required field {key!r}")
            params[key] = default
        elif is_time:
            value = params[key]
            if isinstance(value, str):
                params[key] = datetime.fromisoformat(value)
    return params


@lru_cache(maxsize=None)
def _columns(kind: str) -> tuple[frozenset[str], tuple[tuple[str, bool, bool, Any, bool], ...]]:
    """Per kind, once (the flush reads thousands of rows a second): the column keys, and per column (key, filled
    by the database, required, default, a UtcDateTime)."""
    table, _key = SPOOLED_TABLES[kind]
    return frozenset(table.c.keys()), tuple(
        (column.key, column.server_default is not None,
         not column.nullable and column.default is None and column.server_default is None,
         column.default.arg if column.default is not None else None, isinstance(column.type, UtcDateTime))
        for column in table.c)
