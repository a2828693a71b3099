"""What a running `hotline serve` leaves on disk, and how the CLI finds the right process.

Beside its pid file (var/hotline.pid; a dry run: var/dry-run/hotline.pid) an engine keeps:
- `hotline.reload-request.json`: written by `hotline reload` (who asks, a request id) just before its SIGHUP;
- `hotline.reload-result.json`: written by the engine after every reload (the id it answers, reloaded or refused,
  the versions, the problems as file:line: message).

Why files and not a control socket: the engine already owns this directory (systemd's ReadWritePaths), a file
needs no listener, no port and no authentication of its own (the directory's permissions are the access
control), and it answers a plain `systemctl reload` / `kill -HUP` too: the result is there whoever signalled.
"""
from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scripts.cli_doctor import is_ours, port_holders


def request_file(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.stem + ".reload-request.json")


def result_file(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.stem + ".reload-result.json")


def process_args(pid: int) -> list[str] | None:
    """argv of a live process (Linux /proc); None when it is gone. [] when /proc cannot tell (not Linux)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass                                  # alive, someone else's
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_engine(args: list[str] | None) -> bool:
    return bool(args) and is_ours(args) and "serve" in args


def running_engine(pid_file: Path) -> tuple[int | None, str]:
    """(pid, "") of the `hotline serve` the pid file names, or (None, why not) in the admin's words."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None, f"no running engine: {pid_file} is missing or unreadable"
    args = process_args(pid)
    if args is None:
        return None, f"no running engine: {pid_file} names pid {pid}, which is gone (stale pid file)"
    if args and not is_engine(args):
        return None, (f"no running engine: {pid_file} names pid {pid}, which is not a hotline serve "
                      f"({' '.join(args)[:80]}); stale pid file")
    return pid, ""


def claim_problem(pid_file: Path) -> str | None:
    """Why this process must not take the pid file: another live engine holds it."""
    pid, _ = running_engine(pid_file)
    if pid is None or pid == os.getpid():
        return None
    return (f"{pid_file} belongs to the running engine (pid {pid}); a second engine would hide it from "
            "`hotline reload`. For a test beside it: hotline serve --dry-run (own port, pid file and state)")


def write_pid(pid_file: Path) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = pid_file.with_name(f".{pid_file.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
    os.replace(tmp, pid_file)


def release_pid(pid_file: Path) -> None:
    try:
        if pid_file.read_text(encoding="utf-8").strip() == str(os.getpid()):
            pid_file.unlink()
    except OSError:
        pass


def write_reload_result(pid_file: Path, *, request_id: str | None, ok: bool, table: str, menus: str,
                        previous_table: str, problems: list[str]) -> None:
    result = {"pid": os.getpid(), "request": request_id, "ok": ok, "table": table, "menus": menus,
              "previous_table": previous_table, "problems": problems,
              "at_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = result_file(pid_file)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)                      # atomic: a reader never sees half a result


def wait_reload_result(pid_file: Path, request_id: str, pid: int, timeout: float) -> dict[str, Any] | None:
    """The engine's answer to our request, or None when it did not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    path = result_file(pid_file)
    while time.monotonic() < deadline:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            if result.get("request") == request_id and result.get("pid") == pid:
                return result
        except (OSError, ValueError):
            pass
        if process_args(pid) is None:
            return {"ok": False, "gone": True}
        time.sleep(0.1)
    return None


def port_problem(host: str, port: int, what: str) -> str | None:
    """Why `host:port` cannot be listened on (taken, not ours), checked before binding for a clear error."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as asyncio and uvicorn bind
        try:
            probe.bind((host, port))
        except OSError as exc:
            holders = port_holders(port)
            who = (f" (held by pid {holders[0][0]}: {' '.join(holders[0][1])[:80]})" if holders else "")
            return f"{what} {host}:{port} cannot be used: {exc.strerror or exc}{who}"
    return None
