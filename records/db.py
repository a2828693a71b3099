"""Engines and schema migrations. `upgrade(url)` is what `hotline db upgrade` and the recorder run."""
from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, op_timeout: float = 5.0, pre_ping: bool = True) -> Engine:
    """An engine whose waits are bounded: SQLite's busy timeout, PostgreSQL's connect timeout.

    A stalled PostgreSQL connection (a network that drops packets) is cut by the recorder's watchdog.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, pool_timeout=op_timeout, connect_args={"timeout": op_timeout})
        if parsed.database and parsed.database != ":memory:":
            event.listen(engine, "connect", _sqlite_wal)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=pre_ping, pool_size=2, max_overflow=4, pool_timeout=op_timeout,
                             connect_args={"connect_timeout": max(1, round(op_timeout))})
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://")


def _sqlite_wal(dbapi_connection, _record) -> None:
    # Readers (reports, caller history) then never wait for the recorder's writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def alembic_config() -> Config:
    """Alembic's configuration, built in code: the scripts ship inside the package, no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Alembic's `context` is module-global: two upgrades in one process (the engine's recorder and the supervisor's
# audit writer starting together) must not interleave. Across processes PostgreSQL's advisory lock serialises.
_UPGRADE_LOCK = threading.Lock()


def upgrade(engine: Engine, revision: str = "head") -> None:
    path = sqlite_path(str(engine.url))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass    # SQLite's own open then says why (one clear OperationalError)
    config = alembic_config()
    with _UPGRADE_LOCK, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class SchemaNotReady(Exception):
    """A PostgreSQL database whose schema is missing or older than this code: an admin runs the migration."""


def ready_engine(url: str, op_timeout: float = 5.0) -> Engine:
    """An engine on a schema at head, for commands that read or write the records.

    SQLite (one local file, as `hotline serve` does): created or upgraded here. PostgreSQL: never migrated behind
    the admin's back; a schema that is not at head raises SchemaNotReady with the command to run.
    """
    engine = make_engine(url, op_timeout=op_timeout)
    try:
        if sqlite_path(url) is not None:
            upgrade(engine)
            return engine
        if engine.dialect.name == "sqlite":     # :memory: - nothing to keep, a fresh schema each time
            upgrade(engine)
            return engine
        current, head = current_revision(engine), head_revision()
        if current != head:
            shown = make_url(url).render_as_string(hide_password=True)
            state = "has no records schema" if current is None else f"is at schema revision {current}, not {head}"
            raise SchemaNotReady(f"{shown} {state}: run `hotline db upgrade --db-url '{shown}'` "
                                 "(with the real password, or HOTLINE_DB_URL set)")
        return engine
    except BaseException:
        engine.dispose()
        raise
