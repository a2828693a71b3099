"""Reader for the recorded AMI transcripts: '#@ <sec> <dir> <nbytes>' marker lines, each followed by exactly
that many bytes of the TCP stream (dir C>A client->Asterisk, A>C Asterisk->client, note = driver note)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Chunk:
    seconds: float
    direction: str        # "C>A" | "A>C" | "note"
    data: bytes


def read_transcript(path: Path | str) -> list[Chunk]:
    raw = Path(path).read_bytes()
    chunks: list[Chunk] = []
    first = re.search(rb"^#@ [0-9.]+ ", raw, re.MULTILINE)   # the header lines mention '#@' too
    pos = first.start() if first else -1
    while pos >= 0 and pos < len(raw):
        end = raw.index(b"\n", pos)
        marker = raw[pos:end].decode("ascii").split()
        if len(marker) != 4 or marker[0] != "#@":
            raise ValueError(f"{path}: bad marker line at byte {pos}: {raw[pos:end]!r}")
        _, seconds, direction, nbytes = marker
        start = end + 1
        stop = start + int(nbytes)
        if stop > len(raw):
            raise ValueError(f"{path}: chunk at byte {pos} runs past the end of the file")
        chunks.append(Chunk(float(seconds), direction, raw[start:stop]))
        pos = stop
        if direction == "note" and raw.startswith(b"\n", pos):   # a note's own line end is not counted
            pos += 1
        if pos < len(raw) and not raw.startswith(b"#@ ", pos):
            raise ValueError(f"{path}: expected a marker at byte {pos}")
    return chunks


def stream(chunks: list[Chunk], direction: str) -> bytes:
    return b"".join(c.data for c in chunks if c.direction == direction)
