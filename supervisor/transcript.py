"""Reader for the recorded AMI transcripts (tests/transcripts/ami-*.txt): chunks and AMI messages.

Format: a marker line `#@ <seconds> <dir> <nbytes>` precedes each chunk's exact bytes (CRLF kept);
dir is `C>A` (client -> Asterisk), `A>C` (Asterisk -> client) or `note`. Lines starting with `#` before the
first marker are the header. Pure: bytes in, values out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MARKER = re.compile(rb"#@ (?P<sec>[0-9.]+) (?P<dir>\S+) (?P<n>\d+)\n")


@dataclass(frozen=True)
class Chunk:
    seconds: float
    direction: str  # "C>A" | "A>C" | "note"
    data: bytes


@dataclass(frozen=True)
class Message:
    seconds: float
    direction: str
    fields: dict[str, str]


def read_chunks(raw: bytes) -> list[Chunk]:
    chunks: list[Chunk] = []
    first = re.search(rb"^#@ [0-9]", raw, re.M)
    pos = first.start() if first else len(raw)
    while 0 <= pos < len(raw):
        m = _MARKER.match(raw, pos)
        if m is None:
            raise ValueError(f"transcript: no marker at byte {pos}: {raw[pos:pos + 40]!r}")
        start = m.end()
        end = start + int(m["n"])
        if end > len(raw):
            raise ValueError(f"transcript: chunk at byte {pos} runs past the end")
        chunks.append(Chunk(float(m["sec"]), m["dir"].decode(), raw[start:end]))
        pos = end + 1 if raw[end:end + 1] == b"\n" else end  # notes carry no line end of their own
    return chunks


def parse_message(block: str) -> dict[str, str]:
    """One AMI message (no terminating blank line) -> fields; repeated keys are joined by newlines."""
    fields: dict[str, str] = {}
    for line in block.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue  # the banner or a stray line carries no field
        key, value = key.strip(), value[1:] if value.startswith(" ") else value
        fields[key] = f"{fields[key]}\n{value}" if key in fields else value
    return fields


def read_messages(raw: bytes, direction: str = "A>C") -> list[Message]:
    """AMI messages in one direction. A message may span chunks; the blank line ends it."""
    out: list[Message] = []
    buffer = ""
    first_seconds: float | None = None
    for chunk in read_chunks(raw):
        if chunk.direction != direction:
            continue
        text = chunk.data.decode("utf-8", errors="replace")
        if not buffer and text.startswith("Asterisk Call Manager/"):
            text = text.split("\r\n", 1)[1] if "\r\n" in text else ""
        if first_seconds is None:
            first_seconds = chunk.seconds
        buffer += text
        while "\r\n\r\n" in buffer:
            block, buffer = buffer.split("\r\n\r\n", 1)
            fields = parse_message(block)
            if fields:
                out.append(Message(first_seconds, direction, fields))
            first_seconds = chunk.seconds if buffer else None
    return out


def read_transcript(path: str | Path, direction: str = "A>C") -> list[Message]:
    return read_messages(Path(path).read_bytes(), direction)


def replay(raw: bytes, state, server: str, base_epoch: float, until: float | None = None) -> int:
    """Feed a transcript into a LiveState the way the live view does: events through `apply()`, each
    QueueStatus reply (collected up to QueueStatusComplete) through `resync()`. Stops after `until`
    seconds into the recording, if given. Returns the number of events applied."""
    actions = {m.fields.get("ActionID"): m.fields for m in read_messages(raw, "C>A")}
    pending: dict[str, list[dict[str, str]]] = {}
    applied = 0
    for msg in read_messages(raw, "A>C"):
        if until is not None and msg.seconds > until:
            break
        fields, now = msg.fields, base_epoch + msg.seconds
        action_id = fields.get("ActionID")
        action = actions.get(action_id, {})
        if action.get("Action") == "QueueStatus":
            pending.setdefault(action_id, []).append(fields)
            if fields.get("Event") == "QueueStatusComplete":
                items = pending.pop(action_id)
                if not action.get("Member"):  # a member-filtered reply is not the whole queue
                    state.resync(server, items, now, queue=action.get("Queue"))
            continue
        if "Event" in fields and action_id is None:
            state.apply(server, fields, now)
            applied += 1
    return applied
