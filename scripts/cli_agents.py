"""`hotline agents check|list`: the agents file (conf/agents.yaml) against the routing table.

Exit codes: 0 valid, 2 bad input (the table or the agents file: every problem printed as file:line:col).
`list` says for each agent whether its PIN is set (environment or --secrets file), never the PIN.
"""
from __future__ import annotations

import os
from pathlib import Path

import click

from dialplan.agents import LOGIN, LOGOUT
from dialplan.options import OptionsError, read_secrets_file
from routing.agents import AgentsError, Roster, default_agents_path, load_agents
from routing.loader import TableError, load_table
from scripts.settings import CONF_DIR


def _files(func):
    func = click.option("--agents", "agents_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        show_default="agents.yaml beside the table", help="Agents YAML.")(func)
    func = click.option("--table", "table_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        default=lambda: os.environ.get("HOTLINE_ROUTING_TABLE") or str(CONF_DIR / "routing.yaml"),
                        show_default="$HOTLINE_ROUTING_TABLE or conf/routing.yaml", help="Routing table YAML.")(func)
    return func


def _load(table_path: Path, agents_path: Path | None) -> Roster:
    path = agents_path or default_agents_path(table_path)
    if path is None:
        click.echo(f"error: no agents file: none given (--agents) and no agents.yaml beside {table_path}", err=True)
        raise SystemExit(2)
    try:
        return load_agents(path, load_table(table_path))
    except (TableError, AgentsError) as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None


@click.group(epilog="\b\nExamples:\n  hotline agents check\n  hotline agents list --secrets /etc/hotline/secrets.env")
def agents() -> None:
    """Agents and the queues they log in to from their phone (*91<agent> in, *92<agent> out, with a PIN)."""


@agents.command("check", epilog="\b\nExamples:\n  hotline agents check\n"
                "  hotline agents check --table conf/routing.yaml --agents conf/agents.yaml")
@_files
def check_command(table_path: Path, agents_path: Path | None) -> None:
    """Validate the agents file against the routing table."""
    roster = _load(table_path, agents_path)
    queues = {q for a in roster.agents for q, _ in a.queues}
    click.echo(f"{roster.source}: ok, version {roster.version}: {len(roster.agents)} agents in {len(queues)} queues")


@agents.command("list", epilog="\b\nExamples:\n  hotline agents list\n"
                "  hotline agents list --secrets /etc/hotline/secrets.env")
@_files
@click.option("--secrets", "secrets_file", type=click.Path(dir_okay=False, path_type=Path),
              default=lambda: os.environ.get("HOTLINE_SECRETS_FILE") or None,
              help="KEY=value file with the PINs (default: $HOTLINE_SECRETS_FILE); the environment wins over it.")
def list_command(table_path: Path, agents_path: Path | None, secrets_file: Path | None) -> None:
    """Each agent: codes, interface, queues with penalties (and the member penalty its skills give), skills, and
    whether its PIN is set (never the PIN)."""
    roster = _load(table_path, agents_path)
    try:
        file_values = read_secrets_file(secrets_file) if secrets_file else {}
    except (OptionsError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    for agent in roster.agents:
        pin = "set" if (os.environ.get(agent.pin_env) or file_values.get(agent.pin_env)) else "MISSING"
        queues = ", ".join(f"{q} (penalty {p}, as member {roster.member_penalty(agent, q)})" for q, p in agent.queues)
        skills = f"  skills: {', '.join(agent.skills)}" if agent.skills else ""
        click.echo(f"{agent.number}  {agent.name}  {LOGIN}{agent.number}/{LOGOUT}{agent.number}  {agent.interface}"
                   + (f" (state {agent.state_interface})" if agent.state_interface else "")
                   + f"  PIN {agent.pin_env}: {pin}  queues: {queues}{skills}")
