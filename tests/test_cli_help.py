"""The CLI's own help (issue 11, item 9): every command of the tree, as it is at test time, has examples that
name real commands and options; --version; one spelling per file option with the old ones still working;
"did you mean" for near-miss keys and ids."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from scripts.hotline import cli

ROOT = Path(__file__).resolve().parents[1]


def command_tree() -> list[tuple[list[str], click.Command]]:
    """Every command and group under `hotline`, loaded the way the CLI loads them."""
    found: list[tuple[list[str], click.Command]] = []

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        found.append((path, cmd))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd, info_name=path[-1] if path else "hotline", parent=parent)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), path + [name], ctx)

    walk(cli, [], None)
    return found


TREE = command_tree()


def example_lines(cmd: click.Command) -> list[str]:
    return [line for line in (cmd.epilog or "").splitlines() if line.startswith("  hotline ")]


def test_the_tree_is_walked_whole():
    paths = {" ".join(p) for p, _ in TREE}
    assert {"", "routes explain", "serve", "workorders sign", "web hash-password", "callbacks done"} <= paths
    assert len(paths) >= 45


@pytest.mark.parametrize("path,cmd", TREE, ids=[" ".join(p) or "hotline" for p, _ in TREE])
def test_every_command_has_examples_and_a_description(path, cmd):
    assert cmd.epilog and "Examples:" in cmd.epilog, f"hotline {' '.join(path)}: no Examples: in its epilog"
    assert example_lines(cmd), f"hotline {' '.join(path)}: no example line starting with '  hotline '"
    assert (cmd.help or "").strip(), f"hotline {' '.join(path)}: no description"
    shown = CliRunner().invoke(cli, [*path, "--help"], prog_name="hotline")
    assert shown.exit_code == 0 and "Examples:" in shown.output
    assert re.search(r"^\s+hotline \S", shown.output, re.M), shown.output   # \b kept the lines as written


def resolve(words: list[str]) -> tuple[click.Command, list[str], click.Context]:
    ctx = click.Context(cli, info_name="hotline")
    cmd: click.Command = cli
    while isinstance(cmd, click.Group) and words and not words[0].startswith("-"):
        sub = cmd.get_command(ctx, words[0])
        assert sub is not None, f"no command {words[0]!r} under {ctx.command_path}"
        ctx = click.Context(sub, info_name=words[0], parent=ctx)
        cmd, words = sub, words[1:]
    return cmd, words, ctx.parent or ctx


EXAMPLES = [(" ".join(p), line) for p, cmd in TREE for line in example_lines(cmd)]


@pytest.mark.parametrize("where,line", EXAMPLES, ids=[line.strip()[:60] for _, line in EXAMPLES])
def test_each_example_parses_against_the_real_command(where, line):
    words = shlex.split(line, comments=True)
    while words and re.match(r"^[A-Z_]+=", words[0]):          # VAR=value before the command
        words.pop(0)
    words = [w for w in words if w != "&"]
    if "|" in words or ">>" in words:                          # a pipe: only the hotline part is ours
        words = words[words.index("hotline"):]
        words = words[:min([words.index(t) for t in ("|", ">>") if t in words] or [len(words)])]
    assert words[0] == "hotline", line
    cmd, args, parent = resolve(words[1:])
    if cmd is cli:
        assert args == ["--version"], line
        return
    # a real parse: unknown options, missing arguments and bad choices fail here (no callback runs the command);
    # a path that does not exist on this machine (/etc/asterisk) is the example's to name, not an error
    try:
        cmd.make_context(cmd.name, list(args), parent=parent)
    except click.BadParameter as exc:
        if not (isinstance(exc.param.type, click.Path) and "does not exist" in exc.message):
            raise


def test_version():
    out = CliRunner().invoke(cli, ["--version"], prog_name="hotline")
    assert out.exit_code == 0 and re.fullmatch(r"hotline \d+\.\d+\.\d+ \(Python 3\.\d+\.\d+\)\n", out.output)


def test_one_spelling_for_the_table_and_menus_and_the_old_ones_still_work():
    runner = CliRunner()
    table, menus = str(ROOT / "conf" / "routing.yaml"), str(ROOT / "conf" / "ivr.yaml")
    for args in (["routes", "check", "--no-dns", "--table", table], ["routes", "check", "--no-dns", table],
                 ["routes", "list", "--table", table], ["routes", "list", "-f", table],
                 ["routes", "explain", "12345", "--file", table],
                 ["menus", "check", "--menus", menus], ["menus", "check", menus],
                 ["menus", "show", "main", "--menus", menus], ["menus", "show", "main", "-f", menus]):
        out = runner.invoke(cli, args)
        assert out.exit_code == 0, (args, out.output)
    for path, cmd in TREE:                  # the old spellings are hidden: help shows --table / --menus only
        shown = {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts}
        assert not shown & {"--file", "-f"}, f"hotline {' '.join(path)} still shows --file"
    clash = runner.invoke(cli, ["routes", "check", "--no-dns", table, "--table", "/tmp/other.yaml"])
    assert clash.exit_code == 2 and "disagree" in clash.output


def test_did_you_mean_for_numbers_ids_and_keys(tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["routes", "explain", "1234"])
    assert "did you mean: 12345 (海南12345政务服务便民热线" in out.output
    bad = runner.invoke(cli, ["callbacks", "list", "--queue", "genral-12345"])
    assert bad.exit_code == 2 and "no queue 'genral-12345' in the routing table; did you mean general-12345?" \
        in bad.output
    line = runner.invoke(cli, ["records", "search", "--line", "1232"])
    assert line.exit_code == 2 and "did you mean" in line.output and "12320" in line.output
    menu = runner.invoke(cli, ["menus", "show", "citys"])
    assert menu.exit_code == 2 and "did you mean 'cities'?" in menu.output
    text = (ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8")
    typo = tmp_path / "routing.yaml"
    typo.write_text(text.replace("    overflow: {after_seconds: 90", "    overfow: {after_seconds: 90", 1),
                    encoding="utf-8")
    checked = runner.invoke(cli, ["routes", "check", "--no-dns", "--table", str(typo)])
    assert checked.exit_code == 1 and "unknown key 'overfow'; did you mean 'overflow'?" in checked.output
    typo.write_text(text.replace("strategy: rrmemory", "strategy: rrmemroy", 1), encoding="utf-8")
    value = runner.invoke(cli, ["routes", "check", "--no-dns", "--table", str(typo)])
    assert value.exit_code == 1 and "or 'rrordered'; did you mean 'rrmemory'?" in value.output


def test_hash_password_says_what_it_needs_and_prints_a_users_line():
    runner = CliRunner()
    short = runner.invoke(cli, ["web", "hash-password", "--name", "wang", "--role", "supervisor", "--password-stdin"],
                          input="short\n")
    assert short.exit_code == 1 and "the password has 5 characters; use at least 10" in short.output
    ok = runner.invoke(cli, ["web", "hash-password", "--name", "wang", "--role", "supervisor", "--phone",
                             "PJSIP/8001", "--password-stdin"], input="long-enough-1\n")
    assert ok.exit_code == 0, ok.output
    line = ok.stdout.strip().splitlines()[0]
    from supervisor.auth import authenticate, parse_users
    users = parse_users(line)
    assert users["wang"].role == "supervisor" and users["wang"].phone == "PJSIP/8001"
    assert authenticate(users, "wang", "long-enough-1") is not None and "long-enough-1" not in ok.output
    helptext = runner.invoke(cli, ["web", "hash-password", "--help"]).output
    assert "at least 10 characters" in helptext
