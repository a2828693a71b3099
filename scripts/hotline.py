"""The `hotline` command: one entry point, one subcommand group per capability.

Groups are imported lazily so `hotline routes check` does not pay for the web stack or AMI.
"""
from __future__ import annotations

import importlib
import platform
from importlib import metadata

import click

from scripts.cli_examples import add_examples, epilog_for
from scripts.logsetup import configure_logging

# name -> "module:attribute" of a click command or group. Each capability owns its module.
SUBCOMMANDS: dict[str, str] = {
    "routes": "scripts.cli_routes:routes",
    "menus": "scripts.cli_menus:menus",
    "web": "scripts.cli_supervisor:web",
    "queues": "scripts.cli_supervisor:queues",
    "dialplan": "scripts.cli_dialplan:dialplan", "asterisk": "scripts.cli_asterisk:asterisk",
    "db": "scripts.cli_records:db", "records": "scripts.cli_records:records",
    "report": "scripts.cli_records:report", "workorders": "scripts.cli_records:workorders_group",
    "callbacks": "scripts.cli_records:callbacks_group",
    "serve": "scripts.cli_engine:serve", "reload": "scripts.cli_engine:reload", "call": "scripts.cli_engine:call",
    "ami": "scripts.cli_ami:ami", "transfer": "scripts.cli_ami:transfer",
    "agents": "scripts.cli_agents:agents",
    "switch": "scripts.cli_switches:switch",
    "doctor": "scripts.cli_doctor:doctor",
    "traffic": "scripts.cli_traffic:traffic",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return add_examples(getattr(importlib.import_module(module), attr), name)


def package_version() -> str:
    try:
        return metadata.version("hotline12345")
    except metadata.PackageNotFoundError:      # run from a checkout without `pip install -e .`
        return "unknown (not installed)"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=epilog_for(""))
@click.version_option(package_version(), "--version", "-V", prog_name="hotline",
                      message="%(prog)s %(version)s (Python " + platform.python_version() + ")")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Lowest log level printed.")
@click.option("--log-format", default="auto", show_default=True, type=click.Choice(["auto", "json", "console"]),
              help="auto: readable on a terminal, JSON lines otherwise.")
def cli(log_level: str, log_format: str) -> None:
    """Call-routing engine for the 12345 citizen-service hotline."""
    configure_logging(level=log_level, fmt=log_format)


def main() -> None:
    cli(prog_name="hotline")


if __name__ == "__main__":
    main()
