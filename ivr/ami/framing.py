"""Sans-I/O AMI codec: bytes in (split anywhere), messages out; actions formatted as bytes.

Asterisk sends one banner line (``Asterisk Call Manager/11.0.0``), then messages: ``Key: Value`` lines ended by
CRLF, each message ended by an empty line. We buffer *bytes* and decode a message only once it is complete, so a
multi-byte UTF-8 character split across two TCP reads is never lost (panoramisk decodes every read on its own
with errors='ignore' and silently drops such characters).

Repeated keys (``Output:`` lines of a Command reply, ``ChanVariable:`` lines, several ``Variable:`` lines) are
kept in order, joined with ``"\\n"`` under the one key: ``msg["Output"].split("\\n")`` gives the lines back. A line
without a colon (old ``Response: Follows`` bodies) is kept the same way under ``"Output"``.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

Message = dict[str, str]

BANNER_PREFIX = b"Asterisk Call Manager/"
_END_OF_MESSAGE = re.compile(rb"\r?\n\r?\n")
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20   # a peer sending 1 MiB without a blank line is broken, not chatty


class AmiFramingError(ValueError):
    """The peer sent something that is not AMI (clear message, nothing already decoded is lost)."""


class AmiDecoder:
    """Feed bytes as they arrive; get back every complete message, in order.

    `expect_banner` is true on the client side: the first line is the banner, kept in `self.banner`.
    """

    def __init__(self, *, expect_banner: bool = True, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._expect_banner = expect_banner
        self._max = max_message_bytes
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        if self._expect_banner and not self._take_banner():
            return messages
        while True:
            match = _END_OF_MESSAGE.search(self._buffer)
            if match is None:
                break
            raw = bytes(self._buffer[:match.start()])
            del self._buffer[:match.end()]
            message = parse_message(raw)
            if message:                      # stray blank lines between messages carry nothing
                messages.append(message)
        if len(self._buffer) > self._max:
            raise AmiFramingError(f"AMI message longer than {self._max} bytes without an end (blank line)")
        return messages

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def _take_banner(self) -> bool:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > 512:
                raise AmiFramingError("no AMI banner line in the first 512 bytes")
            return False
        line = bytes(self._buffer[:end]).rstrip(b"\r")
        if not line.startswith(BANNER_PREFIX):
            raise AmiFramingError(f"not an AMI banner: {line[:80]!r}")
        self.banner = line.decode("utf-8", "replace")
        del self._buffer[:end + 1]
        self._expect_banner = False
        return True


def parse_message(raw: bytes) -> Message:
    """One message's bytes (without the ending blank line) -> dict; repeated keys joined with '\\n'."""
    message: Message = {}
    for line in raw.decode("utf-8", "replace").split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            key, value = "Output", line
        else:
            value = value[1:] if value.startswith(" ") else value
        message[key] = f"{message[key]}\n{value}" if key in message else value
    return message


def values(message: Mapping[str, str], key: str) -> list[str]:
    """All values of a possibly repeated key (the inverse of the join rule); [] when absent."""
    value = message.get(key)
    return [] if value is None else value.split("\n")


def _check(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        raise ValueError(f"AMI {what} must not contain CR or LF: {text!r}")
    return text


def format_message(fields: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]]) -> bytes:
    """Key: Value lines with CRLF, then the blank line. A list/tuple value gives one line per item
    (Variable: a=1); other values are written with str() (Timeout: 30000).

    Field order is kept; CR/LF inside a key or value is refused (it would inject another header or message).
    """
    items = fields.items() if isinstance(fields, Mapping) else fields
    lines = []
    for key, value in items:
        _check(key, "key")
        if not key or ":" in key:
            raise ValueError(f"bad AMI key: {key!r}")
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            lines.append(f"{key}: {_check(str(item), 'value')}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def format_action(fields: Mapping[str, str | Sequence[str]], action_id: str | None = None) -> bytes:
    """An action: ``Action`` first, then ``ActionID`` (given, or from `fields`), then the rest in order."""
    name = fields.get("Action")
    if not name or not isinstance(name, str):
        raise ValueError("an AMI action needs an 'Action' field")
    ordered: list[tuple[str, str | Sequence[str]]] = [("Action", name)]
    action_id = action_id if action_id is not None else fields.get("ActionID")  # type: ignore[assignment]
    if action_id:
        ordered.append(("ActionID", action_id))
    ordered += [(k, v) for k, v in fields.items() if k not in ("Action", "ActionID")]
    return format_message(ordered)


def banner_bytes(version: str = "11.0.0") -> bytes:
    return BANNER_PREFIX + version.encode() + b"\r\n"
