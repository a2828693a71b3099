"""Database fixtures for the records tests: every test runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL: a fresh database `hotline_test_<random>` per test on the server named by HOTLINE_TEST_PG_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped afterwards, so helpers running the
suite at the same time never share tables. Unreachable server: skipped locally, a failure when CI=true.

Import the fixtures you use into your test module: `from tests.db_fixtures import db_url, pg_url  # noqa: F401`.
Also here: TcpProxy, a small asyncio TCP proxy that can cut or blackhole the path to the database.
"""
from __future__ import annotations

import asyncio
import os
import secrets
from contextlib import contextmanager
from typing import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

PG_DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_server_url() -> str:
    return os.environ.get("HOTLINE_TEST_PG_URL") or PG_DEFAULT_URL


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: PostgreSQL at {make_url(pg_server_url()).render_as_string()} is required: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason}); set HOTLINE_TEST_PG_URL or start it (make test does)")


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty database on the test server; its URL; dropped on exit."""
    server = make_url(pg_server_url())
    name = f"hotline_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        _pg_unavailable(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database (no tables yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.sqlite3'}"
        return
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


class TcpProxy:
    """127.0.0.1:0 -> target. `cut()` closes every connection and refuses new ones at once; `blackhole()`
    accepts and keeps connections but forwards nothing (a network dropping packets); `restore()` forwards."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "forward"
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode == "cut":
            self._close(writer)
            return
        if self.mode == "blackhole":
            return   # held open, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._close(writer)
            return
        self._writers.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst, (writer, up_writer)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, pair) -> None:
        try:
            while data := await src.read(65536):
                if self.mode == "forward":
                    dst.write(data)
                    await dst.drain()
                # blackhole: the bytes vanish; cut: the sockets are closed under us
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in pair:
                self._close(w)

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.close()

    def cut(self) -> None:
        self.mode = "cut"
        for writer in list(self._writers):
            self._close(writer)

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def restore(self) -> None:
        """Forward again; connections held during the blackhole are closed (their state is lost anyway)."""
        for writer in list(self._writers):
            self._close(writer)
        self.mode = "forward"

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
