"""`hotline menus`: check the IVR menus (conf/ivr.yaml) against the routing table, show them, list their prompts."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import click

from dialplan.options import RenderOptions
from ivr.menus import Kind, MenuError, Menus, load_menus
from ivr.prompts import PromptTextError, State, load_prompt_texts, missing_tools, plan, survey
from ivr.prompts import generate as generate_prompts
from routing.loader import TableError, load_table
from routing.model import RoutingTable
from routing.suggest import did_you_mean
from scripts import cliopts
from scripts.settings import CONF_DIR, load_settings

menus_argument = click.argument("file", required=False, type=click.Path(path_type=Path))
menus_option = cliopts.menus_option("file")    # --menus (old spelling -f/--file still works)
table_option = click.option("--table", "table_path", type=click.Path(path_type=Path), default=None,
                            help="Routing table to check queues and menu names against "
                                 "(default: HOTLINE_ROUTING_TABLE or conf/routing.yaml).")


def _load(file: Path | None, table_path: Path | None, *, need_table: bool = True) -> tuple[Menus, RoutingTable | None]:
    settings = load_settings()
    path = file or settings.ivr_menus
    table_path = table_path or settings.routing_table
    failed = 0
    table = None
    try:
        table = load_table(table_path)
    except TableError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{table_path}: {len(exc.problems)} error(s); the menus are checked without the table", err=True)
        failed = 1
    try:
        menus = load_menus(path, table)
    except MenuError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{path}: {len(exc.problems)} error(s); nothing was loaded", err=True)
        sys.exit(1)
    if failed and need_table:
        sys.exit(1)
    return menus, table


@click.group()
def menus() -> None:
    """Check, show and list the prompts of the IVR menus."""


@menus.command()
@menus_argument
@cliopts.menus_option("menus_path")
@table_option
def check(file: Path | None, menus_path: Path | None, table_path: Path | None) -> None:
    """Validate the menus (--menus, or FILE); print every problem as file:line:column and exit 1 if there is
    any."""
    loaded, table = _load(cliopts.merge_positional(file, menus_path, "--menus"), table_path)
    click.echo(f"{loaded.source}: OK, {len(loaded.menus)} menus ({', '.join(loaded.menus)}), "
               f"{len(loaded.prompt_files())} prompt files, version {loaded.version}; "
               f"checked against {table.source} (version {table.version})")


@menus.command()
@menus_option
@table_option
@click.argument("menu_id", required=False)
def show(file: Path | None, table_path: Path | None, menu_id: str | None) -> None:
    """Print the menus (or one) as the caller meets them: keys, destinations, timeouts."""
    loaded, _ = _load(file, table_path, need_table=False)
    for menu in loaded.menus.values():
        if menu_id and menu.id != menu_id:
            continue
        click.echo(f"{menu.id}  ({menu.label or 'no label'})  line {menu.line}")
        click.echo(f"  prompt zh={menu.prompt.zh} en={menu.prompt.en}")
        click.echo(f"  listen {menu.timeout_ms / 1000:g}s for up to {menu.max_digits} key(s), "
                   f"barge-in {'on' if menu.barge_in else 'off'}, {menu.retries} retries, then "
                   f"{_describe(menu.after_retries)}")
        for key, dest in menu.options.items():
            label = f"  # {dest.label}" if dest.label else ""
            click.echo(f"  {key:>3} -> {_describe(dest)}{label}")
    if menu_id and menu_id not in loaded:
        raise click.BadParameter(f"no menu '{menu_id}'" + (did_you_mean(menu_id, loaded.menus)
                                                           or f" (menus: {', '.join(loaded.menus)})"))


def dialplan_prompts() -> set[str]:
    """The sounds the generated dialplan plays itself (all agents busy, emergency trunk unreachable)."""
    defaults = RenderOptions()
    return {getattr(defaults, f.name) for f in fields(RenderOptions) if f.name.startswith("prompt_")}


def _describe(dest) -> str:
    text = dest.kind.value if dest.target is None else f"{dest.kind.value} {dest.target}"
    if dest.tags:
        text += f" +tags {'+'.join(dest.tags)}"
    if dest.kind is Kind.HANGUP and dest.prompt is not None:
        text += f" after {dest.prompt.zh} / {dest.prompt.en}"
    return text


@menus.command()
@menus_option
@table_option
@click.option("--sounds-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Asterisk's sounds directory: say of each prompt whether it is missing, generated or "
                   "recorded there (exit 1 if any is missing).")
@click.option("--texts", "texts_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="What each prompt says (default: conf/prompts.txt).")
@click.option("--generate", is_flag=True,
              help="With --sounds-dir: synthesize the missing prompts (espeak-ng + sox, 8 kHz .wav) and redo "
                   "generated ones whose text changed; recordings are never touched.")
def prompts(file: Path | None, table_path: Path | None, sounds_dir: Path | None, texts_path: Path | None,
            generate: bool) -> None:
    """Every sound the menus, the routing table and the dialplan play (conf/prompts.txt says what each must say)."""
    loaded, table = _load(file, table_path, need_table=False)
    names = set(loaded.prompt_files()) | dialplan_prompts()
    if table is not None:
        names |= set(table.unknown_prompts) | set(table.abuse.prompts)
        names |= {p for q in table.queues.values() if q.when_closed for p in q.when_closed.prompts}
        names |= {retry.announce for retry in table.emergency_retry.values()}
        names |= {p for switch in table.switches.values() for p in switch.prompts}
        for line in table.lines.values():
            for rule in line.rules:
                names |= set(rule.prompts) | set(rule.after_prompts)
    if sounds_dir is None:
        if generate:
            raise click.UsageError("--generate needs --sounds-dir (where Asterisk reads its sounds)")
        for name in sorted(names):
            click.echo(name)
        return
    try:
        texts = load_prompt_texts(texts_path or CONF_DIR / "prompts.txt")
        names |= set(texts)
        states = survey(sounds_dir, names, texts)
        if generate:
            todo = plan(states)
            if todo.write and (absent := missing_tools()):
                click.echo(f"cannot generate: {' and '.join(absent)} not installed "
                           "(Debian: apt-get install espeak-ng sox)", err=True)
                sys.exit(1)
            generate_prompts(sounds_dir, todo, texts,
                             progress=lambda action, path: click.echo(f"{action} {sounds_dir / path}", err=True))
            states = survey(sounds_dir, names, texts)
    except PromptTextError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(1)
    except subprocess.CalledProcessError as exc:
        click.echo(f"{exc.cmd[0]} failed ({exc.returncode}): {(exc.stderr or '').strip()}", err=True)
        sys.exit(1)
    counts = {state: 0 for state in State}
    for s in states:
        counts[s.state] += 1
        files = ", ".join(s.recorded or s.generated)
        note = "  (no text in prompts.txt)" if not s.has_text and s.state is State.MISSING else ""
        click.echo(f"{s.name}  {s.state.value}{'  ' + files if files else ''}{note}")
    click.echo(", ".join(f"{n} {state.value}" for state, n in counts.items())
               + f" of {len(states)} prompts under {sounds_dir}", err=True)
    sys.exit(1 if counts[State.MISSING] else 0)
