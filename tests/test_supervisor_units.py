"""Pure parts of the supervisor view: passwords and users, server list, actions, history, text frame, metrics."""
from __future__ import annotations

import pytest
from pydantic import SecretStr

from scripts.settings import Settings
from supervisor import actions
from supervisor.auth import (UsersFileError, authenticate, hash_password, load_users, parse_users,
                             verify_password)
from supervisor.config import ConfigError, ami_servers, web_options
from supervisor.history import History
from supervisor.metrics import make_registry, render as render_metrics
from supervisor.state import LiveState
from supervisor.textview import render
from supervisor.transcript import replay, replay_steps

from tests.conftest import TRANSCRIPTS

BASE = 1795698853.0


def test_password_hashes_verify_and_differ_by_salt():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct hors", a)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


def test_users_file_lines_and_clear_errors():
    h = hash_password("pw-123456789")
    users = parse_users(f"# comment\n\nalice:admin:{h}\nbob:supervisor:{h}:PJSIP/9001\n")
    assert users["bob"].phone == "PJSIP/9001" and users["alice"].may("full_numbers")
    assert not users["bob"].may("full_numbers") and users["bob"].may("pause")
    assert authenticate(users, "bob", "pw-123456789") is users["bob"]
    assert authenticate(users, "bob", "wrong") is None and authenticate(users, "eve", "pw-123456789") is None
    with pytest.raises(UsersFileError, match="users:2: role must be one of"):
        parse_users(f"alice:admin:{h}\ncarol:root:{h}\n", "users")
    with pytest.raises(UsersFileError, match="listed twice"):
        parse_users(f"alice:admin:{h}\nalice:viewer:{h}\n")
    with pytest.raises(UsersFileError, match="scrypt hash"):
        parse_users("alice:admin:plaintext\n")
    with pytest.raises(UsersFileError, match="no users"):
        parse_users("# nobody\n")


def test_embedded_accounts_generate_passwords_once_when_unset():
    said: list[str] = []
    users = load_users({"HOTLINE_WEB_ADMIN_PASSWORD": "admin-pass-123"}, said.append)
    assert set(users) == {"admin", "supervisor"}
    assert authenticate(users, "admin", "admin-pass-123") is users["admin"]
    assert len(said) == 1 and "'supervisor'" in said[0]  # only the unset one is generated and printed
    generated = said[0].split(": ")[-1].split(" ")[0]
    assert authenticate(users, "supervisor", generated) is users["supervisor"]


def test_ami_server_list(tmp_path):
    settings = Settings(ami_secret=SecretStr("common"), ami_user="hotline")
    servers = ami_servers(settings, {"HOTLINE_AMI_SERVERS": "haikou=10.0.0.5:5038, sanya=ops@10.0.1.5:5039",
                                     "HOTLINE_AMI_SECRET_SANYA": "own"})
    assert [(s.name, s.host, s.port, s.user, s.secret) for s in servers] == [
        ("haikou", "10.0.0.5", 5038, "hotline", "common"), ("sanya", "10.0.1.5", 5039, "ops", "own")]
    assert "own" not in repr(servers)
    single = ami_servers(Settings(ami_secret=SecretStr("s"), ami_host="pbx1", ami_port=5040), {})
    assert [(s.name, s.host, s.port) for s in single] == [("pbx", "pbx1", 5040)]
    secrets = tmp_path / "secrets.env"
    secrets.write_text("HOTLINE_AMI_SECRET_HK=from-file\n")
    from_file = ami_servers(Settings(), {"HOTLINE_AMI_SERVERS": "hk=h:1", "HOTLINE_SECRETS_FILE": str(secrets)})
    assert from_file[0].secret == "from-file"
    with pytest.raises(ConfigError, match="not name=\\[user@\\]host:port"):
        ami_servers(settings, {"HOTLINE_AMI_SERVERS": "haikou=10.0.0.5"})
    with pytest.raises(ConfigError, match="listed twice"):
        ami_servers(settings, {"HOTLINE_AMI_SERVERS": "a=h:1,a=h:2"})
    assert web_options({"HOTLINE_SERVICE_LEVEL": "20"}).service_level == 20
    with pytest.raises(ConfigError):
        web_options({"HOTLINE_SERVICE_LEVEL": "soon"})


def _status_state() -> LiveState:
    state = LiveState()
    replay(TRANSCRIPTS / "ami-status.txt", state, "hk", BASE)
    return state


def test_actions_build_what_asterisk_expects():
    state = _status_state()
    agent = {"server": "hk", "queue": "general-12345", "interface": "Local/agent2@queue-agents/n"}
    pause = actions.build("pause", {**agent, "reason": "午饭"}, state)
    assert pause.fields == {"Action": "QueuePause", "Queue": "general-12345",
                            "Interface": "Local/agent2@queue-agents/n", "Paused": "true", "Reason": "午饭"}
    assert actions.build("unpause", agent, state).fields["Paused"] == "false"
    assert actions.build("remove", agent, state).fields == {
        "Action": "QueueRemove", "Queue": "general-12345", "Interface": "Local/agent2@queue-agents/n"}
    add = actions.build("add", {"server": "hk", "queue": "general-12345", "interface": "PJSIP/7009",
                                "member_name": "Li Lei"}, state)
    assert add.fields == {"Action": "QueueAdd", "Queue": "general-12345", "Interface": "PJSIP/7009",
                          "MemberName": "Li Lei", "Penalty": "0", "Paused": "false"}
    barge = actions.build("barge", agent, state, default_phone="PJSIP/9001")
    assert (barge.fields["Channel"], barge.fields["Application"], barge.fields["Data"]) == (
        "PJSIP/9001", "ChanSpy", "Local/agent2@queue-agents,qbB")
    with pytest.raises(actions.ActionError, match="already a member"):
        actions.build("add", agent, state)
    with pytest.raises(actions.ActionError, match="your phone"):
        actions.build("listen", agent, state)
    with pytest.raises(actions.ActionError, match="longer than 64"):
        actions.build("pause", {**agent, "reason": "x" * 65}, state)
    with pytest.raises(actions.ActionError, match="queue id"):
        actions.build("pause", {**agent, "queue": "General 12345"}, state)


def test_history_keeps_the_peaks_when_thinning():
    history = History(max_age=600)
    for i in range(100):
        history.sample({"now": 1000.0 + i, "servers": [{"name": "hk", "queues": [
            {"name": "q", "waiting": 9 if i == 50 else 1, "longest_wait": i, "service_level": 0.5}]}]})
    series = history.series(1099.0, 100, max_points=10)
    points = series[0]["points"]
    assert len(points) <= 11 and max(p[1] for p in points) == 9 and points[-1][2] == 99
    history.sample({"now": 2000.0, "servers": []})
    assert history.series(2000.0, 600)[0]["points"] == []  # older than max_age: gone


def test_text_frame_for_queues_watch():
    state = LiveState()
    steps = replay_steps(TRANSCRIPTS / "ami-queue-redirect.txt", state, "hk", BASE)
    for msg in steps:
        if msg.fields.get("Event") == "QueueStatusComplete":
            break
    state.set_connected("hk", True, BASE)
    frame = render(state.view(BASE + 30, full_numbers=False, lang="en"), "en")
    assert "== hk (connected)" in frame and "general-12345" in frame
    assert "! waiting 0:24  line 12345 495*****67" in frame
    assert "4951234567" not in frame
    assert "4951234567" in render(state.view(BASE + 30, full_numbers=True))
    zh = render(state.view(BASE + 30, full_numbers=False))  # Chinese by default
    assert "== hk (已连接)" in zh and "! 等候 0:24  热线 12345 495*****67" in zh


def test_metrics_labels_by_server_and_queue():
    state = LiveState()
    replay(TRANSCRIPTS / "ami-queue-answered.txt", state, "haikou", BASE)
    replay(TRANSCRIPTS / "ami-abandon-while-ringing-local.txt", state, "sanya", BASE)
    replay(TRANSCRIPTS / "ami-queue-leaveempty.txt", state, "sanya", BASE)
    text = render_metrics(make_registry(state, lambda: BASE + 20)).decode()
    assert 'hotline_queue_answered_total{queue="expert-12320",server="haikou"} 1.0' in text
    assert 'hotline_queue_abandoned_total{queue="general-12345",server="sanya"} 1.0' in text
    assert 'hotline_queue_service_level_ratio{queue="general-12345",server="sanya"} 0.5' in text
    # leave-empty: an overflow, not an abandon (Asterisk's QueueCallerAbandon, then the next queue's join)
    assert 'hotline_queue_abandoned_total{queue="minors-protection",server="sanya"} 0.0' in text
    assert 'hotline_queue_overflowed_total{queue="minors-protection",server="sanya"} 1.0' in text
    assert 'hotline_queue_overflowed_today{queue="minors-protection",server="sanya"} 1.0' in text


def test_login_back_off_doubles_per_failure_up_to_a_cap_per_name_and_address():
    from supervisor.auth import LoginThrottle
    throttle = LoginThrottle(free=3, base=2, cap=30, forget_after=600)
    for t in (0, 0, 0):
        assert throttle.attempt("admin", "10.0.0.1", t) == 0        # counted as it is let through
    assert throttle.attempt("admin", "10.0.0.1", 0.5) == 1.5       # 2 s after the last try
    assert throttle.attempt("bob", "10.0.0.1", 0.5) == 0           # another name from that address
    assert throttle.attempt("admin", "10.0.0.2", 0.5) == 0         # the same name from elsewhere
    t = 0.0
    waits = []
    for _ in range(6):
        t += throttle.attempt("admin", "10.0.0.1", t)
        assert throttle.attempt("admin", "10.0.0.1", t) == 0
        waits.append(throttle.delay(3 + len(waits) + 1))
    assert waits == [4, 8, 16, 30, 30, 30]                         # doubled, then capped
    assert throttle.attempt("admin", "10.0.0.1", t + 601) == 0      # forgotten after a quiet while
    throttle.succeeded("admin", "10.0.0.1")
    for _ in range(3):
        assert throttle.attempt("admin", "10.0.0.1", t + 602) == 0  # a success takes the count back


def test_login_back_off_memory_is_bounded():
    from supervisor.auth import LoginThrottle
    throttle = LoginThrottle(free=1, max_entries=100)
    for i in range(1000):
        throttle.attempt(f"name{i}", "10.0.0.1", 0)
    assert len(throttle._entries) == 100


def test_session_store_ends_sessions_on_password_change_idle_and_lifetime():
    from supervisor.auth import User, hash_password
    from supervisor.sessions import SessionStore
    now = [0.0]
    store = SessionStore(idle=100, lifetime=1000, clock=lambda: now[0])
    users = {"ann": User("ann", "supervisor", hash_password("first-password"))}
    session = store.open(users["ann"])
    assert store.get(session.id, users)[1].name == "ann"
    assert store.get("forged", users) is None and store.get(None, users) is None
    changed = {"ann": User("ann", "supervisor", hash_password("second-password"))}
    assert store.get(session.id, changed) is None                  # the password changed: it is gone
    assert store.get(session.id, users) is None and len(store) == 0
    session = store.open(users["ann"])
    now[0] = 99
    assert store.get(session.id, users) is not None
    now[0] = 199
    assert store.get(session.id, users) is None                    # idle for 100 s
    session = store.open(users["ann"])
    while now[0] < 199 + 990:
        now[0] += 90
        assert store.get(session.id, users) is not None
    now[0] = 199 + 1000
    assert store.get(session.id, users) is None                    # the absolute lifetime
    store.open(users["ann"])
    assert store.get(store.open(users["ann"]).id, {}) is None      # a user no longer listed
