"""`hotline callbacks list|take|done` on SQLite and PostgreSQL: masked lists, the number printed once to the agent
who takes it (never in the logs), clear errors for a wrong or missing key."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from records.db import make_engine
from records.schema import callback_requests
from scripts.hotline import cli
from tests.db_fixtures import db_url  # noqa: F401
from tests.test_callbacks_records import CALLBACK_KEY, NUMBER, database_text, record, request


@pytest.fixture
def recorded(db_url, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HOTLINE_CALLBACK_KEY", CALLBACK_KEY.decode())
    monkeypatch.delenv("HOTLINE_SECRETS_FILE", raising=False)
    record(db_url, tmp_path / "spool", request("1764149400.7"), request("1764149401.8", "13700002222", minutes=3,
                                                                          queue="city-haikou"))
    return db_url


def run(db_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--log-format", "json", "callbacks", *args, "--db-url", db_url],
                                catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_list_take_done(recorded):
    code, out, err = run(recorded, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("requested") and len(lines) == 3
    assert "1764149400.7" in lines[1] and "139****4321" in lines[1] and "pending" in lines[1]
    assert "137****2222" in lines[2] and "city-haikou" in lines[2]
    assert NUMBER not in out and "2 callback request(s)" in err
    code, out, _ = run(recorded, "list", "--queue", "city-haikou")
    assert len(out.splitlines()) == 2 and "city-haikou" in out

    code, out, err = run(recorded, "take", "1764149400.7", "--agent", "agent-07", "--at", "2026-11-26T18:00")
    assert code == 0, err
    assert out.count(NUMBER) == 1 and "call back: 13987654321" in out and "taken by agent-07" in out
    assert NUMBER not in err and "callbacks.taken" in err and "shown once" in err   # the log line, masked
    code, out, err = run(recorded, "take", "1764149400.7", "--agent", "agent-08")
    assert code == 1 and "already taken by agent-07" in err and NUMBER not in out + err
    code, out, _ = run(recorded, "list", "--status", "taken")
    assert "agent-07" in out and "taken" in out and NUMBER not in out

    code, out, err = run(recorded, "done", "1764149400.7", "--agent", "agent-07")
    assert code == 0 and "done" in out, err
    code, out, _ = run(recorded, "list", "--status", "all")
    assert len(out.splitlines()) == 3
    assert NUMBER not in database_text(recorded)


def test_wrong_or_missing_key_is_a_clear_error_and_changes_nothing(recorded, monkeypatch, tmp_path):
    monkeypatch.setenv("HOTLINE_CALLBACK_KEY", Fernet.generate_key().decode())
    code, out, err = run(recorded, "take", "1764149400.7", "--agent", "agent-07")
    assert code == 1 and "cannot be decrypted with the configured callback key" in err and NUMBER not in out
    code, _, err = run(recorded, "take", "nope", "--agent", "agent-07")
    assert code == 1 and "no callback request 'nope'" in err and "Traceback" not in err
    monkeypatch.setenv("HOTLINE_CALLBACK_KEY", "not-a-key")
    code, _, err = run(recorded, "take", "1764149400.7", "--agent", "agent-07")
    assert code == 1 and "not a Fernet key" in err
    monkeypatch.delenv("HOTLINE_CALLBACK_KEY")
    monkeypatch.setattr("scripts.cli_records.VAR_DIR", tmp_path / "empty-var")
    code, _, err = run(recorded, "take", "1764149400.7", "--agent", "agent-07")
    assert code == 1 and "no callback key" in err
    assert not (tmp_path / "empty-var").exists()          # reading never invents a key
    engine = make_engine(recorded)
    try:
        with engine.connect() as conn:
            assert {r.status for r in conn.execute(callback_requests.select())} == {"pending"}
    finally:
        engine.dispose()


def test_the_command_is_registered():
    result = CliRunner().invoke(cli, ["callbacks", "--help"])
    assert result.exit_code == 0 and all(c in result.output for c in ("list", "take", "done"))
