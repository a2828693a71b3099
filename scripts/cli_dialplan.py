"""`hotline dialplan render|diff`: the Asterisk configuration generated from the routing table.

Exit codes: render 0 written, 2 bad input (table, options, secrets file), 3 --strict and a secret missing or a
trunk host Asterisk cannot use (a placeholder .invalid, or a name that does not resolve); diff 0 nothing would
change, 1 changes, 2 bad input (3 with --strict, as render).
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click
import structlog

from dialplan.common import RenderError
from dialplan.options import OptionsError, RenderOptions, collect_secrets, engines_from, read_secrets_file
from dialplan.render import diff_files, missing_secrets, render, secret_names, write_files
from routing.agents import AgentsError, default_agents_path, load_agents
from routing.loader import TableError, load_table_with_warnings
from scripts.dnscheck import system_resolver
from scripts.settings import CONF_DIR

log = structlog.get_logger()


def _options(func):
    func = click.option("--agents", "agents_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        default=None, show_default="agents.yaml beside the table, if there is one",
                        help="Agents file: their login/logout codes (extensions_hotline_agents.conf).")(func)
    func = click.option("--ami-permit", multiple=True, metavar="ADDR[/MASK]",
                        help="Address allowed to log in as the AMI user (repeat; default 127.0.0.1 only).")(func)
    func = click.option("--transport", default="transport-udp", show_default=True,
                        help="Your pjsip transport section, used by the generated trunks.")(func)
    func = click.option("--engine-timeout", type=click.IntRange(min=1), default=300, show_default=True,
                        help="Seconds the engine step (IVR included) may take before the call fails open.")(func)
    func = click.option("--emergency-engine-timeout", type=click.IntRange(min=1), default=10, show_default=True,
                        help="The same bound for emergency linkage lines (110/119/120/122): their trunk after it.")(func)
    func = click.option("--no-dns", "no_dns", is_flag=True,
                        help="Do not look trunk host names up (placeholders are still reported).")(func)
    func = click.option("--strict", is_flag=True, help="Fail (exit 3, nothing written) if a secret is missing or "
                        "a trunk host is a placeholder (.invalid) or does not resolve.")(func)
    func = click.option("--secrets", "secrets_file", type=click.Path(dir_okay=False, path_type=Path),
                        default=lambda: os.environ.get("HOTLINE_SECRETS_FILE") or None,
                        help="KEY=value file with trunk and AMI secrets (default: $HOTLINE_SECRETS_FILE). "
                             "The environment wins over it.")(func)
    func = click.option("--hagi", metavar="NAME", help="Engines found by DNS SRV _agi._tcp.NAME (hagi://).")(func)
    func = click.option("--agi-hosts", metavar="H1:P,H2:P", help="Engines tried in this order.")(func)
    func = click.option("--agi", metavar="agi://HOST:PORT",
                        help="One engine (default: agi://$HOTLINE_AGI_HOST:$HOTLINE_AGI_PORT).")(func)
    func = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                        help="Directory of the generated *_hotline.conf files.")(func)
    func = click.option("--table", "table_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        default=lambda: os.environ.get("HOTLINE_ROUTING_TABLE") or str(CONF_DIR / "routing.yaml"),
                        show_default="$HOTLINE_ROUTING_TABLE or conf/routing.yaml", help="Routing table YAML.")(func)
    return func


def _prepare(table_path: Path, agi: str | None, agi_hosts: str | None, hagi: str | None,
             secrets_file: Path | None, engine_timeout: int, transport: str, ami_permit: tuple[str, ...],
             no_dns: bool = False, emergency_engine_timeout: int = 10, agents_path: Path | None = None):
    try:
        loaded = load_table_with_warnings(table_path, resolve=None if no_dns else system_resolver())
        table = loaded.table
        agents_path = agents_path or default_agents_path(table_path)
        roster = load_agents(agents_path, table) if agents_path else None
    except (TableError, AgentsError) as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(2) from None
    try:
        if not (agi or agi_hosts or hagi):
            host = os.environ.get("HOTLINE_AGI_HOST", "127.0.0.1")
            port = os.environ.get("HOTLINE_AGI_PORT", "4573")
            agi = f"agi://{host}:{port}"
        engines = engines_from(agi=agi, agi_hosts=agi_hosts, hagi=hagi)
        file_values = read_secrets_file(secrets_file) if secrets_file else {}
        shape = RenderOptions(engines=engines, engine_timeout=engine_timeout, transport=transport,
                              emergency_engine_timeout=emergency_engine_timeout, agents=roster,
                              **({"ami_permit": ami_permit} if ami_permit else {}))
        names = secret_names(table, shape)
        options = dataclasses.replace(shape, secrets=collect_secrets(names, os.environ, file_values))
    except (OptionsError, RenderError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    return table, options, loaded.hosts


@click.group()
def dialplan() -> None:
    """Asterisk configuration generated from the routing table (extensions, pjsip, queues, manager, features)."""


def _rendered(table_path, agi, agi_hosts, hagi, secrets_file, strict, engine_timeout, transport, ami_permit,
              no_dns=False, emergency_engine_timeout=10, agents_path=None):
    """The rendered files with their table and options; exit 3 under --strict when a secret is missing or a
    trunk host is unusable. Host problems are printed either way, as file:line warnings."""
    table, options, hosts = _prepare(table_path, agi, agi_hosts, hagi, secrets_file, engine_timeout, transport,
                                     ami_permit, no_dns, emergency_engine_timeout, agents_path)
    for problem in hosts:
        click.echo(str(problem), err=True)
    missing = missing_secrets(table, options)
    if strict and missing:
        click.echo(f"error: secrets missing (nothing written): {', '.join(missing)}", err=True)
    if strict and hosts:
        click.echo(f"error: {len(hosts)} trunk host(s) Asterisk cannot use (nothing written): set the real "
                   "addresses in the table, or render without --strict", err=True)
    if strict and (missing or hosts):
        raise SystemExit(3)
    try:
        return table, options, render(table, options), missing
    except RenderError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


@dialplan.command("render")
@_options
def render_command(table_path, out_dir, agi, agi_hosts, hagi, secrets_file, strict, no_dns, engine_timeout,
                   emergency_engine_timeout, transport, ami_permit, agents_path) -> None:
    """Write the *_hotline.conf files into --out (pjsip and manager mode 0600: they hold secrets)."""
    table, _options_used, files, missing = _rendered(table_path, agi, agi_hosts, hagi, secrets_file, strict,
                                                      engine_timeout, transport, ami_permit, no_dns,
                                                      emergency_engine_timeout, agents_path)
    changed = write_files(files, out_dir)
    log.info("dialplan.written", out=str(out_dir), changed=changed, table_version=table.version)
    click.echo(f"{len(changed)} of {len(files)} files changed in {out_dir}" +
               (f": {', '.join(changed)}" if changed else ""))
    if missing:
        click.echo(f"warning: secrets missing, placeholders rendered: {', '.join(missing)}", err=True)


@dialplan.command("diff")
@_options
def diff_command(table_path, out_dir, agi, agi_hosts, hagi, secrets_file, strict, no_dns, engine_timeout,
                 emergency_engine_timeout, transport, ami_permit, agents_path) -> None:
    """Show what a render would change in --out (secret values masked). Exit 0: no change, 1: changes."""
    _table, _options_used, files, _missing = _rendered(table_path, agi, agi_hosts, hagi, secrets_file, strict,
                                                 engine_timeout, transport, ami_permit, no_dns,
                                                 emergency_engine_timeout, agents_path)
    text = diff_files(files, out_dir)
    if text:
        sys.stdout.write(text)
        raise SystemExit(1)
    click.echo(f"no change in {out_dir}")
