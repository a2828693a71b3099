"""`hotline doctor` logs in to every AMI server of HOTLINE_AMI_SERVERS (two emulators over TCP), each its own check."""
from __future__ import annotations


from scripts import cli_doctor as doctor
from scripts.settings import Settings
from tests.asterisk.harness import free_port
from tests.test_ami_cli import EmulatorThread



def test_every_configured_ami_server_is_checked_with_its_own_secret(tmp_path):
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'h.sqlite3'}", spool_dir=tmp_path / "spool")
    gone = free_port()
    with EmulatorThread() as a, EmulatorThread() as b:
        env = {"HOTLINE_AMI_SERVERS": f"pbx-a=127.0.0.1:{a.port},pbx-b=127.0.0.1:{b.port},"
                                      f"pbx-c=127.0.0.1:{gone},pbx-d=127.0.0.1:{gone}",
               "HOTLINE_AMI_SECRET_PBX_A": "desk-secret", "HOTLINE_AMI_SECRET_PBX_B": "wrong",
               "HOTLINE_AMI_SECRET_PBX_C": "desk-secret"}
        checks = {c.name: c for c in doctor.check_asterisks(settings, timeout=2, environ=env)}
    assert list(checks) == ["asterisk pbx-a", "asterisk pbx-b", "asterisk pbx-c", "asterisk pbx-d"]
    assert checks["asterisk pbx-a"].status == "OK" and "logged in as hotline" in checks["asterisk pbx-a"].detail
    assert checks["asterisk pbx-b"].status == "FAIL" and "refused" in checks["asterisk pbx-b"].detail
    assert checks["asterisk pbx-c"].status == "FAIL" and "unreachable" in checks["asterisk pbx-c"].detail
    assert checks["asterisk pbx-d"].status == "WARN" and "HOTLINE_AMI_SECRET_PBX_D" in checks["asterisk pbx-d"].detail
    assert "wrong" not in "".join(c.line() for c in checks.values())


def test_without_a_server_list_the_one_server_is_checked_as_before(tmp_path):
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'h.sqlite3'}", spool_dir=tmp_path / "spool")
    assert [(c.name, c.status) for c in doctor.check_asterisks(settings, environ={})] == [("asterisk", "WARN")]


def test_a_malformed_server_list_fails_and_says_the_form(tmp_path):
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'h.sqlite3'}", spool_dir=tmp_path / "spool")
    [check] = doctor.check_asterisks(settings, environ={"HOTLINE_AMI_SERVERS": "nohostport"})
    assert check.status == "FAIL" and "name=[user@]host:port" in check.advice
