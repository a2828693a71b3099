"""Trunks in the table: caller_id (what the far end learns about the citizen) and hosts Asterisk cannot use."""
from __future__ import annotations

import socket
import textwrap
import time

import pytest

from routing.loader import TableError, load_table, load_table_with_warnings
from routing.model import CallerId
from scripts import dnscheck

HEAD = textwrap.dedent("""\
    version: 1
    timezone: Asia/Shanghai
    general_queue: general
    queues:
      general:
        name: general
    trunks:
""")
LINES = textwrap.dedent("""\
    lines:
      "12345":
        service: unified
        seed: t
        rules:
          - {category: unified, queue: general}
      "110":
        service: police
        seed: t
        rules:
          - {category: emergency_linkage, trunk: emergency-110}
      "12348":
        service: seat
        seed: t
        rules:
          - category: retained_seat
            queue: general
            transfers: [{kind: attended, trunk: seat}]
      "12360":
        service: sub
        seed: t
        rules:
          - category: subcenter
            queue: general
            transfers: [{kind: three_way, trunk: sub}]
""")


DIAL = {"emergency": "110", "retained_seat": "12348", "subcenter": "12360", "carrier": "12360"}


def trunk(tid: str, kind: str, host: str = "192.0.2.1", extra: str = "") -> str:
    text = f"  {tid}:\n    name: {tid}\n    kind: {kind}\n    host: {host}\n    dial: {DIAL[kind]}\n"
    return text + "".join(f"    {line}\n" for line in extra.splitlines() if line)


def table(emergency: str = "", seat: str = "", sub: str = "", carrier: str = "", hosts: dict | None = None) -> str:
    hosts = hosts or {}
    text = HEAD + trunk("emergency-110", "emergency", hosts.get("emergency", "192.0.2.1"), emergency)
    text += trunk("seat", "retained_seat", hosts.get("seat", "192.0.2.2"), seat)
    text += trunk("sub", "subcenter", hosts.get("sub", "192.0.2.3"), sub)
    carrier_text = trunk("carrier", "carrier", hosts.get("carrier", "192.0.2.4"), carrier)
    text += carrier_text.replace("    dial: 12360\n", "")
    return text + LINES


def errors(text: str) -> list[str]:
    with pytest.raises(TableError) as info:
        load_table("t.yaml", text=text)
    return [str(p) for p in info.value.problems]


def line_of(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[:text.index(needle, start)].count("\n") + 1


def test_defaults_per_kind_deliver_the_number():
    t = load_table("t.yaml", text=table())
    assert t.trunks["emergency-110"].caller_id == CallerId("caller", "pai", "send")
    assert t.trunks["seat"].caller_id == CallerId("trunk", "pai", "hide")
    assert t.trunks["sub"].caller_id == CallerId("caller", "pai", "hide")


def test_a_caller_id_block_overrides_the_kind_default_key_by_key():
    t = load_table("t.yaml", text=table(seat="caller_id: {from: caller, withheld: send}",
                                        sub="caller_id: {identity: rpid}"))
    assert t.trunks["seat"].caller_id == CallerId("caller", "pai", "send")
    assert t.trunks["sub"].caller_id == CallerId("caller", "rpid", "hide")


def test_emergency_trunk_must_send_the_number_in_pai_even_withheld():
    text = table(emergency="caller_id:\n  identity: rpid\n  withheld: hide")
    found = errors(text)
    assert f"t.yaml:{line_of(text, 'identity: rpid')}:" in found[0] and "P-Asserted-Identity" in found[0]
    assert f"t.yaml:{line_of(text, 'withheld: hide')}:" in found[1] and "withheld: send" in found[1]


def test_a_trunk_that_would_carry_the_number_nowhere_is_an_error():
    text = table(sub="caller_id: {from: trunk, identity: none}")
    (found,) = errors(text)
    assert found.startswith(f"t.yaml:{line_of(text, 'caller_id')}:") and "reaches the far end nowhere" in found


def test_withheld_send_needs_an_identity_header():
    text = table(seat="caller_id: {from: caller, identity: none, withheld: send}")
    (found,) = errors(text)
    assert f"t.yaml:{line_of(text, 'caller_id')}:" in found and "withheld: send needs identity pai or rpid" in found


def test_carrier_trunks_take_no_caller_id_and_values_are_checked():
    text = table(carrier="caller_id: {identity: pai}")
    (found,) = errors(text)
    assert f"t.yaml:{line_of(text, 'caller_id: {identity: pai}')}:" in found and "only brings calls in" in found
    text = table(seat="caller_id: {from: agent, trust: yes}")
    found = errors(text)
    assert any("caller_id.from" in p and "'caller' or 'trunk'" in p for p in found)
    assert any("unknown key 'trust'" in p for p in found)


def test_placeholder_hosts_and_matches_warn_with_their_line():
    text = table(hosts={"emergency": "gw.hainan.invalid", "seat": "seat.invalid"},
                 sub="match: [192.0.2.3, sub.hainan.invalid]")
    result = load_table_with_warnings("t.yaml", text=text)
    by_line = {p.line: p.message for p in result.hosts}
    assert "emergency calls over it get the unreachable announcement" in by_line[line_of(text, "gw.hainan.invalid")]
    assert "leaves its contact and identify out" in by_line[line_of(text, "gw.hainan.invalid")]
    assert "calls over it fail" in by_line[line_of(text, "seat.invalid")]
    assert "match sub.hainan.invalid is a placeholder" in by_line[line_of(text, "sub.hainan.invalid")]
    assert set(result.hosts) <= set(result.warnings) and len(result.hosts) == 3


def test_names_that_do_not_resolve_warn_only_when_a_resolver_is_given():
    text = table(hosts={"seat": "seat.example.net", "sub": "sub.example.net"},
                 sub="match: [sub.example.net, 192.0.2.0/28]")
    asked: list[str] = []

    def resolve(name: str) -> bool:
        asked.append(name)
        return name != "sub.example.net"

    assert load_table_with_warnings("t.yaml", text=text).hosts == ()
    result = load_table_with_warnings("t.yaml", text=text, resolve=resolve)
    assert "192.0.2.0/28" not in asked and "192.0.2.1" not in asked         # addresses need no DNS
    messages = [(p.line, p.message) for p in result.hosts]
    assert messages[0][0] == line_of(text, "host: sub.example.net") and "does not resolve" in messages[0][1]
    assert messages[1][0] == line_of(text, "match: [sub.example.net") and "sub-identify" in messages[1][1]
    assert len(messages) == 2


def test_system_resolver_answers_and_bounds_a_dns_that_hangs(monkeypatch):
    resolves = dnscheck.system_resolver(timeout=0.3)
    assert resolves("localhost") is True

    def hanging(*args, **kwargs):
        time.sleep(2)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    slow = dnscheck.system_resolver(timeout=0.2)
    started = time.monotonic()
    assert slow("gw.example.net") is False
    assert time.monotonic() - started < 1.0
