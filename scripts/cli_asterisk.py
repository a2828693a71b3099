"""`hotline asterisk apply|check`: install the rendered config into a running Asterisk, safely, and check it.

apply: render -> show the diff against --confdir -> install our *_hotline.conf (and one `#include` line in each
admin file that lacks it) -> reload over AMI exactly the modules whose files changed -> check what Asterisk now
runs -> on a failed reload or check, put the previous files back and reload again. Files are installed only in a
local (or mounted) --confdir, or with --remote over AMI on another host (scripts/cli_asterisk_remote.py).

apply logs in with an AMI user the admin gives (--ami-user, its secret in the variable named by --ami-secret-env):
Command and Reload need the system/config/command write classes, which the generated least-privilege `hotline`
user does not have.

Exit codes: 0 applied (or nothing to do, or --dry-run), 2 bad input (table, options, no AMI secret) or a
confdir that cannot be written (the previous files put back, nothing reloaded), 3 --strict
(as render), 4 a reload or check failed and the previous files were restored, 5 AMI unreachable or login
refused (nothing written). check: 0 all good, 1 problems found, 5 AMI unreachable.
"""
from __future__ import annotations

import asyncio
import getpass
import os
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click
from click.core import ParameterSource
import structlog

from dialplan import apply as ap
from dialplan.extensions import FILENAME as EXTENSIONS
from dialplan.manager import FILENAME as MANAGER
from dialplan.pjsip import FILENAME as PJSIP
from dialplan.queues import FILENAME as QUEUES
from dialplan.render import diff_files, file_mode, mask_secrets, write_atomic, write_files
from ivr.ami.client import AmiClient, AmiError
from scripts.cli_dialplan import _options, _rendered

log = structlog.get_logger()

EXIT_ROLLED_BACK = 4
EXIT_AMI = 5


def _render_options(func):
    """The render options of `hotline dialplan` (same table, engines, secrets), without --out: --confdir is it."""
    func = _options(func)
    func.__click_params__ = [p for p in func.__click_params__ if p.name != "out_dir"]
    return func


def _ami_options(func):
    func = click.option("--timeout", type=click.FloatRange(min=0.5), default=10, show_default=True,
                        help="Seconds for the AMI login and each action.")(func)
    func = click.option("--ami-secret-env", default="HOTLINE_AMI_ADMIN_SECRET", show_default=True, metavar="VAR",
                        help="Environment variable holding the admin AMI user's secret (never an argument).")(func)
    func = click.option("--ami-user", default="admin", show_default=True,
                        help="Your admin AMI user, write=system,config,command (reload, dialplan show).")(func)
    func = click.option("--ami-port", type=int, default=5038, show_default=True)(func)
    func = click.option("--ami-host", default="127.0.0.1", show_default=True,
                        help="Asterisk's AMI. Another host: `apply --remote` writes the files over AMI "
                             "(or point --confdir at a mounted copy of its config dir).")(func)
    func = click.option("--confdir", type=click.Path(file_okay=False, path_type=Path), default="/etc/asterisk",
                        show_default=True, help="Asterisk's config dir (astetcdir), holding extensions.conf etc.")(func)
    return func


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


@dataclass
class Snapshot:
    """The bytes (and modes) of every file an apply touches, as they were: what a rollback writes back."""
    files: dict[Path, tuple[bytes, int] | None] = field(default_factory=dict)

    @classmethod
    def take(cls, paths: list[Path]) -> "Snapshot":
        return cls({p: (p.read_bytes(), p.stat().st_mode & 0o777) if p.exists() else None for p in paths})

    def restore(self) -> None:
        """Write back only what differs (a file never written stays untouched, even in a read-only dir)."""
        for path, old in self.files.items():
            if old is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != old[0] or (path.stat().st_mode & 0o777) != old[1]:
                write_atomic(path, old[0], old[1])


# --- AMI edge ---------------------------------------------------------------------------------------------------

async def _login(host: str, port: int, user: str, secret: str, timeout: float) -> AmiClient | None:
    client = AmiClient(host, port, user, secret, action_timeout=timeout, connect_timeout=timeout,
                       reconnect_max_delay=timeout, events=False, action_id_prefix="apply")
    await client.start()
    if client.connected:
        return client
    await client.close()
    return None


async def _command(client: AmiClient, command: str) -> str:
    """The CLI output; a command Asterisk does not know (its module not loaded) answers Error with its output."""
    try:
        reply = (await client.action({"Action": "Command", "Command": command}))[0]
    except AmiError as exc:
        if exc.response is None:
            raise
        reply = exc.response
    return reply.get("Output", "")


async def _reload(client: AmiClient, name: str) -> str | None:
    """Reload the module of one of our files; None on success, else what Asterisk said."""
    fields = ap.RELOADS[name]
    try:
        reply = (await client.action(dict(fields)))[0]
    except AmiError as exc:
        return f"{fields}: {exc}"
    if fields["Action"] == "Command" and fields["Command"] == "dialplan reload" \
            and "Dialplan reloaded" not in reply.get("Output", ""):
        return f"dialplan reload answered {reply.get('Output', '')!r}"
    log.info("asterisk.reloaded", file=name, action=fields)
    return None


async def _checks(client: AmiClient, rendered: dict[str, str], host: str, port: int, hotline_secret: str | None,
                  timeout: float) -> list[str]:
    """What the running Asterisk lacks of the rendered config (empty: all there)."""
    problems: list[str] = []
    shows = [await _command(client, f"dialplan show {ctx}") for ctx in ap.contexts(rendered[EXTENSIONS])]
    missing = ap.missing_contexts("\n".join(shows), ap.contexts(rendered[EXTENSIONS]))
    if missing:
        problems.append(f"dialplan lacks our contexts: {', '.join(missing)}")
    running = ap.engine_table_in_dialplan(await _command(client, f"dialplan show {ap.ENGINE_CONTEXT}"))
    wanted = ap.table_version(rendered[EXTENSIONS])
    if running and wanted and running != wanted:
        problems.append(f"the running dialplan checks table version {running}, the table is {wanted}: "
                        "reload the dialplan (or apply again)")
    missing = ap.missing_queues(await _command(client, "queue show"), ap.queues(rendered[QUEUES]))
    if missing:
        problems.append(f"app_queue lacks our queues: {', '.join(missing)}")
    try:
        listed = await client.action({"Action": "PJSIPShowEndpoints"})
        have = {m.get("ObjectName") for m in listed if m.get("Event") == "EndpointList"}
    except AmiError as exc:   # "No endpoints found" when there is none at all
        have = set()
        log.info("asterisk.no_endpoints", reason=str(exc))
    missing = [e for e in ap.endpoints(rendered[PJSIP]) if e not in have]
    if missing:
        problems.append(f"res_pjsip lacks our endpoints: {', '.join(missing)}")
    users = ap.ami_users(rendered[MANAGER])
    if hotline_secret is None:
        click.echo("note: the engine's AMI secret is not set here: its login was not tried", err=True)
    else:
        for user in users:
            engine = await _login(host, port, user, hotline_secret, timeout)
            if engine is None:
                problems.append(f"AMI user {user} cannot log in (manager reload, its secret, permit=)")
            else:
                await engine.close()
    return problems


def _engine_unreachable(extensions_text: str, timeout: float) -> list[str]:
    """A TCP connect from here to each agi:// engine of the dialplan (Asterisk's host may see it otherwise)."""
    problems = []
    for url in ap.engine_urls(extensions_text):
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port or 4573), timeout).close()
        except OSError as exc:
            problems.append(f"engine {parts.hostname}:{parts.port or 4573} unreachable from here: {exc}")
    return problems


# --- audit ------------------------------------------------------------------------------------------------------

def _audit(db_url: str | None, params: dict, result: str, message: str) -> None:
    """One row in the supervisor action trail (who, when, which files); a database outage is a warning only."""
    if not db_url:
        return
    from records.actions import write_action
    from records.db import ready_engine
    from records.types import SupervisorAction
    try:
        engine = ready_engine(db_url)
        with engine.begin() as conn:
            write_action(conn, SupervisorAction(at=datetime.now(timezone.utc), user=getpass.getuser(), role="admin",
                                                action="asterisk_apply", params=params, result=result,
                                                message=message))
        engine.dispose()
    except Exception as exc:   # the apply itself is done (or rolled back): say the trail missed it
        click.echo(f"warning: audit row not written ({db_url.split('://')[0]}): {exc}", err=True)


# --- commands ---------------------------------------------------------------------------------------------------

@click.group()
def asterisk() -> None:
    """Install the rendered config into a running Asterisk (apply, with rollback) and check it."""


def _admin_secret(env_name: str) -> str:
    secret = os.environ.get(env_name)
    if not secret:
        click.echo(f"error: set {env_name} to the secret of the admin AMI user (--ami-user)", err=True)
        raise SystemExit(2)
    return secret


@asterisk.command("apply")
@_render_options
@_ami_options
@click.option("--dry-run", is_flag=True, help="Show the diff, the includes and the reloads; change nothing.")
@click.option("--remote", is_flag=True,
              help="Asterisk on another host: read and write our files over AMI (GetConfig/UpdateConfig), no "
                   "--confdir. Implied by a non-local --ami-host without --confdir. The admin AMI user needs "
                   "write=system,config,command; the #include lines are added there by hand, once.")
@click.option("--db-url", default=lambda: os.environ.get("HOTLINE_DB_URL") or None,
              help="Records database for the audit row (default $HOTLINE_DB_URL; none: no audit row).")
def apply_command(table_path, agi, agi_hosts, hagi, secrets_file, strict, no_dns, engine_timeout,
                  emergency_engine_timeout, transport, ami_permit, agents_path, confdir, ami_host, ami_port,
                  ami_user, ami_secret_env, timeout, dry_run, remote, db_url) -> None:
    """Render, show the diff, install into --confdir, reload what changed over AMI, check; roll back on failure."""
    table, options, rendered, missing_secrets = _rendered(table_path, agi, agi_hosts, hagi, secrets_file, strict,
                                                          engine_timeout, transport, ami_permit, no_dns,
                                                          emergency_engine_timeout, agents_path)
    confdir_given = click.get_current_context().get_parameter_source("confdir") != ParameterSource.DEFAULT
    if remote or (not confdir_given and ami_host not in ("127.0.0.1", "localhost", "::1")):
        if missing_secrets:
            click.echo(f"warning: secrets missing, placeholders rendered: {', '.join(missing_secrets)}", err=True)
        secret = _admin_secret(ami_secret_env)
        raise SystemExit(asyncio.run(_apply_remote(table.version, rendered, ami_host, ami_port, ami_user, secret,
                                                   timeout, options.secrets.get(options.ami_secret_env), dry_run,
                                                   db_url)))
    if not confdir.is_dir():
        click.echo(f"error: {confdir} is not a directory (Asterisk's config dir)", err=True)
        raise SystemExit(2)
    installed = {name: _read(confdir / name) for name in rendered}
    admin = {name: _read(confdir / name) for name in ap.INCLUDED_FROM.values()}
    todo = ap.plan(rendered, installed, admin)
    sys.stdout.write(diff_files(rendered, confdir))
    for name in sorted(todo.admin):
        click.echo(f"{confdir / name}: add the line `#include {ap.INCLUDES[name]}`"
                   + (" (new file)" if admin[name] is None else ""))
    reload_text = ", ".join(f"{name} ({_describe(ap.RELOADS[name])})" for name in todo.reloads) or "nothing"
    if missing_secrets:
        click.echo(f"warning: secrets missing, placeholders rendered: {', '.join(missing_secrets)}", err=True)
    if todo.empty:
        click.echo(f"no change in {confdir}: nothing installed, nothing reloaded")
        return
    if dry_run:
        click.echo(f"dry run: would install {', '.join(todo.touched)} and reload {reload_text}; nothing changed")
        return
    click.echo(f"will install {', '.join(todo.touched)} and reload {reload_text}")
    secret = _admin_secret(ami_secret_env)
    raise SystemExit(asyncio.run(_apply(table.version, rendered, todo, confdir, ami_host, ami_port, ami_user, secret,
                                        timeout, options.secrets.get(options.ami_secret_env), db_url)))


async def _apply_remote(version, rendered, host, port, user, secret, timeout, hotline_secret, dry_run,
                        db_url) -> int:
    from scripts.cli_asterisk_remote import NoConfigClass, remote_apply
    client = await _login(host, port, user, secret, timeout)
    if client is None:
        click.echo(f"error: cannot log in to AMI at {host}:{port} as {user}: nothing written", err=True)
        return EXIT_AMI
    try:
        code, params = await remote_apply(client, user, rendered, dry_run, lambda: _checks(
            client, rendered, host, port, hotline_secret, timeout))
    except NoConfigClass as exc:
        click.echo(f"error: {exc}: nothing written", err=True)
        return EXIT_AMI
    finally:
        await client.close()
    if not dry_run and params.get("files") and code in (0, EXIT_ROLLED_BACK):
        problems = params.pop("problems", [])
        _audit(db_url, {**params, "table_version": version, "ami": f"{host}:{port}"}, "ok" if code == 0 else "error",
               "rolled back: " + "; ".join(problems) if problems else "")
    return code


def _describe(fields: dict[str, str]) -> str:
    return f"Command {fields['Command']}" if fields["Action"] == "Command" else f"Reload {fields['Module']}"


async def _apply(version, rendered, todo: ap.Plan, confdir: Path, host, port, user, secret, timeout,
                 hotline_secret, db_url) -> int:
    client = await _login(host, port, user, secret, timeout)   # before writing: no files without their reload
    if client is None:
        click.echo(f"error: cannot log in to AMI at {host}:{port} as {user}: nothing written", err=True)
        return EXIT_AMI
    params = {"confdir": str(confdir), "files": todo.touched, "reloaded": todo.reloads, "table_version": version,
              "ami": f"{host}:{port}"}
    try:
        snapshot = Snapshot.take([confdir / name for name in todo.touched])
        try:   # ours first, then the includes: an #include of a missing file invalidates the admin's whole file
            write_files(todo.ours, confdir)
            for name, text in todo.admin.items():
                path = confdir / name
                write_atomic(path, text.encode("utf-8"), snapshot.files[path][1] if snapshot.files[path] else 0o644)
        except OSError as exc:
            snapshot.restore()
            click.echo(f"error: cannot write in {confdir}: {exc} (nothing changed, nothing reloaded)", err=True)
            return 2
        click.echo(f"installed {', '.join(todo.touched)}")
        try:
            problems = [p for name in todo.reloads if (p := await _reload(client, name))]
            if not problems:
                problems = await _checks(client, rendered, host, port, hotline_secret, timeout)
        except AmiError as exc:   # the link died or timed out mid-way: what runs is unknown, so roll back
            problems = [f"AMI: {exc}"]
        if not problems:
            click.echo(f"applied table {version}: reloaded {', '.join(todo.reloads) or 'nothing'}; checks passed")
            log.info("asterisk.applied", table_version=version, files=todo.touched, reloaded=todo.reloads)
            _audit(db_url, params, "ok", "")
            return 0
        for problem in problems:
            click.echo(f"check failed: {mask_secrets(problem)}", err=True)
        snapshot.restore()
        again = [p for name in todo.reloads if (p := await _reload(client, name))]
        click.echo(f"rolled back: the previous {', '.join(todo.touched)} restored and reloaded"
                   + (f" (reload after rollback failed too: {'; '.join(again)})" if again else ""), err=True)
        log.warning("asterisk.rolled_back", table_version=version, problems=problems)
        _audit(db_url, params, "error", "rolled back: " + "; ".join(problems))
        return EXIT_ROLLED_BACK
    finally:
        await client.close()


@asterisk.command("check")
@_render_options
@_ami_options
@click.option("--remote", is_flag=True, help="Compare our files and the admin's includes over AMI (GetConfig), not "
                                             "in --confdir: the admin AMI user needs write=config.")
def check_command(table_path, agi, agi_hosts, hagi, secrets_file, strict, no_dns, engine_timeout,
                  emergency_engine_timeout, transport, ami_permit, agents_path, confdir, ami_host, ami_port,
                  ami_user, ami_secret_env, timeout, remote) -> None:
    """Say what is wrong with the running Asterisk's hotline config. Exit 0: nothing, 1: problems, 5: no AMI."""
    table, options, rendered, _missing = _rendered(table_path, agi, agi_hosts, hagi, secrets_file, strict,
                                                   engine_timeout, transport, ami_permit, no_dns,
                                                   emergency_engine_timeout, agents_path)
    problems: list[str] = []
    if remote:
        pass   # our files and the includes are read over AMI below
    elif confdir.is_dir():
        for ours, admin_name in ap.INCLUDED_FROM.items():
            text = _read(confdir / admin_name)
            if text is None or not ap.has_include(text, ours):
                problems.append(f"{confdir / admin_name} does not #include {ours}")
            installed = _read(confdir / ours)
            if installed is None:
                problems.append(f"{confdir / ours} is missing: run `hotline asterisk apply`")
            elif installed != rendered[ours]:
                problems.append(f"{confdir / ours} differs from a render of the table (installed table "
                                f"{ap.table_version(installed)}, table {table.version}): `hotline asterisk apply`")
    else:
        click.echo(f"note: {confdir} not here: files and includes not checked (AMI checks only)", err=True)
    problems += _engine_unreachable(rendered[EXTENSIONS], timeout)
    secret = _admin_secret(ami_secret_env)
    result = asyncio.run(_check_running(rendered, ami_host, ami_port, ami_user, secret, timeout,
                                        options.secrets.get(options.ami_secret_env), remote))
    if result is None:
        click.echo(f"error: cannot log in to AMI at {ami_host}:{ami_port} as {ami_user}", err=True)
        raise SystemExit(EXIT_AMI)
    problems += result
    for problem in problems:
        click.echo(f"problem: {problem}")
    if problems:
        raise SystemExit(1)
    click.echo(f"ok: the running Asterisk has the hotline config of table {table.version}")


async def _check_running(rendered, host, port, user, secret, timeout, hotline_secret,
                         remote: bool = False) -> list[str] | None:
    client = await _login(host, port, user, secret, timeout)
    if client is None:
        return None
    try:
        problems = []
        if remote:
            from scripts.cli_asterisk_remote import NoConfigClass, file_problems
            try:
                problems += await file_problems(client, user, rendered)
            except NoConfigClass as exc:
                problems.append(str(exc))
        for module in ap.REQUIRED_MODULES:
            try:
                await client.action({"Action": "ModuleCheck", "Module": module})
            except AmiError:
                problems.append(f"module {module} is not loaded")
        return problems + await _checks(client, rendered, host, port, hotline_secret, timeout)
    finally:
        await client.close()
