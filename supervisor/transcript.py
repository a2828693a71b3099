"""Replays a recorded AMI transcript (tests/transcripts/ami-*.txt) into a LiveState, as the live view would.

The chunk reader and the AMI decoder are the "ami" helper's (ivr/ami/transcript.py, ivr/ami/framing.py);
this module only adds the timing (seconds into the recording) and the event/resync split.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ivr.ami.framing import AmiDecoder
from ivr.ami.transcript import read_transcript


@dataclass(frozen=True)
class Message:
    seconds: float
    fields: dict[str, str]


def read_messages(path: str | Path, direction: str = "A>C") -> list[Message]:
    """AMI messages sent in one direction, each stamped with the time of the chunk that completed it."""
    decoder = AmiDecoder(expect_banner=direction == "A>C")
    out: list[Message] = []
    for chunk in read_transcript(path):
        if chunk.direction == direction:
            out.extend(Message(chunk.seconds, fields) for fields in decoder.feed(chunk.data))
    return out


def replay_steps(path: str | Path, state, server: str, base_epoch: float) -> Iterator[Message]:
    """Feed a transcript into `state` the way the live view does: events through `apply()`, each QueueStatus
    reply (collected up to QueueStatusComplete) through `resync()`. Yields each message once it is folded in,
    so a test can look at the state between any two messages."""
    actions = {m.fields.get("ActionID"): m.fields for m in read_messages(path, "C>A")}
    pending: dict[str, list[dict[str, str]]] = {}
    for msg in read_messages(path, "A>C"):
        fields, now = msg.fields, base_epoch + msg.seconds
        action_id = fields.get("ActionID")
        action = actions.get(action_id, {})
        if action.get("Action") == "QueueStatus":
            pending.setdefault(action_id, []).append(fields)
            if fields.get("Event") == "QueueStatusComplete":
                items = pending.pop(action_id)
                if not action.get("Member"):  # a member-filtered reply is not the whole queue
                    state.resync(server, items, now, queue=action.get("Queue"))
        elif "Event" in fields and action_id is None:
            state.apply(server, fields, now)
        yield msg


def replay(path: str | Path, state, server: str, base_epoch: float) -> int:
    """The whole transcript into `state`; returns the number of messages read."""
    return sum(1 for _ in replay_steps(path, state, server, base_epoch))
