"""CallRecorder: spool first, SQL in the background, never blocks a call, never loses a record.

How the engine runs it (asyncio):

    recorder = CallRecorder(settings.db_url, settings.spool_dir, key_from_settings(settings),
                            callback_key=callback_key_from_settings(settings))
    task = asyncio.create_task(recorder.run())     # flushes every `flush_interval`, backs off while the DB is down
    ...  history = recorder.note_arrival(caller, uniqueid, at, minutes)   # the abuse count: memory only
    ...  await recorder.submit(rec)                # from the call's handler: durable (fsync'd) when it resolves
    task.cancel(); recorder.close()                # at shutdown: one bounded last flush; the rest stays spooled

`submit` goes through the group committer (records.group_commit): the records of calls that end together
share one write() and one fsync(), with no thread hop per call. `record_*` is the synchronous form, durable
on return (classic AGI: a process per call): one local append + fsync. The flush runs in a worker thread
(asyncio.to_thread); every database operation is bounded: connect timeout, SQLite busy timeout, and a
watchdog that cuts a PostgreSQL socket that stalls (a network that drops packets). Records stay in the spool
until their batch committed; writes are idempotent by record id, so a replay after a crash or an outage
writes each record exactly once.

The abuse rule's caller counts live in memory (records.caller_counts): each call is noted at its arrival;
the flush cycle seeds them from SQL at start and then merges the calls other engines sharing the database
recorded since its last look (by calls.recorded_at), each call counted once by its uniqueid. With the
database away the counts go on from memory. `caller_history` is the SQL count, for classic AGI.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import structlog
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from routing.model import CallerHistory
from routing.privacy import caller_hash

from records.callbacks import CallbackCipher
from records.caller_counts import CallerCounts
from records.db import make_engine, sqlite_path, upgrade
from records.group_commit import GroupCommitter
from records.rows import call_row, callback_row, sql_params, table_version_row, transfer_row
from records.schema import calls
from records.spool import Entry, Spool
from records.store import write_rows
from records.types import CallbackRequest, CallRecord, TableVersion, TransferRecord

log = structlog.get_logger("records")

# Records per spool segment and per SQL transaction: a segment (at most a second of calls: every flush seals
# the open one) is written in one transaction. Each commit fsyncs (SQLite's WAL, PostgreSQL's log): at 500
# per transaction the commits were a third of the flush's CPU under make bench's load (~2,000 calls/s).
BATCH = 5000

# Errors that belong to one record, not to the database being away: that record is set aside (rejected.jsonl).
RECORD_ERRORS = (IntegrityError, DataError, ValueError, TypeError, KeyError)


def _is_record_error(exc: BaseException) -> bool:
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True   # a value that cannot be bound (e.g. a naive datetime): the record, not the database
    return isinstance(exc, RECORD_ERRORS)


class SpooledWriter:
    """The spool-then-SQL machinery, for any kind in records.schema.SPOOLED_TABLES: `_append` is local and
    durable, `flush` writes sealed segments idempotently, `run` flushes forever with back-off."""

    def __init__(self, db_url: str, spool_dir: Path, *, batch_size: int = BATCH, flush_interval: float = 1.0,
                 max_backoff: float = 30.0, op_timeout: float = 5.0, auto_upgrade: bool | None = None,
                 segment_records: int = BATCH) -> None:
        self._engine = make_engine(db_url, op_timeout=op_timeout, pre_ping=False)
        self._spool = Spool(Path(spool_dir), segment_records=segment_records)
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_backoff = max_backoff
        self._op_timeout = op_timeout
        self._upgrade = sqlite_path(db_url) is not None if auto_upgrade is None else auto_upgrade
        self._schema_ready = False
        self._flush_lock = threading.Lock()
        self._healthy = True            # last database operation succeeded
        self._unspooled: list[Entry] = []   # only if the spool itself failed (disk full): kept in memory
        self._unspooled_lock = threading.Lock()
        self.written = 0                # records committed by this writer (including replays ignored as duplicates)
        self._committer = GroupCommitter(self._spool.append_lines, self._keep_in_memory)

    def _append(self, kind: str, row: dict[str, Any]) -> None:
        """Durable on return (fsync'd, or kept in memory if the spool's disk failed)."""
        try:
            self._spool.append(kind, row)
        except (OSError, RuntimeError) as exc:   # disk trouble, or recording after close()
            self._keep_in_memory([Entry(kind, row)], exc)

    def _submit(self, kind: str, row: dict[str, Any]) -> asyncio.Future:
        """As `_append`, from a coroutine: the future resolves once the record is durable, written with the
        others submitted meanwhile in one write() and one fsync()."""
        loop = asyncio.get_running_loop()        # outside a coroutine: raises, before anything is kept anywhere
        entry = Entry(kind, row)
        try:
            return self._committer.submit(Spool.encode(kind, row), entry)
        except RuntimeError as exc:              # submitted after close()
            self._keep_in_memory([entry], exc)
            done = loop.create_future()
            done.set_result(None)
            return done

    def _keep_in_memory(self, entries: list[Entry], exc: BaseException) -> None:
        # The spool's disk failed: keep the records in memory and let the flush try the database directly.
        log.error("records.spool_write_failed", kind=entries[0].kind if len(entries) == 1 else "several",
                  records=len(entries), error=str(exc),
                  effect="kept in memory: written to the database, or to the spool once it has room")
        with self._unspooled_lock:
            self._unspooled.extend(entries)

    @property
    def healthy(self) -> bool:
        return self._healthy

    # --- the flush --------------------------------------------------------------------------------
    def flush(self) -> int:
        """Write every sealed spool segment; returns the records taken out of the spool (committed, or set aside
        in rejected.jsonl because the database refuses that record). Never raises for database trouble:
        the records stay spooled and `healthy` turns false until a later flush succeeds."""
        with self._flush_lock:
            self._respool()
            written = 0
            try:
                self._ensure_schema()
                written += self._flush_unspooled()
                self._spool.seal()
                for path in self._spool.segments():
                    written += self._flush_segment(path)
                if not self._healthy and not written:
                    # Nothing to write: ask the database itself before declaring it back.
                    self._guarded(lambda conn: conn.execute(text("SELECT 1")), self._op_timeout, False)
            except Exception as exc:  # noqa: BLE001 - any failure to reach the database: retry later
                self._set_health(False, exc)
                self.written += written
                return written
            self._set_health(True)
            self.written += written
            if written:
                log.debug("records.flushed", records=written)
            return written

    def prepare_schema(self) -> bool:
        """Create/upgrade the schema now where this writer owns it (SQLite: a local file, quick), so that readers
        started beside it (the web view) never meet a database without its tables. Never raises: on failure the
        first flush tries again (and says so); returns whether the schema is ready."""
        if not self._upgrade:
            return self._schema_ready
        try:
            with self._flush_lock:
                self._ensure_schema()
        except Exception as exc:  # noqa: BLE001 - the flush retries with its back-off
            log.warning("records.schema_not_ready", error=_short(exc), effect="the first flush tries again")
        return self._schema_ready

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        if self._upgrade:
            upgrade(self._engine)
        self._schema_ready = True

    def _respool(self) -> None:
        """Records kept in memory because the spool's disk failed go back to the spool once it takes them again
        (durable again, whether or not the database is there)."""
        with self._unspooled_lock:
            pending = list(self._unspooled)
        moved = 0
        for entry in pending:
            try:
                self._spool.append(entry.kind, entry.row)
            except (OSError, RuntimeError):
                break
            moved += 1
        if moved:
            with self._unspooled_lock:
                del self._unspooled[:moved]
            log.info("records.spool_writable_again", respooled=moved, in_memory=len(pending) - moved)

    def _flush_unspooled(self) -> int:
        # Left in the list until committed: a reader (ActionRecorder.recent) never finds them in neither place.
        with self._unspooled_lock:
            pending = list(self._unspooled)
        self._write_entries(pending)
        with self._unspooled_lock:
            del self._unspooled[:len(pending)]      # appends only ever go to the end
        return len(pending)

    def _flush_segment(self, path: Path) -> int:
        with self._spool.take(path) as segment:
            if segment is None:
                return 0    # being written, or another process is flushing it
            entries = list(segment.entries)
            for start in range(0, len(entries), self._batch_size):
                self._write_entries(entries[start:start + self._batch_size])
            if segment.bad_lines:      # set aside once, when the segment is done
                log.error("records.spool_bad_lines", segment=path.name, lines=len(segment.bad_lines))
                self._spool.reject(list(segment.bad_lines), "undecodable spool line")
            self._spool.remove(path)   # trimmed only after every batch of it committed
            return len(entries)

    def _write_entries(self, entries: list[Entry]) -> None:
        if not entries:
            return
        try:
            self._guarded(lambda conn: _write_batch(conn, entries), self._op_timeout, True)
            # Healthy as soon as a batch committed, before its segment is trimmed: a reader that no longer finds
            # the records in the spool then reads them from SQL (no window where written records are invisible).
            self._set_health(True)
        except Exception as exc:
            if not _is_record_error(exc):
                raise
            self._set_health(True)      # the database answered: it refused a record, it is not away
            # One bad record must not hold back the others: write one by one, set aside what is refused.
            for entry in entries:
                try:
                    self._guarded(lambda conn, e=entry: _write_batch(conn, [e]), self._op_timeout, True)
                except Exception as exc:  # noqa: BLE001 - sorted just below
                    if not _is_record_error(exc):
                        raise
                    log.error("records.record_rejected", kind=entry.kind, error=_short(exc))
                    self._spool.reject([json.dumps({"kind": entry.kind, "row": entry.row}, ensure_ascii=False)],
                                       _short(exc))

    def _guarded(self, work: Callable[[Connection], Any], timeout: float, transaction: bool) -> Any:
        """Run `work` on a connection; if it stalls past `timeout`, cut the socket so the call returns."""
        with self._engine.connect() as conn:
            done = threading.Event()
            timer = threading.Timer(timeout, lambda: done.is_set() or _cut(conn))
            timer.daemon = True
            timer.start()
            try:
                if transaction:
                    with conn.begin():
                        return work(conn)
                return work(conn)
            finally:
                done.set()
                timer.cancel()

    def _set_health(self, healthy: bool, exc: BaseException | None = None) -> None:
        if healthy and not self._healthy:
            log.info("records.database_back", spooled_segments=self._spool.pending_segments())
        elif not healthy and self._healthy:
            log.warning("records.database_unavailable", error=_short(exc),
                        spooled_segments=self._spool.pending_segments(),
                        effect="records stay in the spool and are written when the database returns")
        if not healthy:
            # Never retry on the pooled connections of a failure: a SQLite connection opened while the file was
            # read-only stays read-only for its life, a PostgreSQL one may be half dead. The next try reconnects.
            self._engine.dispose()
        self._healthy = healthy

    # --- lifecycle ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Flush forever: every `flush_interval` while healthy, with doubling back-off while the DB is down."""
        delay = self._interval
        while True:
            await asyncio.to_thread(self._cycle)
            delay = self._interval if self._healthy else min(max(delay, self._interval) * 2, self._max_backoff)
            await asyncio.sleep(delay)

    def _cycle(self) -> None:
        """One round of the background work (in a worker thread): the flush."""
        self.flush()

    def close(self) -> None:
        """Commit what was submitted, then one last bounded flush; whatever the database did not take stays in the
        spool for the next start."""
        self._committer.close()
        self.flush()
        left = self._spool.pending_segments()
        if left:
            log.warning("records.closed_with_spooled_records", spooled_segments=left,
                        spool=str(self._spool.directory))
        self._spool.close()
        self._engine.dispose()


# Calls recorded (by the database's clock) this long before the newest one seen are read again at each refresh:
# a batch that began before our last look but committed after it is still caught. Twice a batch's longest time,
# which the watchdog bounds at op_timeout (5 s).
REFRESH_OVERLAP = timedelta(seconds=10)
# Other engines' calls are read at most this often: the abuse limit counts calls per hour, a few seconds of lag
# change nothing, and each refresh reads the overlap again (at 1 s, 30 times the new rows; make bench).
REFRESH_EVERY = 5.0


class CallRecorder(SpooledWriter):
    """Calls, transfers, callback requests and table versions; the caller counts the abuse limit reads."""

    def __init__(self, db_url: str, spool_dir: Path, caller_hash_key: bytes, *, batch_size: int = BATCH,
                 flush_interval: float = 1.0, max_backoff: float = 30.0, op_timeout: float = 5.0,
                 history_timeout: float = 0.5, auto_upgrade: bool | None = None,
                 segment_records: int = BATCH, callback_key: bytes | None = None,
                 count_callers: bool = True, count_minutes: int = 60,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        if not caller_hash_key:
            raise ValueError("caller_hash_key is empty")
        self._key = caller_hash_key
        # Callback numbers are encrypted with this key (records.keys.callback_key_from_settings); without one,
        # the first callback loads it from the settings (generating var/callback.key if none is configured).
        self._callback_cipher = CallbackCipher(callback_key) if callback_key else None
        super().__init__(db_url, spool_dir, batch_size=batch_size, flush_interval=flush_interval,
                         max_backoff=max_backoff, op_timeout=op_timeout, auto_upgrade=auto_upgrade,
                         segment_records=segment_records)
        self._history_timeout = history_timeout
        self._history_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="records-history")
        # count_callers False (a dry run): its calls never count for the abuse rule, and it reads no one's.
        # count_minutes: the window seeded at start (the tables' default); a longer one asked for widens it.
        self._counts = CallerCounts(count_minutes) if count_callers else None
        self._counts_lock = threading.Lock()     # the loop notes arrivals, the flush thread merges
        self._clock = clock
        self._reseed = True                      # read the whole window from SQL at the next refresh
        self._refreshed_at = -math.inf           # time.monotonic() of the last refresh
        self._cursor: datetime | None = None     # the newest recorded_at seen by the last refresh
        self._counts_synced: bool | None = None  # last refresh worked (None: none tried yet), for the logs

    # --- the call path: local and fast -------------------------------------------------------------
    def record_call(self, rec: CallRecord) -> None:
        self._append("call", call_row(rec, self._key))

    def submit(self, rec: CallRecord | TransferRecord | CallbackRequest | TableVersion) -> asyncio.Future:
        """Any record, from a coroutine: the future resolves once it is durable (see `_submit`). A record that
        cannot be made a row raises here, before anything is written."""
        kind, row = self._row(rec)
        return self._submit(kind, row)

    def _row(self, rec: Any) -> tuple[str, dict[str, Any]]:
        if isinstance(rec, CallRecord):
            return "call", call_row(rec, self._key)
        if isinstance(rec, TransferRecord):
            return "transfer", transfer_row(rec)
        if isinstance(rec, CallbackRequest):
            return "callback", callback_row(rec, self._key, self._cipher())
        if isinstance(rec, TableVersion):
            return "table_version", table_version_row(rec)
        raise TypeError(f"not a record: {type(rec).__name__}")

    def _cipher(self) -> CallbackCipher:
        if self._callback_cipher is None:
            from records.keys import callback_key_from_settings

            self._callback_cipher = CallbackCipher(callback_key_from_settings())
        return self._callback_cipher

    def record_transfer(self, rec: TransferRecord) -> None:
        self._append("transfer", transfer_row(rec))

    def record_callback(self, rec: CallbackRequest) -> None:
        self._append("callback", callback_row(rec, self._key, self._cipher()))

    def record_table_version(self, rec: TableVersion) -> None:
        self._append("table_version", table_version_row(rec))

    def record(self, rec: CallRecord | TransferRecord | CallbackRequest | TableVersion) -> None:
        """Any record value (e.g. what records.outcomes.QueueOutcomeTracker returns), durable on return."""
        self._append(*self._row(rec))

    # --- caller counts: in memory, refreshed from SQL in the background -------------------------------
    def note_arrival(self, caller: str | None, uniqueid: str | None, at: datetime, minutes: int) -> CallerHistory:
        """This caller's earlier calls in [at - minutes, at], from memory (no I/O: on the event loop), then this
        call noted. Calls of other engines count once a refresh has read them from SQL."""
        if self._counts is None or not caller:
            return CallerHistory(calls_in_window=0)
        digest = caller_hash(caller, self._key)
        with self._counts_lock:
            if self._counts.widen(minutes):
                self._reseed = True              # a reloaded table's longer window: read its older part again
            earlier = self._counts.arrive(digest, uniqueid, at.timestamp(), minutes)
        return CallerHistory(calls_in_window=earlier)

    def recent_calls(self, caller: str, at: datetime, minutes: int) -> int:
        """What the counts know of this caller's calls in [at - minutes, at], noting nothing (to look, not to
        route)."""
        if self._counts is None or not caller:
            return 0
        with self._counts_lock:
            return self._counts.count(caller_hash(caller, self._key), at.timestamp(), minutes)

    def refresh_counts(self) -> int:
        """Merge into the counts the calls recorded in SQL since the last look (all of the window the first time,
        or after it widened); returns how many were new. In the flush thread. Never raises: with the database
        away (or a PostgreSQL schema not yet at 0008) the counts go on from memory."""
        if self._counts is None or not self._healthy:
            return 0
        with self._counts_lock:
            keep, reseed, cursor = self._counts.keep_minutes, self._reseed, self._cursor
        now = self._clock()
        since = now - timedelta(minutes=keep)
        try:
            # In a transaction ended under the watchdog: a read left open would be rolled back when the connection
            # goes back to the pool, outside the watchdog, and a stalled network would hold this thread (and the
            # flushes after it) for as long as TCP takes to give up.
            newest, rows = self._guarded(lambda conn: _recent_calls(conn, since, None if reseed else cursor),
                                         self._op_timeout, True)
        except Exception as exc:  # noqa: BLE001 - fail open: the counts keep what they know
            self._note_counts_synced(False, exc)
            return 0
        added = 0
        for start in range(0, len(rows), 1000):       # in slices: the loop's arrivals never wait long for the lock
            with self._counts_lock:
                added += self._counts.merge(rows[start:start + 1000])
        with self._counts_lock:
            self._counts.prune(now.timestamp())
            if reseed and self._counts.keep_minutes == keep:
                self._reseed = False
            if newest is not None and (self._cursor is None or newest > self._cursor):
                self._cursor = newest
        self._note_counts_synced(True)
        return added

    def _note_counts_synced(self, ok: bool, exc: BaseException | None = None) -> None:
        if ok and self._counts_synced is False:
            log.info("records.caller_counts_synced")
        elif not ok and self._counts_synced is not False:
            log.warning("records.caller_counts_stale", error=_short(exc),
                        effect="the abuse rule counts this engine's calls only, until the database answers")
        self._counts_synced = ok

    def _cycle(self) -> None:
        self.flush()
        now = time.monotonic()
        if self._reseed or now - self._refreshed_at >= REFRESH_EVERY:
            self._refreshed_at = now
            self.refresh_counts()

    # --- caller history in SQL (classic AGI: a process per call keeps no counts): bounded, fails open --------
    def caller_history(self, caller: str, at: datetime, minutes: int) -> CallerHistory:
        """Calls from this number in [at - minutes, at], by keyed hash. Zero on any database trouble."""
        if not caller or not self._healthy:
            return CallerHistory(calls_in_window=0)
        digest = caller_hash(caller, self._key)
        since = at - timedelta(minutes=minutes)
        query = (select(func.count()).select_from(calls)
                 .where(calls.c.caller_hash == digest, calls.c.arrived_at >= since, calls.c.arrived_at <= at))
        try:
            future = self._history_pool.submit(self._guarded, lambda conn: conn.execute(query).scalar_one(),
                                               self._history_timeout, False)
            return CallerHistory(calls_in_window=int(future.result(timeout=self._history_timeout + 0.1)))
        except FutureTimeout:
            self._set_health(False, TimeoutError(f"caller history took over {self._history_timeout}s"))
        except Exception as exc:  # noqa: BLE001 - fail open: abuse limits never cost a citizen the call
            self._set_health(False, exc)
        return CallerHistory(calls_in_window=0)

    def close(self) -> None:
        super().close()
        self._history_pool.shutdown(wait=False, cancel_futures=True)


def _recent_calls(conn: Connection, since: datetime,
                  cursor: datetime | None) -> tuple[datetime | None, list[tuple[str, str, float]]]:
    """The newest recorded_at, then (uniqueid, caller hash, arrival) of the calls that arrived since `since` and
    (with a cursor) were recorded at most REFRESH_OVERLAP before it. The newest is read first: a row committed
    between the two reads is read again next time, never skipped."""
    newest = conn.execute(select(func.max(calls.c.recorded_at))).scalar_one()
    query = (select(calls.c.uniqueid, calls.c.caller_hash, calls.c.arrived_at)
             .where(calls.c.caller_hash.is_not(None), calls.c.arrived_at >= since))
    if cursor is not None:
        query = query.where(calls.c.recorded_at >= cursor - REFRESH_OVERLAP)
    return newest, [(uid, digest, at.timestamp()) for uid, digest, at in conn.execute(query)]


def _write_batch(conn: Connection, entries: list[Entry]) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(sql_params(entry.kind, entry.row))
    for kind, rows in by_kind.items():
        write_rows(conn, kind, rows)


def _cut(conn: Connection) -> None:
    """Wake a thread blocked on a stalled database socket: shut the socket down under it."""
    try:
        raw = conn.connection.dbapi_connection
        pgconn = getattr(raw, "pgconn", None)
        if pgconn is not None:
            sock = socket.socket(fileno=os.dup(pgconn.socket))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        elif hasattr(raw, "interrupt"):
            raw.interrupt()
        log.warning("records.database_stalled", effect="connection cut; records stay spooled")
    except Exception as exc:  # noqa: BLE001 - already closed: nothing left to wake
        log.debug("records.cut_failed", error=_short(exc))


def _short(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"[:300]
