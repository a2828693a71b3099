"""The AMI codec against every recorded transcript, byte for byte, and split at every position."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from ivr.ami.framing import (AmiDecoder, AmiFramingError, format_action, format_message, parse_message,
                             values)
from ivr.ami.transcript import read_transcript, stream
from tests.conftest import TRANSCRIPTS

AMI_FILES = sorted(TRANSCRIPTS.glob("ami-*.txt"))
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def as_pairs(message: dict[str, str]) -> list[tuple[str, str]]:
    return [(key, item) for key, value in message.items() for item in value.split("\n")]


def test_both_recording_sets_present():
    assert len(AMI_FILES) == 40       # ten of the first set, 29 of the second, ami-queue-overflow.txt (INDEX.txt)


def _engine_slice(path) -> bool:
    """ami-*-engine.txt: a slice of the engine's long-lived connection, without the banner and Login."""
    return path.name.endswith("-engine.txt")


def _recorded_bytes(message: dict[str, str], chunk: bytes) -> bytes:
    """The message formatted back; Asterisk ends one PJSIPShowEndpoint error's Message with a bare LF (recorded)."""
    if chunk.endswith(b"\n\r\n\r\n") and not chunk.endswith(b"\r\n\r\n\r\n"):
        return format_message(as_pairs(message))[:-4] + b"\n\r\n\r\n"
    return format_message(as_pairs(message))


@pytest.mark.parametrize("path", AMI_FILES, ids=lambda p: p.name)
def test_replay_asterisk_side_chunk_by_chunk(path):
    chunks = [c for c in read_transcript(path) if c.direction == "A>C"]
    sliced = _engine_slice(path)
    assert sliced or chunks[0].data == BANNER
    decoder = AmiDecoder(expect_banner=not sliced)
    seen = []
    for chunk in chunks:
        got = decoder.feed(chunk.data)
        # the recorder cut A>C chunks at message ends: each non-empty chunk after the banner is one message
        assert len(got) == (1 if chunk.data and (sliced or chunk is not chunks[0]) else 0)
        if got:
            assert _recorded_bytes(got[0], chunk.data) == chunk.data   # lossless: formats back to the same bytes
        seen += got
    assert sliced or decoder.banner == "Asterisk Call Manager/11.0.0"
    assert decoder.pending_bytes == 0
    assert sliced or seen[0]["Response"] == "Success" or seen[0]["Message"] == "Authentication failed"
    whole = AmiDecoder(expect_banner=not sliced).feed(stream(read_transcript(path), "A>C"))
    assert whole == seen


@pytest.mark.parametrize("path", AMI_FILES, ids=lambda p: p.name)
def test_replay_client_side_actions_format_identically(path):
    chunks = [c for c in read_transcript(path) if c.direction == "C>A"]
    decoder = AmiDecoder(expect_banner=False)
    for chunk in chunks:
        (action,) = decoder.feed(chunk.data)
        # repeated keys (Variable: a=1, Variable: b=2) come back joined with "\n": one line per item again
        assert format_action({k: v.split("\n") if "\n" in v else v for k, v in action.items()}) == chunk.data


@pytest.mark.parametrize("name", ["ami-errors.txt", "ami-status.txt", "ami-bad-login.txt"])
def test_split_at_every_position(name):
    data = stream(read_transcript(TRANSCRIPTS / name), "A>C")
    expected = AmiDecoder().feed(data)
    for cut in range(len(data) + 1):
        decoder = AmiDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == expected, cut


@pytest.mark.parametrize("name", ["ami-atxfer.txt", "ami-sip-baresip.txt", "ami-queue-answered.txt"])
def test_random_many_way_splits_of_large_transcripts(name):
    data = stream(read_transcript(TRANSCRIPTS / name), "A>C")
    expected = AmiDecoder().feed(data)
    rng = random.Random(name)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), 200))
        decoder = AmiDecoder()
        got = []
        for start, stop in zip([0] + cuts, cuts + [len(data)]):
            got += decoder.feed(data[start:stop])
        assert got == expected


CHINESE = ("Event: NewCallerid\r\nChannel: PJSIP/caller-00000001\r\nCallerIDName: [12320] 海口市民 张三\r\n\r\n"
           .encode("utf-8"))


def test_multibyte_character_split_across_reads_is_kept():
    for cut in range(len(CHINESE) + 1):
        decoder = AmiDecoder(expect_banner=False)
        (msg,) = decoder.feed(CHINESE[:cut]) + decoder.feed(CHINESE[cut:])
        assert msg["CallerIDName"] == "[12320] 海口市民 张三"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(CHINESE)), max_size=8))
def test_any_split_of_utf8(cuts):
    cuts = sorted(set(cuts))
    decoder = AmiDecoder(expect_banner=False)
    got = []
    for start, stop in zip([0] + cuts, cuts + [len(CHINESE)]):
        got += decoder.feed(CHINESE[start:stop])
    assert got == [parse_message(CHINESE[:-4])]


def test_repeated_keys_join_with_newline_in_order():
    msg = parse_message(b"Response: Success\r\nMessage: Command output follows\r\nOutput: a\r\n"
                        b"Output:    b: c\r\nOutput: \r\n")
    assert msg["Output"] == "a\n   b: c\n"
    assert values(msg, "Output") == ["a", "   b: c", ""]
    assert values(msg, "Missing") == []


def test_empty_values_and_lines_without_colon():
    msg = parse_message(b"Event: X\r\nAccountCode: \r\nPausedReason:\r\nsome body text\r\n")
    assert msg == {"Event": "X", "AccountCode": "", "PausedReason": "", "Output": "some body text"}


def test_stray_blank_lines_between_messages_are_ignored():
    decoder = AmiDecoder(expect_banner=False)
    assert decoder.feed(b"\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n") == [{"Event": "A"}, {"Event": "B"}]


def test_format_action_orders_action_and_id_and_repeats_lists():
    data = format_action({"Channel": "Local/1@x", "Action": "Originate", "Variable": ["A=1", "B=海口"]},
                         action_id="h-1")
    assert data == ("Action: Originate\r\nActionID: h-1\r\nChannel: Local/1@x\r\nVariable: A=1\r\n"
                    "Variable: B=海口\r\n\r\n").encode()


def test_format_action_writes_numbers_as_text():
    assert format_action({"Action": "Originate", "Timeout": 30000, "Priority": 1}, "n-1") == (
        b"Action: Originate\r\nActionID: n-1\r\nTimeout: 30000\r\nPriority: 1\r\n\r\n")


@pytest.mark.parametrize("fields", [
    {"Action": "Ping\r\nAction: Logoff"},
    {"Action": "Setvar", "Value": "x\r\n\r\nAction: Hangup"},
    {"Action": "Setvar", "Bad\nKey": "1"},
    {"Channel": "x"},
])
def test_format_action_refuses_injection_and_missing_action(fields):
    with pytest.raises(ValueError):
        format_action(fields)


def test_not_ami_is_a_clear_error():
    with pytest.raises(AmiFramingError, match="not an AMI banner"):
        AmiDecoder().feed(b"HTTP/1.1 400 Bad Request\r\n")


def test_endless_message_is_a_clear_error():
    decoder = AmiDecoder(expect_banner=False, max_message_bytes=100)
    with pytest.raises(AmiFramingError, match="longer than 100 bytes"):
        decoder.feed(b"Event: X\r\nData: " + b"x" * 200)
