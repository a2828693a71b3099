"""`hotline doctor`: checks a host end to end before (and while) it takes calls.

One line per check, OK / WARN / FAIL with what to do; exit code 1 when any check fails; `--json` for machines.
Each check reads the same settings the engine does (environment, HOTLINE_SECRETS_FILE) and changes nothing,
except a probe file in the spool that it removes again.
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import click

from scripts.settings import VAR_DIR, Settings, load_settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    advice: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name}: {self.detail}"
        return f"{text}\n      -> {self.advice}" if self.advice else text


# --- configuration -------------------------------------------------------------------------------------------
def check_config(settings: Settings) -> Check:
    from ivr.engine import ConfigError, ConfigHolder

    try:
        config = ConfigHolder.from_files(settings.routing_table, settings.ivr_menus).current
    except ConfigError as exc:
        shown = "; ".join(str(p) for p in exc.problems[:3])
        more = f" (+{len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
        return Check("config", FAIL, f"{shown}{more}",
                     "fix the files: `hotline routes check` and `hotline menus check` list every problem")
    return Check("config", OK, f"table {settings.routing_table} ({config.table.version}), "
                               f"menus {settings.ivr_menus} ({config.menus.version})")


# --- database ------------------------------------------------------------------------------------------------
def check_database(settings: Settings) -> Check:
    from sqlalchemy import make_url

    from records.db import current_revision, head_revision, make_engine, sqlite_path

    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    path = sqlite_path(settings.db_url)
    if path is not None and not path.exists():
        parent = _existing_parent(path)
        if os.access(parent, os.W_OK):
            return Check("database", WARN, f"{shown} does not exist yet",
                         "it is created and migrated when the engine starts (or run `hotline db upgrade`)")
        return Check("database", FAIL, f"{shown} does not exist and {parent} is not writable",
                     f"create {path.parent} writable by the engine's user")
    try:
        engine = make_engine(settings.db_url, op_timeout=3)
    except ValueError as exc:
        return Check("database", FAIL, str(exc), "set HOTLINE_DB_URL")
    try:
        current, head = current_revision(engine), head_revision()
    except Exception as exc:
        return Check("database", FAIL, f"{shown} unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                     "check HOTLINE_DB_URL, the server, the password and the network")
    finally:
        engine.dispose()
    if current == head:
        return Check("database", OK, f"{shown} reachable, schema at head ({head})")
    state = "has no records schema" if current is None else f"is at schema revision {current}, not {head}"
    if path is not None:
        return Check("database", WARN, f"{shown} {state}", "the engine migrates SQLite itself when it starts")
    return Check("database", FAIL, f"{shown} {state}", "run `hotline db upgrade` (with HOTLINE_DB_URL set)")


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path("/")


# --- spool ---------------------------------------------------------------------------------------------------
def check_spool(settings: Settings) -> Check:
    spool = Path(settings.spool_dir)
    if not spool.exists():
        parent = _existing_parent(spool)
        if os.access(parent, os.W_OK):
            return Check("spool", WARN, f"{spool} does not exist yet", "the engine creates it when it starts")
        return Check("spool", FAIL, f"{spool} does not exist and {parent} is not writable",
                     f"create {spool} writable by the engine's user (ReadWritePaths= in the unit)")
    probe = spool / f".doctor-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        return Check("spool", FAIL, f"{spool} is not writable: {exc.strerror}",
                     f"make {spool} writable by the engine's user: records wait there while the database is away")
    pending = sum(1 for _ in spool.glob("*.jsonl"))
    return Check("spool", OK, f"{spool} writable" + (f", {pending} segment file(s) waiting" if pending else ""))


# --- ports ---------------------------------------------------------------------------------------------------
def check_port(label: str, host: str, port: int) -> Check:
    name = f"{label} port"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        return Check(name, OK, f"{host}:{port} free")
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Check(name, FAIL, f"cannot listen on {host}:{port}: {exc.strerror}",
                         "check the address (it must be one of this host's) and the port")
    holders = port_holders(port)
    ours = [(pid, args) for pid, args in holders if is_ours(args)]
    if ours:
        pid, args = ours[0]
        return Check(name, OK, f"{host}:{port} held by our {_subcommand(args)} (pid {pid})")
    if holders:
        pid, args = holders[0]
        return Check(name, FAIL, f"{host}:{port} held by another program (pid {pid}: {' '.join(args)[:80]})",
                     "stop it or choose another port (HOTLINE_AGI_PORT / HOTLINE_WEB_PORT)")
    return Check(name, WARN, f"{host}:{port} in use by a process this user cannot see",
                 f"run the doctor as root or the engine's user, or look: ss -ltnp 'sport = :{port}'")


def _subcommand(args: list[str]) -> str:
    return next(a for a in args if a in ("serve", "web"))


def is_ours(args: list[str]) -> bool:
    """A `hotline serve` or `hotline web` (console script or `-m scripts.hotline`)."""
    named = any(Path(a).name == "hotline" or a == "scripts.hotline" for a in args)
    return named and any(a in ("serve", "web") for a in args)


def port_holders(port: int, proc: Path = Path("/proc")) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the processes holding a listening TCP socket on `port`, from /proc (Linux)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    found = []
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir() if wanted else ():
        if not entry.name.isdigit():
            continue
        try:
            if wanted & set(_fd_links(entry / "fd")):
                argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
                found.append((int(entry.name), [a.decode("utf-8", "replace") for a in argv]))
        except OSError:      # another user's process, or gone meanwhile
            continue
    return found


def _fd_links(fd_dir: Path) -> Iterable[str]:
    for fd in fd_dir.iterdir():
        try:
            yield os.readlink(fd)
        except OSError:      # closed meanwhile (the listing's own descriptor, for one)
            continue


# --- Asterisk ------------------------------------------------------------------------------------------------
def check_asterisk(settings: Settings, timeout: float = 5.0) -> Check:
    """The one AMI server of HOTLINE_AMI_HOST/PORT/USER/SECRET."""
    where = f"{settings.ami_host}:{settings.ami_port}"
    if settings.ami_secret is None:
        return Check("asterisk", WARN, "HOTLINE_AMI_SECRET not set: the engine runs without AMI",
                     "set it (secrets file) for call outcomes, transfers and the live queue view")
    return asyncio.run(_ami_login("asterisk", settings.ami_host, settings.ami_port, settings.ami_user,
                                  settings.ami_secret.get_secret_value(), where, timeout))


def check_asterisks(settings: Settings, timeout: float = 5.0, environ=None) -> list[Check]:
    """Every AMI server the engine and the view use (HOTLINE_AMI_SERVERS, supervisor/config.py), each logged in
    to; without that list, the one server of check_asterisk."""
    from supervisor.config import ConfigError, ami_servers, environment

    if not environment(environ).get("HOTLINE_AMI_SERVERS", "").strip():
        return [check_asterisk(settings, timeout)]
    try:
        servers = ami_servers(settings, environ)
    except ConfigError as exc:
        return [Check("asterisk", FAIL, str(exc), "name=[user@]host:port, comma-separated")]
    checks = []
    for server in servers:
        name, where = f"asterisk {server.name}", f"{server.host}:{server.port}"
        if not server.secret:
            checks.append(Check(name, WARN, f"AMI {where}: no secret (HOTLINE_AMI_SECRET_"
                                            f"{server.name.upper().replace('-', '_')} or HOTLINE_AMI_SECRET)",
                                "set it in the secrets file"))
            continue
        checks.append(asyncio.run(_ami_login(name, server.host, server.port, server.user, server.secret, where,
                                             timeout)))
    return checks


async def _ami_login(name: str, host: str, port: int, user: str, secret: str, where: str, timeout: float) -> Check:
    from ivr.ami.client import AmiClient, AmiError

    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
    except (OSError, asyncio.TimeoutError) as exc:
        return Check(name, FAIL, f"AMI {where} unreachable: {type(exc).__name__}: {exc}",
                     "is Asterisk running with manager.conf `enabled = yes` on this address and port?")
    client = AmiClient(host, port, user, secret, events=False, action_timeout=timeout, connect_timeout=timeout,
                       reconnect_max_delay=timeout)
    try:
        await client.start()
        if not client.connected:
            return Check(name, FAIL, f"AMI {where}: login as {user} refused",
                         "the secret and permit in manager_hotline.conf must match HOTLINE_AMI_SECRET and this host")
        reply = (await client.action({"Action": "Ping"}))[0]
        return Check(name, OK, f"AMI {where}: logged in as {user}, Ping {reply.get('Ping', reply.get('Response'))}")
    except AmiError as exc:
        return Check(name, FAIL, f"AMI {where}: {exc}", "see Asterisk's log (`manager show connected`)")
    finally:
        await client.close()


# --- keys and the secrets file -------------------------------------------------------------------------------
def check_keys(settings: Settings, var_dir: Path = VAR_DIR) -> list[Check]:
    from records.keys import CALLBACK, CALLER_HASH

    checks = []
    for spec, setting in ((CALLBACK, settings.callback_key), (CALLER_HASH, settings.caller_hash_key)):
        name = spec.label
        if setting is not None:
            checks.append(_valid_key(spec, setting.get_secret_value(), f"{name}: set by {spec.env_var}"))
            continue
        path = Path(var_dir) / spec.file_name
        if not path.exists():
            checks.append(Check(name, WARN, f"not configured and {path} absent: generated at first start",
                                f"set {spec.env_var} in the secrets file (and back it up) instead"))
            continue
        mode = _mode_problem(path)
        if mode:
            checks.append(Check(name, FAIL, f"{path} {mode}", f"chmod 600 {path}"))
            continue
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            checks.append(Check(name, FAIL, f"{path} unreadable: {exc.strerror}",
                                "run the doctor as the engine's user"))
            continue
        checks.append(_valid_key(spec, text, f"{name}: {path} (mode 0600)"))
    checks.append(check_secrets_file())
    return checks


def _valid_key(spec, text: str, detail: str) -> Check:
    from records.callbacks import CallbackCipher, CallbackKeyError
    from records.keys import CALLBACK

    if not text:
        return Check(spec.label, FAIL, f"{detail} is empty", f"set {spec.env_var} or remove the empty file")
    if spec is CALLBACK:
        try:
            CallbackCipher(text.encode("utf-8"))
        except CallbackKeyError as exc:
            return Check(spec.label, FAIL, f"{detail}: {exc}", "a Fernet key (44 characters), newest first")
    return Check(spec.label, OK, detail)


def check_secrets_file() -> Check:
    named = os.environ.get("HOTLINE_SECRETS_FILE")
    if not named:
        return Check("secrets file", WARN, "HOTLINE_SECRETS_FILE not set: secrets only from the environment",
                     "name the file the units use, e.g. HOTLINE_SECRETS_FILE=/etc/hotline/hotline.env")
    path = Path(named)
    if not path.is_file():
        return Check("secrets file", FAIL, f"{path} missing", "create it (KEY=value lines) with mode 0600")
    problem = _mode_problem(path)
    if problem:
        return Check("secrets file", FAIL, f"{path} {problem}", f"chmod 600 {path}")
    return Check("secrets file", OK, f"{path} (mode 0600)")


def _mode_problem(path: Path) -> str | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    return f"has mode {mode:04o}: others can read it" if mode & 0o077 else None


# --- the command ---------------------------------------------------------------------------------------------
def run_checks(settings: Settings, *, var_dir: Path = VAR_DIR, ami_timeout: float = 5.0) -> list[Check]:
    checks = [check_config(settings), check_database(settings), check_spool(settings),
              check_port("AGI", settings.agi_host, settings.agi_port),
              check_port("web", settings.web_host, settings.web_port),
              *check_asterisks(settings, ami_timeout)]
    return checks + check_keys(settings, var_dir)


def exit_code(checks: Iterable[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the checks and the overall status.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds for the AMI connect and login.")
def doctor(as_json: bool, timeout: float) -> None:
    """Check this host end to end: config, database, spool, ports, Asterisk (AMI), keys. Exit 1 on a FAIL."""
    checks = run_checks(load_settings(), ami_timeout=timeout)
    code = exit_code(checks)
    if as_json:
        status = FAIL if code else (WARN if any(c.status == WARN for c in checks) else OK)
        click.echo(json.dumps({"status": status, "checks": [asdict(c) for c in checks]}, ensure_ascii=False))
    else:
        for check in checks:
            click.echo(check.line())
    raise SystemExit(code)
