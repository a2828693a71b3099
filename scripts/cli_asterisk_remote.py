"""`hotline asterisk apply --remote`: the same apply when Asterisk is on another host, its files read and written
over AMI (GetConfig, CreateConfig, UpdateConfig; see dialplan/remote.py for what Asterisk does with them).

read what runs -> diff -> write the changed files -> check the admin's files include ours -> reload exactly the
changed modules -> the checks of the local apply -> on any failure write back what was read and reload again.
The admin AMI user needs write=config (GetConfig/UpdateConfig/CreateConfig) besides system,command (reload,
dialplan show); the engine's generated `hotline` user never has it.
"""
from __future__ import annotations

import difflib
import sys

import click
import structlog

from dialplan import apply as ap
from dialplan import remote as rm
from dialplan.render import mask_secrets
from ivr.ami.client import AmiClient, AmiError

log = structlog.get_logger()

NO_CONFIG_CLASS = ("the admin AMI user {user} may not read or write config files over AMI: give it "
                   "write=system,config,command in the remote Asterisk's manager.conf (never to the engine's "
                   "`hotline` user), then `manager reload` there")


class NoConfigClass(Exception):
    pass


def _error_text(exc: AmiError) -> str:
    return (exc.response or {}).get("Message", str(exc))


async def read_config(client: AmiClient, user: str, name: str) -> rm.Sections | None:
    """The file as the remote Asterisk reads it; None when it does not exist."""
    try:
        reply = (await client.action({"Action": "GetConfig", "Filename": name}))[0]
    except AmiError as exc:
        text = _error_text(exc)
        if "not found" in text:
            return None
        if "Permission denied" in text:
            raise NoConfigClass(NO_CONFIG_CLASS.format(user=user)) from None
        raise
    return rm.from_getconfig(reply)


async def write_config(client: AmiClient, name: str, sections: rm.Sections, exists: bool) -> None:
    """Replace the file with `sections` (an empty list: an empty file; AMI cannot delete one)."""
    if not exists:
        await _create(client, name)
    for i, chunk in enumerate(rm.update_actions(sections)):
        await client.action(rm.update_config(name, chunk, first=i == 0))


async def _create(client: AmiClient, name: str, user: str = "") -> None:
    try:
        await client.action({"Action": "CreateConfig", "Filename": name})
    except AmiError as exc:
        if "Permission denied" in _error_text(exc):
            raise NoConfigClass(NO_CONFIG_CLASS.format(user=user)) from None
        if "File exists" not in _error_text(exc):
            raise


def diff(name: str, old: rm.Sections | None, new: rm.Sections) -> str:
    a, b = mask_secrets(rm.canonical(old or [])), mask_secrets(rm.canonical(new))
    return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                        fromfile=f"{name} (running, over AMI)", tofile=f"{name} (rendered)"))


def reloads_for(changed: set[str]) -> list[str]:
    names = [name for name in ap.RELOADS if name in changed]
    if ap.QUEUES in names and ap.QUEUERULES in names:
        names.remove(ap.QUEUERULES)
    return names


async def missing_includes(client: AmiClient, user: str, wanted: dict[str, rm.Sections]) -> list[str]:
    """Admin files whose GetConfig (which follows #include) lacks a section of ours with its first line (the
    admin's own file may have a section of the same name: features.conf's [general])."""
    problems = []
    for ours, sections in wanted.items():
        admin = ap.INCLUDED_FROM[ours]
        have = await read_config(client, user, admin) if sections else []
        seen = [(cat, {(name, value) for name, value, _obj in items}) for cat, items in have or []]
        if have is None or not all(any(cat == c and (not items or items[0][:2] in lines) for c, lines in seen)
                                   for cat, items in sections):
            problems.append(f"{admin} on the Asterisk host does not #include {ours}: add the line "
                            f"`#tryinclude {ours}` to it by hand, once (AMI cannot write an #include; "
                            "#tryinclude, unlike #include, does not break the file while ours is missing)")
    return problems


async def file_problems(client: AmiClient, user: str, rendered: dict[str, str]) -> list[str]:
    """`check --remote`: our files as the remote Asterisk has them against a render, and the admin's includes."""
    new = {name: rm.parse(text, name) for name, text in rm.remote_files(rendered).items()}
    problems, installed = [], {}
    for name, sections in new.items():
        have = await read_config(client, user, name)
        if have is None:
            problems.append(f"{name} is missing on the Asterisk host: run `hotline asterisk apply --remote`")
            continue
        installed[name] = have   # whatever its content, the admin's file must include it
        if rm.canonical(have) != rm.canonical(sections):
            problems.append(f"{name} on the Asterisk host differs from a render of the table: "
                            "`hotline asterisk apply --remote`")
    return problems + await missing_includes(client, user, installed)


async def remote_apply(client: AmiClient, user: str, rendered: dict[str, str], dry_run: bool,
                       checks) -> tuple[int, dict]:
    """0 applied/nothing/dry run, 2 a file cannot be written over AMI, 4 rolled back. `checks()`: the local
    apply's checks of what runs. Returns (exit code, audit params)."""
    try:
        new = {name: rm.parse(text, name) for name, text in rm.remote_files(rendered).items()}
    except rm.RemoteFormatError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2, {}
    old = {name: await read_config(client, user, name) for name in new}
    changed = {name for name in new if old[name] is None or rm.canonical(old[name]) != rm.canonical(new[name])}
    for name in sorted(changed):
        sys.stdout.write(diff(name, old[name], new[name]))
    reloads = reloads_for(changed)
    params = {"remote": True, "files": sorted(changed), "reloaded": reloads}
    if not changed:
        click.echo("no change on the remote Asterisk: nothing written, nothing reloaded")
        return 0, params
    what = f"write {', '.join(sorted(changed))} over AMI and reload {', '.join(reloads)}"
    if dry_run:
        click.echo(f"dry run: would {what}; nothing changed")
        return 0, params
    click.echo(f"will {what}")
    await _create(client, rm.SCRATCH, user)   # CreateConfig needs write=config: refused here, before any write
    if await read_config(client, user, rm.SCRATCH):
        click.echo(f"error: {rm.SCRATCH} on the Asterisk host is not empty: empty it (it is the source every "
                   "write over AMI starts from)", err=True)
        return 2, params
    written: list[str] = []
    try:
        for name in sorted(changed):
            written.append(name)
            await write_config(client, name, new[name], old[name] is not None)
        click.echo(f"written over AMI: {', '.join(written)}")
        problems = await missing_includes(client, user, {n: new[n] for n in changed})
        if not problems:
            from scripts.cli_asterisk import _reload
            problems = [p for name in reloads if (p := await _reload(client, name))]
        if not problems:
            problems = await checks()
    except AmiError as exc:
        problems = [f"AMI: {_error_text(exc)}"]
    if not problems:
        click.echo(f"applied over AMI: reloaded {', '.join(reloads)}; checks passed")
        return 0, params
    for problem in problems:
        click.echo(f"check failed: {mask_secrets(problem)}", err=True)
    from scripts.cli_asterisk import _reload
    again = []
    try:
        for name in written:
            await write_config(client, name, old[name] or [], True)
        again = [p for name in reloads if (p := await _reload(client, name))]
    except AmiError as exc:
        again = [f"AMI: {_error_text(exc)}"]
    click.echo(f"rolled back over AMI: the previous {', '.join(written)} written back and reloaded"
               + (" (a file that did not exist is left empty: AMI cannot delete it)"
                  if any(old[n] is None for n in written) else "")
               + (f" (rollback failed too: {'; '.join(again)})" if again else ""), err=True)
    log.warning("asterisk.remote_rolled_back", problems=problems)
    params["problems"] = problems
    return 4, params
