"""Options every `hotline` command spells the same way, and "did you mean" for ids given on the command line.

One spelling per thing: `--table PATH` (the routing table), `--menus PATH` (the IVR menus). Older spellings
(`-f/--file`, a positional FILE) keep working as hidden aliases so admins' scripts do not break.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from routing.suggest import close_matches


def path_option(flag: str, dest: str, help: str, *, legacy: tuple[str, ...] = ("--file", "-f")) -> Callable:
    """`flag` (shown) with `legacy` flags as a hidden alias; the command receives one keyword, `dest`."""
    legacy_dest = f"_{dest}_legacy"

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            old = kwargs.pop(legacy_dest, None)
            if kwargs.get(dest) is None:
                kwargs[dest] = old
            elif old is not None and old != kwargs[dest]:
                raise click.UsageError(f"{flag} {kwargs[dest]} and {'/'.join(legacy)} {old} disagree; give {flag} "
                                       "only")
            return f(*args, **kwargs)

        wrapper = click.option(*legacy, legacy_dest, type=click.Path(path_type=Path), default=None, hidden=True,
                               expose_value=True)(wrapper)
        return click.option(flag, dest, type=click.Path(path_type=Path), default=None, help=help)(wrapper)
    return decorate


def table_option(dest: str = "file") -> Callable:
    return path_option("--table", dest, "Routing table [HOTLINE_ROUTING_TABLE, conf/routing.yaml].")


def menus_option(dest: str = "file") -> Callable:
    return path_option("--menus", dest, "IVR menus [HOTLINE_IVR_MENUS, conf/ivr.yaml].")


def merge_positional(positional: Path | None, option: Path | None, flag: str) -> Path | None:
    """A positional FILE (the old spelling) and the option name one file; both and different: an error."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(f"FILE {positional} and {flag} {option} disagree; give {flag} only")
    return option or positional


def _table_ids(kind: str) -> set[str] | None:
    """Queue ids or line numbers of the configured routing table; None when it cannot be loaded here."""
    from routing.loader import TableError, load_table
    from scripts.settings import load_settings

    try:
        table = load_table(load_settings().routing_table)
    except (TableError, OSError):
        return None
    return set(table.queues) if kind == "queue" else set(table.lines)


def known_id(kind: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: an id the routing table lacks but nearly has is refused with the near-misses; one
    with no near-miss passes with a note (records keep ids of lines and queues since removed)."""
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        ids = _table_ids(kind)
        if ids is None or value in ids:
            return value
        near = close_matches(value, ids)
        if near:
            raise click.BadParameter(f"no {kind} '{value}' in the routing table; did you mean "
                                     + " or ".join(near) + "?", ctx=ctx, param=param)
        click.echo(f"note: '{value}' is not a {kind} of the routing table (a removed one?)", err=True)
        return value
    return check
