"""Reader for the recorded FastAGI transcripts (../shared/asterisk/fastagi-*.txt, copied to tests/transcripts/).

Each record: `<seconds> <A>P|P>A> <Python bytes literal | <note>>`, or `<seconds> <note>` (a driver's note of
the second set). A>P b'' is EOF from Asterisk.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Record:
    at: float
    direction: str            # "A>P" (Asterisk -> us) or "P>A" (us -> Asterisk)
    data: bytes | None        # None for a probe note
    note: str = ""


@dataclass
class Exchange:
    command: bytes                        # one command line as sent, with its newline
    reply: bytes = b""                    # every byte Asterisk sent until the next command
    reply_times: list[float] = field(default_factory=list)


@dataclass
class Transcript:
    name: str
    records: list[Record]

    @property
    def asterisk_stream(self) -> bytes:
        """Everything Asterisk sent, concatenated: env block first."""
        return b"".join(r.data for r in self.records if r.direction == "A>P" and r.data)

    @property
    def env_block(self) -> bytes:
        out = b""
        for r in self.records:
            if r.direction == "note":
                continue
            if r.direction != "A>P" or r.data is None:
                break
            out += r.data
            if r.data == b"\n":
                break
        return out

    @property
    def exchanges(self) -> list[Exchange]:
        result: list[Exchange] = []
        env_done = False
        for r in self.records:
            if not env_done:
                env_done = r.direction == "A>P" and r.data == b"\n"
                continue
            if r.direction == "P>A" and r.data is not None:
                result.append(Exchange(command=r.data))
            elif r.direction == "A>P" and r.data and result:
                result[-1].reply += r.data
                result[-1].reply_times.append(r.at)
        return result


def load_transcript(path: Path | str) -> Transcript:
    path = Path(path)
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        at, direction, *rest = line.split(None, 2)
        if direction.startswith("<"):       # a note of the driver, on no direction (second recording set)
            records.append(Record(float(at), "note", None, line.split(None, 1)[1]))
            continue
        payload = rest[0]
        if payload.startswith("<"):
            records.append(Record(float(at), direction, None, payload))
        else:
            records.append(Record(float(at), direction, ast.literal_eval(payload)))
    return Transcript(path.stem, records)
