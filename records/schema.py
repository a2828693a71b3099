"""SQL tables (SQLAlchemy 2.0 Core). Changes go through a new alembic revision in records/migrations/.

Caller numbers are never stored in clear: `caller_masked` for people, `caller_hash` (HMAC-SHA256 with the
deployment's key) for "all calls from this number" lookups; a callback number also encrypted (Fernet) until done.
Rows written from the spool are keyed by a record id (primary key) so a replay never writes twice.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text,
                        TypeDecorator, func)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if getattr(dialect, "name", "") == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


calls = Table(
    "calls", metadata,
    Column("uniqueid", String, primary_key=True),
    Column("dialed", String, nullable=False),
    Column("line", String, nullable=False),
    Column("caller_masked", String, nullable=True),
    Column("caller_hash", String(64), nullable=True),
    Column("arrived_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("ivr_path", Text, nullable=True),           # menus and keys joined with '>'
    Column("category", String, nullable=True),
    Column("rule_id", String, nullable=True),
    Column("action", String, nullable=True),
    Column("target", String, nullable=True),
    Column("tags", Text, nullable=True),               # joined with '+'
    Column("language", String(8), nullable=True),
    Column("wait_seconds", Float, nullable=True),
    Column("answered_by", String, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("hangup_cause", String, nullable=True),
    Column("table_version", String, nullable=True),
    Column("revision", Integer, nullable=False, default=0),
    # 0006: the queues the call went through, in order: [{queue, joined_at, left_at, wait, result}] (result
    # answered | abandoned | overflowed), and when an agent answered. Filled from AMI (records.outcomes).
    Column("queue_legs", JSON, nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    # 0007: seconds an agent talked (AgentComplete's TalkTime, else AgentConnect to Hangup): the handle time
    Column("talk_seconds", Float, nullable=True),
    # 0008: when the row reached this database, by the database's clock: other engines' caller counts read the
    # calls recorded since their last look (records.recorder.CallRecorder.refresh_counts)
    Column("recorded_at", UtcDateTime, nullable=True, server_default=func.current_timestamp()),
    Index(None, "caller_hash", "arrived_at"),
    Index(None, "line", "arrived_at"),
    Index(None, "arrived_at"),
    Index(None, "recorded_at"),
)

transfers = Table(
    "transfers", metadata,
    Column("record_id", String, primary_key=True),
    Column("uniqueid", String, nullable=False),        # no foreign key: the call row may arrive later
    Column("kind", String(16), nullable=False),
    Column("from_line", String, nullable=False),
    Column("first_line", String, nullable=False),      # the line that took the call first stays responsible
    Column("target_trunk", String, nullable=True),
    Column("target_queue", String, nullable=True),
    Column("agent", String, nullable=True),
    Column("work_order", String, nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=True),
    Index(None, "uniqueid"),
    Index(None, "started_at"),
)

work_orders = Table(
    "work_orders", metadata,
    Column("number", String(32), primary_key=True),    # WO-YYYYMMDD-NNNN
    Column("uniqueid", String, nullable=True),
    Column("line", String, nullable=False),
    Column("category", String, nullable=False),
    Column("target", String, nullable=False),          # sub-center trunk id or department id
    Column("department", String, nullable=True),
    Column("summary", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("dispatched_at", UtcDateTime, nullable=False),
    Column("dispatched_by", String, nullable=True),
    Column("sign_deadline", UtcDateTime, nullable=False),
    Column("signed_at", UtcDateTime, nullable=True),
    Column("signed_by", String, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("closed_by", String, nullable=True),
    Index(None, "status", "sign_deadline"),
)

callback_requests = Table(
    "callback_requests", metadata,
    Column("record_id", String, primary_key=True),
    Column("uniqueid", String, nullable=False),
    Column("line", String, nullable=False),
    Column("queue", String, nullable=False),
    Column("number_masked", String, nullable=False),
    Column("number_hash", String(64), nullable=False),
    Column("language", String(8), nullable=True),
    Column("requested_at", UtcDateTime, nullable=False),
    # 0002: the number for the agent who calls back, Fernet-encrypted (records.callbacks); erased once done.
    Column("number_encrypted", Text, nullable=True),
    Column("status", String(16), nullable=False, default="pending", server_default="pending"),
    Column("taken_by", String, nullable=True),
    Column("taken_at", UtcDateTime, nullable=True),
    Column("done_by", String, nullable=True),
    Column("done_at", UtcDateTime, nullable=True),
    Index(None, "requested_at"),
    Index(None, "status", "queue", "requested_at"),
)

table_versions = Table(
    "table_versions", metadata,
    Column("record_id", String, primary_key=True),
    Column("version", String, nullable=False),
    Column("loaded_by", String, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("content", Text, nullable=True),            # the text put in force (listed callers masked)
    Index(None, "loaded_at"),
)

supervisor_actions = Table(
    "supervisor_actions", metadata,
    Column("record_id", String, primary_key=True),     # records.types.SupervisorAction.action_id
    Column("at", UtcDateTime, nullable=False),
    Column("user", String, nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("params", JSON, nullable=False),            # queue, interface, reason...: never a caller number
    Column("result", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Index(None, "at"),
    Index(None, "user", "at"),
)

# 0005: manual override switches (records.switches). Written directly, not spooled: the state is what every
# engine reads, so a flip that cannot reach the database fails loudly instead of waiting in a spool.
switch_states = Table(
    "switch_states", metadata,
    Column("name", String(63), primary_key=True),      # the switch id in the routing table
    Column("active", Boolean, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("changed_by", String, nullable=False),
    Column("via", String(16), nullable=False),         # web | cli | phone
    Column("why", Text, nullable=False),
    Column("until", UtcDateTime, nullable=True),       # on until then (None: until switched off)
)

switch_events = Table(
    "switch_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),   # also the state's revision
    Column("at", UtcDateTime, nullable=False),
    Column("name", String(63), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("by", String, nullable=False),
    Column("via", String(16), nullable=False),
    Column("why", Text, nullable=False),
    Column("until", UtcDateTime, nullable=True),
    Index(None, "at"),
)

# Spool kinds -> (table, key column). The recorder's writer looks these up.
SPOOLED_TABLES = {
    "call": (calls, "uniqueid"),
    "transfer": (transfers, "record_id"),
    "callback": (callback_requests, "record_id"),
    "table_version": (table_versions, "record_id"),
    "supervisor_action": (supervisor_actions, "record_id"),
}
