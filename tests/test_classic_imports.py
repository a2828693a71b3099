"""What a classic AGI process imports (issue 14: a process per call, so imports are most of its cost).

A real `python -X importtime -m ivr.classic` call, answered by the Asterisk emulator, with the compiled snapshot
in place: the interpreter lists every module it imported, and none of the daemon's heavy libraries may be among
them. A later change that puts one back on the call path (a top-level `import asyncio`, structlog in a module
the call runs through) fails here instead of silently costing every call."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr.emulator import AsteriskChannel, asterisk_env
from tests.test_classic_agi import classic_call
from tests.test_fastagi_support import WORKDAY_10H

ROOT = Path(__file__).resolve().parents[1]
# Heavy, and needed only by the daemon, the CLI or a call that must validate the YAML files.
FORBIDDEN = ("asyncio", "structlog", "sqlalchemy", "pydantic", "pydantic_settings", "yaml", "panoramisk",
             "alembic", "starlette")


def call_classic(env: dict[str, str], dialed: str, dtmf: list[str], *args: str) -> tuple[AsteriskChannel, str]:
    channel = AsteriskChannel(asterisk_env(dialed=dialed), dtmf, variables={"HOTLINE_AT": WORKDAY_10H})
    return channel, classic_call(env, channel, *args)


def imported(importtime_stderr: str) -> set[str]:
    """The modules `-X importtime` reported (its lines: `import time: self | cumulative | name`)."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_stderr.splitlines()
            if line.startswith("import time:") and "|" in line and "[us]" not in line}


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("HOTLINE_")}
    return dict(base, PYTHONPATH=str(ROOT), HOTLINE_ALLOW_TEST_CLOCK="1",
                HOTLINE_CONFIG_SNAPSHOT=str(tmp_path / "snapshot.json"),
                HOTLINE_DB_URL=f"sqlite:///{tmp_path / 'records.sqlite3'}")


@pytest.mark.parametrize("dialed, dtmf, target", [("12320", ["1"], "expert-12320"), ("110", [], "emergency-110"),
                                                  ("12345", ["hangup"], "general-12345")])
def test_a_classic_call_imports_none_of_the_heavy_libraries(env, dialed, dtmf, target):
    call_classic(env, "12345", [])                                      # the first call validates and writes the snapshot
    channel, err = call_classic(env, dialed, dtmf, "-X", "importtime")
    assert channel.t.variables["HOTLINE_TARGET"] == target       # a real call, routed
    modules = imported(err)
    assert "ivr.engine" in modules and "ivr.session" in modules and "routing.config_snapshot" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert heavy == []


def test_with_switches_in_the_records_the_call_reads_them_without_sqlalchemy(env):
    from records.switches import SwitchStore

    SwitchStore.for_url(env["HOTLINE_DB_URL"]).flip("force-night", True, by="admin", via="cli", why="test",
                                                     at=datetime.now(timezone.utc))
    call_classic(env, "12345", [])
    channel, err = call_classic(env, "12320", ["1"], "-X", "importtime")
    assert channel.t.variables["HOTLINE_TARGET"] == "general-12345"   # the switch applied: expert seat closed
    assert sorted(m for m in imported(err) if m.split(".")[0] in FORBIDDEN) == []


def test_the_check_sees_what_it_looks_for():
    """The parser of -X importtime's report finds a forbidden module when one is imported."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import asyncio"], capture_output=True,
                         text=True, check=True).stderr
    assert "asyncio" in imported(err)


@pytest.mark.parametrize("case", ["no usable snapshot", "broken table"])
def test_a_call_that_validates_the_files_still_logs_without_structlog(env, tmp_path, case):
    """The loaders may import pydantic and yaml, but structlog never: unconfigured in this process it would print
    to stdout, which is the AGI channel."""
    if case == "broken table":
        broken = tmp_path / "routing.yaml"
        broken.write_text("version: 1\nlines: [\n", encoding="utf-8")
        env = dict(env, HOTLINE_ROUTING_TABLE=str(broken))
    else:
        env = dict(env, HOTLINE_CONFIG_SNAPSHOT=str(tmp_path))          # a directory: neither read nor written
    channel, err = call_classic(env, "110", [], "-X", "importtime")
    assert channel.t.variables["HOTLINE_TAGS"].endswith("failopen") == (case == "broken table")
    modules = imported(err)
    assert "yaml" in modules                                            # it did validate
    assert sorted(m for m in modules if m.split(".")[0] in ("structlog", "asyncio", "sqlalchemy")) == []
    assert ("classic.config_unusable" if case == "broken table" else "classic.snapshot_not_written") in err
