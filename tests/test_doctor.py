"""`hotline doctor`: each check on a good and a bad host state, the AMI login against the emulator over TCP, a
port held by a real `hotline serve`, the exit code and --json."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import SecretStr

from records.db import make_engine, upgrade
from scripts import cli_doctor as doctor
from scripts.hotline import cli
from scripts.settings import Settings
from tests.asterisk.harness import free_port
from tests.db_fixtures import pg_url  # noqa: F401
from tests.test_ami_cli import EmulatorThread

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(db_url=f"sqlite:///{tmp_path / 'db' / 'h.sqlite3'}", spool_dir=tmp_path / "spool",
                    agi_port=free_port(), web_port=free_port())


def test_config_ok_names_both_versions_and_a_broken_table_fails(settings, tmp_path):
    good = doctor.check_config(settings)
    assert good.status == "OK" and "routing.yaml" in good.detail and "ivr.yaml" in good.detail
    broken = tmp_path / "routing.yaml"
    broken.write_text((ROOT / "conf" / "routing.yaml").read_text().replace("timezone:", "timezone: [", 1))
    bad = doctor.check_config(settings.model_copy(update={"routing_table": broken}))
    assert bad.status == "FAIL" and str(broken) in bad.detail and "routes check" in bad.advice


def test_database_missing_then_migrated_then_unreachable(settings):
    assert doctor.check_database(settings).status == "WARN"             # SQLite: created at first start
    engine = make_engine(settings.db_url)
    upgrade(engine)
    engine.dispose()
    ok = doctor.check_database(settings)
    assert ok.status == "OK" and "head" in ok.detail
    down = doctor.check_database(settings.model_copy(
        update={"db_url": f"postgresql+psycopg://hotline:pw@127.0.0.1:{free_port()}/hotline"}))
    assert down.status == "FAIL" and "unreachable" in down.detail and "pw" not in down.detail


def test_database_postgres_not_migrated_fails_with_the_command_then_ok(pg_url):
    check = doctor.check_database(Settings(db_url=pg_url))        # a fresh database: never migrated
    assert check.status == "FAIL" and "no records schema" in check.detail and "hotline db upgrade" in check.advice
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    assert doctor.check_database(Settings(db_url=pg_url)).status == "OK"


def test_spool_writable_missing_and_not_a_directory(settings, tmp_path):
    assert doctor.check_spool(settings).status == "WARN"
    settings.spool_dir.mkdir()
    assert doctor.check_spool(settings).status == "OK"
    assert list(settings.spool_dir.iterdir()) == []                     # the probe is gone again
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = doctor.check_spool(settings.model_copy(update={"spool_dir": blocker}))
    assert bad.status == "FAIL" and "not writable" in bad.detail


def test_port_free_then_held_by_another_program():
    port = free_port()
    assert doctor.check_port("AGI", "127.0.0.1", port).status == "OK"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held = doctor.check_port("AGI", "127.0.0.1", port)
    assert held.status == "FAIL" and f"pid {os.getpid()}" in held.detail


def test_port_held_by_our_engine_is_ok(tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "hotline"), "serve", "--port", str(port), "--no-records",
                             "--no-ami", "--no-web", "--pid-file", str(tmp_path / "pid")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "pid").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.05)
        check = doctor.check_port("AGI", "127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(20)
    assert check.status == "OK" and f"our serve (pid {proc.pid})" in check.detail


def test_is_ours_knows_the_console_script_and_the_module():
    assert doctor.is_ours(["/opt/hotline/.venv/bin/python", "/opt/hotline/.venv/bin/hotline", "serve"])
    assert doctor.is_ours(["python", "-m", "scripts.hotline", "--log-format", "json", "web"])
    assert not doctor.is_ours(["python", "-m", "http.server", "8345"])
    assert not doctor.is_ours(["/usr/bin/hotline-agi", "serve"])


def test_asterisk_not_configured_warns(settings):
    assert doctor.check_asterisk(settings).status == "WARN"


def test_asterisk_login_ok_wrong_secret_and_unreachable(settings):
    with EmulatorThread() as emu:
        at = settings.model_copy(update={"ami_port": emu.port, "ami_secret": SecretStr("desk-secret")})
        ok = doctor.check_asterisk(at, timeout=3)
        wrong = doctor.check_asterisk(at.model_copy(update={"ami_secret": SecretStr("nope")}), timeout=3)
    assert ok.status == "OK" and "logged in as hotline" in ok.detail
    assert wrong.status == "FAIL" and "refused" in wrong.detail and "nope" not in wrong.line()
    gone = doctor.check_asterisk(at.model_copy(update={"ami_port": free_port()}), timeout=2)
    assert gone.status == "FAIL" and "unreachable" in gone.detail


def by_name(checks):
    return {c.name: c for c in checks}


def test_keys_missing_warn_loose_mode_fails_0600_ok(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_SECRETS_FILE", raising=False)
    checks = by_name(doctor.check_keys(settings, tmp_path))
    assert checks["callback key"].status == checks["caller-hash key"].status == "WARN"
    assert checks["secrets file"].status == "WARN"
    callback, caller = tmp_path / "callback.key", tmp_path / "caller-hash.key"
    callback.write_text(Fernet.generate_key().decode() + "\n")
    caller.write_text("ab" * 32 + "\n")
    callback.chmod(0o644)
    caller.chmod(0o600)
    checks = by_name(doctor.check_keys(settings, tmp_path))
    assert checks["callback key"].status == "FAIL" and checks["callback key"].advice == f"chmod 600 {callback}"
    assert checks["caller-hash key"].status == "OK"
    callback.chmod(0o600)
    assert by_name(doctor.check_keys(settings, tmp_path))["callback key"].status == "OK"


def test_configured_callback_key_must_be_a_fernet_key(settings, tmp_path):
    bad = settings.model_copy(update={"callback_key": SecretStr("not-a-key")})
    check = by_name(doctor.check_keys(bad, tmp_path))["callback key"]
    assert check.status == "FAIL" and "not-a-key" not in check.line()
    good = settings.model_copy(update={"callback_key": SecretStr(Fernet.generate_key().decode())})
    assert by_name(doctor.check_keys(good, tmp_path))["callback key"].status == "OK"


def test_secrets_file_mode(tmp_path, monkeypatch):
    path = tmp_path / "hotline.env"
    monkeypatch.setenv("HOTLINE_SECRETS_FILE", str(path))
    assert doctor.check_secrets_file().status == "FAIL"                          # missing
    path.write_text("HOTLINE_AMI_SECRET=s3cret\n")
    path.chmod(0o640)
    loose = doctor.check_secrets_file()
    assert loose.status == "FAIL" and "0640" in loose.detail and "s3cret" not in loose.line()
    path.chmod(0o600)
    assert doctor.check_secrets_file().status == "OK"


def test_cli_exit_code_and_json(tmp_path, monkeypatch):
    monkeypatch.delenv("HOTLINE_SECRETS_FILE", raising=False)
    env = {"HOTLINE_DB_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}", "HOTLINE_SPOOL_DIR": str(tmp_path / "spool"),
           "HOTLINE_AGI_PORT": str(free_port()), "HOTLINE_WEB_PORT": str(free_port())}
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    runner = CliRunner()
    fine = runner.invoke(cli, ["doctor"], env=env)
    assert fine.exit_code == 0, fine.output
    assert "OK    config:" in fine.output and "WARN  asterisk:" in fine.output
    broken = tmp_path / "routing.yaml"
    broken.write_text("version: [\n")
    failed = runner.invoke(cli, ["doctor", "--json"], env={**env, "HOTLINE_ROUTING_TABLE": str(broken)})
    assert failed.exit_code == 1
    report = json.loads(failed.output)
    assert report["status"] == "FAIL"
    assert {c["name"]: c["status"] for c in report["checks"]}["config"] == "FAIL"
    assert all(set(c) == {"name", "status", "detail", "advice"} for c in report["checks"])
