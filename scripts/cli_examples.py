"""Examples for the help of the commands that do not carry their own `epilog`, by command path.

A command that has its own epilog keeps it (new commands write theirs next to their code); these fill in the
rest, in one place. tests/test_cli_help.py checks every command of the tree has an example and that each
example names real commands and options.
"""
from __future__ import annotations

import click

EXAMPLES: dict[str, list[str]] = {
    "": ["hotline routes check", "hotline serve --dry-run", "hotline doctor", "hotline --version"],
    "agents": ["hotline agents check", "hotline agents list"],
    "agents check": ["hotline agents check --agents conf/agents.yaml --table conf/routing.yaml"],
    "agents list": ["hotline agents list --secrets /etc/hotline/secrets.env"],
    "ami": ["hotline ami ping"],
    "ami ping": ["hotline ami ping --timeout 5"],
    "asterisk": ["hotline asterisk apply --confdir /etc/asterisk --dry-run",
                 "hotline asterisk check --confdir /etc/asterisk"],
    "asterisk apply": ["hotline asterisk apply --confdir /etc/asterisk --dry-run    # the diff, nothing changed",
                       "hotline asterisk apply --confdir /etc/asterisk --agi-hosts 10.0.0.5:4573,10.0.0.6:4573",
                       "hotline asterisk apply --remote --ami-host 10.0.0.9 --dry-run    # over AMI, another host"],
    "asterisk check": ["hotline asterisk check --confdir /etc/asterisk",
                       "hotline asterisk check --remote --ami-host 10.0.0.9    # files and includes over AMI"],
    "callbacks": ["hotline callbacks list", "hotline callbacks take 1700000000.42 --agent 8001"],
    "callbacks list": ["hotline callbacks list --queue general-12345 --status all"],
    "callbacks take": ["hotline callbacks take 1700000000.42 --agent 8001"],
    "callbacks done": ["hotline callbacks done 1700000000.42 --agent 8001"],
    "db": ["hotline db upgrade", "hotline db current"],
    "db current": ["hotline db current --db-url postgresql+psycopg://hotline@db.example/hotline"],
    "db upgrade": ["hotline db upgrade", "HOTLINE_DB_URL=postgresql+psycopg://hotline@db.example/hotline hotline db upgrade"],
    "dialplan": ["hotline dialplan diff --out /etc/asterisk", "hotline dialplan render --out /etc/asterisk"],
    "dialplan diff": ["hotline dialplan diff --out /etc/asterisk      # exit 0: no change, 1: changes"],
    "dialplan render": ["hotline dialplan render --out /etc/asterisk",
                        "hotline dialplan render --out /tmp/ast --hagi engines.hotline.example --strict"],
    "doctor": ["hotline doctor", "hotline doctor --json"],
    "menus": ["hotline menus check", "hotline menus show main"],
    "menus check": ["hotline menus check",
                    "hotline menus check --menus /tmp/new-ivr.yaml --table conf/routing.yaml"],
    "menus prompts": ["hotline menus prompts",
                      "hotline menus prompts --sounds-dir /var/lib/asterisk/sounds --generate"],
    "menus show": ["hotline menus show", "hotline menus show cities --menus conf/ivr.yaml"],
    "queues": ["hotline queues watch"],
    "queues watch": ["hotline queues watch", "hotline queues watch --once --timeout 5"],
    "records": ["hotline records search --line 12320 --since 2026-12-01",
                "hotline records versions"],
    "records search": ["hotline records search --line 12320 --since 2026-12-01",
                       "hotline records search --caller 13800138000 --outcome abandoned"],
    "records export": ["hotline records export --csv /tmp/calls.csv --since 2026-11-01 --until 2026-12-01"],
    "records versions": ["hotline records versions", "hotline records versions --diff 3f2a9c bac514"],
    "report": ["hotline report daily", "hotline report daily --date 2026-11-30 --json"],
    "report daily": ["hotline report daily --date 2026-11-30", "hotline report daily --json"],
    "routes": ["hotline routes check", "hotline routes explain 12320 --at 2026-10-01T10:00"],
    "routes check": ["hotline routes check", "hotline routes check --table /tmp/new-routing.yaml --calendar-days 90"],
    "routes explain": ["hotline routes explain 12320 --at 2026-10-01T10:00    # a holiday: the hours, the next opening",
                       "hotline routes explain 12345 --caller 13800000000 --recent-calls 25 --json"],
    "routes list": ["hotline routes list --at 2026-10-03T10:00"],
    "transfer": ["hotline transfer warm 'Local/agent1@queue-agents-00000003;1' 12348",
                 "hotline transfer handover PJSIP/agent7-0000001a 12345 --target emergency-119"],
    "web": ["hotline web", "hotline web --port 8346"],
    "workorders": ["hotline workorders list --overdue",
                   "hotline workorders dispatch --line 12366 --category subcenter --target subcenter-12366"],
    "workorders list": ["hotline workorders list --overdue", "hotline workorders list --line 12366 --status signed"],
    "workorders dispatch": ["hotline workorders dispatch --line 12366 --category subcenter --target subcenter-12366 "
                            "--by 8001 --summary '税务专业问题' --days 2"],
    "workorders sign": ["hotline workorders sign WO-20261201-0001 --by desk-12366"],
    "workorders close": ["hotline workorders close WO-20261201-0001 --by desk-12366"],
}


def epilog_for(path: str) -> str | None:
    lines = EXAMPLES.get(path)
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None


def add_examples(command: click.Command, path: str) -> click.Command:
    """Give `command` (and its subcommands) the examples above where it has no epilog of its own."""
    if not command.epilog:
        command.epilog = epilog_for(path)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_examples(sub, f"{path} {name}".strip())
    return command
