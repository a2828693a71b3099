"""`hotline web` (the supervisors' live view) and `hotline queues watch` (the same figures in a terminal)."""
from __future__ import annotations

import asyncio
import getpass
import sys
import time

import click

from scripts.settings import load_settings


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="Address to listen on (default HOTLINE_WEB_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default HOTLINE_WEB_PORT, 8345).")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the supervisors' live view (one AMI link per Asterisk server in HOTLINE_AMI_SERVERS)."""
    if ctx.invoked_subcommand is not None:
        return
    from supervisor.config import ConfigError
    from supervisor.service import run_supervisor
    try:
        asyncio.run(run_supervisor(load_settings(), host=host, port=port))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


@web.command("hash-password")
def hash_password_cmd() -> None:
    """Print an scrypt hash for a users file line (name:role:hash[:phone]); asks for the password."""
    from supervisor.auth import hash_password
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        raise click.ClickException("the two passwords differ")
    if len(password) < 10:
        raise click.ClickException("use at least 10 characters")
    click.echo(hash_password(password))


@click.group()
def queues() -> None:
    """Live queue figures from Asterisk (AMI)."""


@queues.command(epilog="\b\nExamples:\n  hotline queues watch\n  hotline queues watch --once --lang en\n"
                        "  HOTLINE_LANG=en hotline queues watch --interval 5")
@click.option("--once", is_flag=True, help="Print one frame once every server has answered, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between frames.")
@click.option("--full-numbers", is_flag=True, help="Show caller numbers in full (default: masked).")
@click.option("--timeout", default=10.0, show_default=True, help="With --once: how long to wait for Asterisk.")
@click.option("--lang", "lang", type=click.Choice(["zh", "en"]), envvar="HOTLINE_LANG", default="zh",
              show_default=True, help="Language of the frame (also HOTLINE_LANG).")
def watch(once: bool, interval: float, full_numbers: bool, timeout: float, lang: str) -> None:
    """A refreshing plain-text view of every queue on every configured Asterisk server."""
    from supervisor.config import ConfigError
    try:
        code = asyncio.run(_watch(once, interval, full_numbers, timeout, lang))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


async def _watch(once: bool, interval: float, full_numbers: bool, timeout: float, lang: str) -> int:
    from supervisor.config import ami_servers
    from supervisor.hub import SupervisorHub
    from supervisor.i18n import text
    from supervisor.service import make_clients, make_refresher
    from supervisor.state import LiveState
    from supervisor.textview import render

    settings = load_settings()
    state = LiveState()
    refresher = make_refresher(settings, state)
    if not any(server.secret for server in ami_servers(settings)):  # first run: say what to configure
        await asyncio.to_thread(refresher.refresh_names)
        click.echo(render(state.view(time.time(), full_numbers=False, lang=lang), lang), nl=False)
        return 1
    hub = SupervisorHub(make_clients(settings, reconnect_max_delay=5), state=state)
    refresher.on_change = hub.notify
    await refresher.start()
    await hub.start()

    def frame() -> str:
        return render(state.view(time.time(), full_numbers=full_numbers, lang=lang), lang, refresher.backlog)
    try:
        if once:
            synced = await hub.wait_synced(timeout)
            click.echo(frame(), nl=False)
            if not synced:
                click.echo(text("view.text.not_answered", lang), err=True)
            return 0 if synced else 1
        clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
        while True:
            click.echo(clear + frame(), nl=False)
            await hub.wait_change(interval)
            await asyncio.sleep(0.1)  # a burst of events makes one frame, not ten
    finally:
        await hub.stop()
        await refresher.stop()
