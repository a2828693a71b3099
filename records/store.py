"""Idempotent writes of spooled rows: a record id already present is left alone (calls: merged, routing facts
from the first record that has them, outcome facts from the highest revision), so replaying the spool after
a crash or an outage never writes a record twice and never changes a row it already wrote.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection, case, func
from sqlalchemy.dialects import postgresql, sqlite

from records.schema import SPOOLED_TABLES, calls

# Facts known once the call is over; a later revision of the same call fills or replaces them.
OUTCOME_FIELDS = ("ended_at", "wait_seconds", "answered_by", "outcome", "hangup_cause", "queue_legs", "answered_at",
                  "talk_seconds")
# Facts from the routing decision: the first record that has them wins.
ROUTING_FIELDS = ("caller_masked", "caller_hash", "ivr_path", "category", "rule_id", "action", "target", "tags",
                  "language", "table_version")


def _insert_for(conn: Connection):
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {name!r}: use SQLite or PostgreSQL")


def write_rows(conn: Connection, kind: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert-or-ignore (calls: insert-or-merge by revision) for one kind, in the caller's transaction."""
    if not rows:
        return
    table, key = SPOOLED_TABLES[kind]
    stmt = _insert_for(conn)(table)
    if table is calls:
        # A merge that is its own replay: applying the same record again yields the same row.
        excluded = stmt.excluded
        newer = excluded.revision >= calls.c.revision
        merged = {name: case((newer, func.coalesce(excluded[name], calls.c[name])), else_=calls.c[name])
                  for name in OUTCOME_FIELDS}
        merged.update({name: func.coalesce(calls.c[name], excluded[name]) for name in ROUTING_FIELDS})
        merged["revision"] = case((newer, excluded.revision), else_=calls.c.revision)
        stmt = stmt.on_conflict_do_update(index_elements=[key], set_=merged)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=[key])
    for wave in _waves(rows, key) if table is calls else [list(rows)]:
        conn.execute(stmt, wave)


def _waves(rows: Sequence[dict[str, Any]], key: str) -> list[list[dict[str, Any]]]:
    """Split rows so no key appears twice in one statement (PostgreSQL refuses to update a row twice in one
    INSERT ... ON CONFLICT DO UPDATE); lower revisions go first."""
    waves: list[list[dict[str, Any]]] = []
    seen: dict[Any, int] = {}
    for row in sorted(rows, key=lambda r: r.get("revision") or 0):
        index = seen.get(row[key], 0)
        seen[row[key]] = index + 1
        if index == len(waves):
            waves.append([])
        waves[index].append(row)
    return waves
