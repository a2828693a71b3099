"""Runs the supervisor view inside an existing event loop: AMI clients + hub + web app on uvicorn.

`await run_supervisor(settings)` serves until cancelled (`hotline web`); `hotline serve` builds it beside the engine;
`SupervisorService` gives tests and the CLI the bound port and a clean stop.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, Callable, Iterator, Mapping

import structlog
import uvicorn

from ivr.ami.client import AmiClient
from scripts.settings import Settings
from supervisor.audit import AuditLog
from supervisor.auth import User, load_users
from supervisor.config import ConfigError, WebOptions, ami_servers, environment, web_options
from supervisor.history import History
from supervisor.hub import SupervisorHub
from supervisor.refresh import Refresher
from supervisor.state import LiveState
from supervisor.web import create_app

log = structlog.get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the host process owns SIGINT/SIGTERM and cancels us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SupervisorService:
    def __init__(self, hub: SupervisorHub, users: Mapping[str, User], options: WebOptions, host: str,
                 port: int, refresher: Refresher | None = None) -> None:
        self.hub, self.host, self.port = hub, host, port
        self.refresher = refresher
        self.app = create_app(hub, users, secure_cookie=options.secure_cookie,
                              metrics_token=options.metrics_token, refresher=refresher)
        config = uvicorn.Config(self.app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task | None = None

    async def start(self, timeout: float = 10) -> int:
        """Connect the AMI clients (first attempt only; they keep retrying), start serving; return the port."""
        if self.refresher is not None:
            await self.refresher.start()
        await self.hub.start()
        self._task = asyncio.get_running_loop().create_task(self._server.serve(), name="supervisor-web")
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                await self.hub.stop()
                if self.refresher is not None:
                    await self.refresher.stop()
                self._task.result()  # raises what stopped uvicorn
                raise RuntimeError(f"web view could not listen on {self.host}:{self.port}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("web view did not start in time")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        log.info("supervisor.web_started", url=f"http://{self.host}:{self.port}/")
        return self.port

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.hub.stop()
        if self.refresher is not None:
            await self.refresher.stop()
        if self.hub.audit is not None:   # the SQL audit writer's last flush (bounded) off the event loop
            await asyncio.to_thread(self.hub.audit.close)


def make_clients(settings: Settings, environ: Mapping[str, str] | None = None, **options: Any
                 ) -> dict[str, AmiClient]:
    clients = {}
    for server in ami_servers(settings, environ):
        if not server.secret:
            raise ConfigError(f"no AMI secret for server {server.name!r}: set HOTLINE_AMI_SECRET or "
                              f"HOTLINE_AMI_SECRET_{server.name.upper().replace('-', '_')}")
        clients[server.name] = AmiClient(server.host, server.port, server.user, server.secret, **options)
    return clients


def records_loader(settings: Settings) -> Callable[[Any], list[Any]]:
    """A local day -> that day's call rows from the SQL records, for seeding today's figures. One engine, made
    on first use; a database that is away raises (the hub then counts live events only and tries again later)."""
    from records.db import ready_engine
    from records.reports import day_rows
    from supervisor.state import HOTLINE_TZ

    engine: list[Any] = []

    def load(day: Any) -> list[Any]:
        if not engine:
            engine.append(ready_engine(settings.db_url))
        return day_rows(engine[0], day, HOTLINE_TZ)
    return load


def build_service(settings: Settings, *, host: str | None = None, port: int | None = None,
                  environ: Mapping[str, str] | None = None, clients: Mapping[str, Any] | None = None,
                  announce: Callable[[str], None] | None = None,
                  clock: Callable[[], float] | None = None, close_clients: bool = True) -> SupervisorService:
    env = environment(environ if environ is not None else os.environ)
    options = web_options(env)
    clients = clients if clients is not None else make_clients(settings, env)  # config errors before passwords
    users = load_users(env, announce)
    hub_kwargs = {"clock": clock} if clock else {}
    hub = SupervisorHub(clients,
                        state=LiveState(options.service_level), history=History(options.history_hours * 3600),
                        audit=AuditLog.for_settings(settings, options.audit_path),
                        sample_interval=options.sample_interval,
                        close_clients=close_clients, records_loader=records_loader(settings), **hub_kwargs)
    refresher = make_refresher(settings, hub.state, on_change=hub.notify)
    return SupervisorService(hub, users, options, host or settings.web_host,
                             settings.web_port if port is None else port, refresher)


def records_url(settings: Settings) -> str | None:
    """The records database to read the backlog from; None for a SQLite file nobody has written yet."""
    from records.db import sqlite_path

    path = sqlite_path(settings.db_url)
    return None if path is not None and not path.exists() else settings.db_url


def make_refresher(settings: Settings, state: LiveState, **options: Any) -> Refresher:
    return Refresher(state, table_path=settings.routing_table, db_url=records_url(settings), **options)


async def run_supervisor(settings: Settings, *, host: str | None = None, port: int | None = None,
                         environ: Mapping[str, str] | None = None,
                         clients: Mapping[str, AmiClient] | None = None) -> None:
    """Serve the supervisor view until cancelled; for use inside an existing event loop.

    `clients`: AMI clients already running in this process (server name -> AmiClient), e.g. the engine's own
    link for transfers; they are subscribed to, never closed here. Without it, one client per configured server
    is made (and closed on exit)."""
    service = build_service(settings, host=host, port=port, environ=environ, clients=clients,
                            close_clients=clients is None)
    await service.start()
    try:
        await service.wait()
    finally:
        await service.stop()
