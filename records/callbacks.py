"""Callback requests an agent can act on: the number is stored encrypted (Fernet), shown masked in lists, and
decrypted only when an agent takes the request (once: pending -> taken), then erased when it is done. Each take
and done (and each refused attempt) is a row in the audit trail, `supervisor_actions`, role "agent".

The key comes from records.keys (HOTLINE_CALLBACK_KEY or var/callback.key). Encryption happens before the
spool (records.rows.callback_row): the clear number never reaches disk, SQL or a log.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine, select, update

from records.schema import callback_requests

log = structlog.get_logger("records")


class CallbackStatus(str, enum.Enum):
    PENDING = "pending"      # waiting for an agent
    TAKEN = "taken"          # an agent has the number and calls back
    DONE = "done"            # called back (or settled); the encrypted number is erased


class CallbackKeyError(Exception):
    """The callback key is malformed, or is not the key the number was encrypted with."""


class CallbackError(Exception):
    """A request that does not exist, or is not in a state that allows the step."""


KEY_HELP = ("HOTLINE_CALLBACK_KEY or var/callback.key must hold a Fernet key (32 url-safe base64-encoded bytes), "
            "e.g. from: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


class CallbackCipher:
    """Fernet over the configured key. Several keys separated by commas rotate it: the first one encrypts,
    each one decrypts (add the new key in front, keep the old one until no pending request needs it)."""

    def __init__(self, key: bytes | str) -> None:
        text = key.decode("utf-8") if isinstance(key, bytes) else key
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise CallbackKeyError(f"the callback key is empty: {KEY_HELP}")
        try:
            self._fernet = MultiFernet([Fernet(part.encode("ascii")) for part in parts])
        except (ValueError, UnicodeEncodeError):
            raise CallbackKeyError(f"the callback key is not a Fernet key: {KEY_HELP}") from None

    def __repr__(self) -> str:
        return "CallbackCipher(<key hidden>)"

    def encrypt(self, number: str) -> str:
        return self._fernet.encrypt(number.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise CallbackKeyError(
                "this callback number cannot be decrypted with the configured callback key: it was encrypted "
                "with another key (HOTLINE_CALLBACK_KEY or var/callback.key changed?). Configure the old key "
                "too, comma-separated after the new one.") from None


@dataclass(frozen=True)
class Callback:
    record_id: str
    uniqueid: str
    line: str
    queue: str
    number_masked: str
    language: str | None
    requested_at: datetime
    status: CallbackStatus
    taken_by: str | None
    taken_at: datetime | None
    done_at: datetime | None
    done_by: str | None
    has_number: bool              # False for requests recorded before numbers were stored, or once done

    @classmethod
    def from_row(cls, row: Any) -> "Callback":
        return cls(record_id=row["record_id"], uniqueid=row["uniqueid"], line=row["line"], queue=row["queue"],
                   number_masked=row["number_masked"], language=row["language"],
                   requested_at=row["requested_at"], status=CallbackStatus(row["status"]),
                   taken_by=row["taken_by"], taken_at=row["taken_at"], done_at=row["done_at"],
                   done_by=row["done_by"], has_number=row["number_encrypted"] is not None)


def list_callbacks(engine: Engine, *, queue: str | None = None, status: str | None = None,
                   limit: int | None = None) -> list[Callback]:
    """Oldest first (the first to call back); masked numbers only."""
    query = select(callback_requests).order_by(callback_requests.c.requested_at, callback_requests.c.record_id)
    if queue:
        query = query.where(callback_requests.c.queue == queue)
    if status:
        query = query.where(callback_requests.c.status == CallbackStatus(status).value)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [Callback.from_row(row) for row in conn.execute(query).mappings()]


def _find(conn: Connection, ident: str) -> Any:
    """By record id, else by the call's uniqueid when that call has exactly one request."""
    row = conn.execute(select(callback_requests).where(callback_requests.c.record_id == ident)).mappings().first()
    if row is not None:
        return row
    rows = conn.execute(select(callback_requests).where(callback_requests.c.uniqueid == ident)).mappings().all()
    if not rows:
        raise CallbackError(f"no callback request {ident!r} (give its id or its call's uniqueid)")
    if len(rows) > 1:
        ids = ", ".join(r["record_id"] for r in rows)
        raise CallbackError(f"call {ident!r} has {len(rows)} callback requests: give one of the ids {ids}")
    return rows[0]


def take(engine: Engine, ident: str, *, agent: str, at: datetime, cipher: CallbackCipher) -> tuple[Callback, str]:
    """Mark a pending request taken by `agent` and return it with its clear number. Only one agent ever gets the
    number: the state change is a conditional UPDATE. Nothing changes if the number cannot be decrypted."""
    if not agent.strip():
        raise CallbackError("an agent name is required to take a callback")
    try:
        return _take(engine, ident, agent=agent, at=at, cipher=cipher)
    except (CallbackError, CallbackKeyError) as exc:
        _audit_refusal(engine, at, agent, "callback_take", ident, exc)
        raise


def _take(engine: Engine, ident: str, *, agent: str, at: datetime, cipher: CallbackCipher) -> tuple[Callback, str]:
    with engine.begin() as conn:
        row = _find(conn, ident)
        _refuse_unless_pending(row)
        if row["number_encrypted"] is None:
            raise CallbackError(f"callback {row['record_id']} has no stored number (recorded before numbers were "
                                f"kept): only {row['number_masked']} is known")
        number = cipher.decrypt(row["number_encrypted"])     # raises before anything is written
        changed = conn.execute(
            update(callback_requests)
            .where(callback_requests.c.record_id == row["record_id"],
                   callback_requests.c.status == CallbackStatus.PENDING.value)
            .values(status=CallbackStatus.TAKEN.value, taken_by=agent, taken_at=at)).rowcount
        if changed != 1:   # another agent took it between our read and our update
            _refuse_unless_pending(_find(conn, row["record_id"]))
            raise CallbackError(f"callback {row['record_id']} changed while taking it: try again")
        taken = _find(conn, row["record_id"])
        _audit(conn, at, agent, "callback_take", taken, "ok", "number shown to the agent")
    log.info("callbacks.taken", record_id=taken["record_id"], queue=taken["queue"], agent=agent,
             number=taken["number_masked"])
    return Callback.from_row(taken), number


def _refuse_unless_pending(row: Any) -> None:
    status = row["status"]
    if status == CallbackStatus.TAKEN.value:
        raise CallbackError(f"callback {row['record_id']} was already taken by {row['taken_by']} at "
                            f"{row['taken_at']:%Y-%m-%d %H:%M:%S %Z}: the number is shown only once")
    if status == CallbackStatus.DONE.value:
        raise CallbackError(f"callback {row['record_id']} is done already")


def done(engine: Engine, ident: str, *, at: datetime, by: str | None = None) -> Callback:
    """Close a request (taken or still pending, e.g. a duplicate) and erase its encrypted number."""
    try:
        return _done(engine, ident, at=at, by=by)
    except CallbackError as exc:
        _audit_refusal(engine, at, by or "-", "callback_done", ident, exc)
        raise


def _done(engine: Engine, ident: str, *, at: datetime, by: str | None) -> Callback:
    with engine.begin() as conn:
        row = _find(conn, ident)
        if row["status"] == CallbackStatus.DONE.value:
            raise CallbackError(f"callback {row['record_id']} is done already")
        conn.execute(update(callback_requests)
                     .where(callback_requests.c.record_id == row["record_id"],
                            callback_requests.c.status != CallbackStatus.DONE.value)
                     .values(status=CallbackStatus.DONE.value, done_at=at, done_by=by, number_encrypted=None))
        closed = _find(conn, row["record_id"])
        _audit(conn, at, by or "-", "callback_done", closed, "ok", "")
    log.info("callbacks.done", record_id=closed["record_id"], queue=closed["queue"], by=by)
    return Callback.from_row(closed)


# --- the audit trail (supervisor_actions): who took or closed which request, and who was refused --------
def _audit(conn: Connection, at: datetime, user: str, action: str, row: Any, result: str, message: str) -> None:
    from records.actions import write_action
    from records.types import SupervisorAction

    write_action(conn, SupervisorAction(at=at, user=user, role="agent", action=action, result=result,
                                        message=message, params={"id": row["record_id"], "queue": row["queue"]}))


def _audit_refusal(engine: Engine, at: datetime, user: str, action: str, ident: str, exc: Exception) -> None:
    """A refused take (already taken, wrong key) is worth knowing about; failing to note it changes nothing."""
    try:
        with engine.begin() as conn:
            _audit(conn, at, user, action, {"record_id": ident, "queue": None}, "error", str(exc)[:300])
    except Exception as audit_exc:  # noqa: BLE001 - the refusal itself is what the caller must see
        log.warning("callbacks.audit_failed", action=action, error=type(audit_exc).__name__)
