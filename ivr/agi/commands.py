"""AGI commands and responses as values: the vocabulary shared by the codec (bytes) and the IVR session (logic).

The session yields `Command`s and receives `Response`s; `ivr.agi.codec` turns them into and out of bytes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """Base of every AGI command value."""


@dataclass(frozen=True)
class Answer(Command):
    pass


@dataclass(frozen=True)
class Hangup(Command):
    pass


@dataclass(frozen=True)
class StreamFile(Command):
    file: str
    escape_digits: str = ""          # digits that interrupt the prompt (barge-in)


@dataclass(frozen=True)
class GetData(Command):
    file: str
    timeout_ms: int | None = None
    max_digits: int | None = None


@dataclass(frozen=True)
class GetOption(Command):
    file: str
    escape_digits: str
    timeout_ms: int | None = None


@dataclass(frozen=True)
class SayDigits(Command):
    digits: str
    escape_digits: str = ""


@dataclass(frozen=True)
class SetVariable(Command):
    name: str
    value: str


@dataclass(frozen=True)
class GetVariable(Command):
    name: str


@dataclass(frozen=True)
class GetFullVariable(Command):
    expression: str


@dataclass(frozen=True)
class Exec(Command):
    application: str
    args: tuple[str, ...] = ()       # joined with ',' for the application; the codec quotes the whole


@dataclass(frozen=True)
class Verbose(Command):
    message: str
    level: int = 1


@dataclass(frozen=True)
class ChannelStatus(Command):
    pass


@dataclass(frozen=True)
class Response:
    """One complete reply from Asterisk to one command.

    code: 200, 510, 511 or 520. result: the integer after `result=` (None when absent).
    data: the text in parentheses (`(timeout)`, `(value)`), None when absent. endpos: STREAM FILE's offset.
    hungup: the channel is gone (result=-1 on a pending command, a lone HANGUP line, or 511).
    """

    code: int
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    usage: str | None = None         # 520's usage text
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200 and self.result is not None and self.result >= 0

    @property
    def hungup(self) -> bool:
        return self.code == 511 or (self.code == 200 and self.result == -1)

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def digit(self) -> str | None:
        """STREAM FILE / GET OPTION / WAIT FOR DIGIT: result is the ASCII code of the key pressed, 0 for none."""
        if self.code == 200 and self.result and self.result > 0:
            return chr(self.result)
        return None


HANGUP_NOTICE = Response(code=200, result=-1, data="HANGUP", raw="HANGUP")
"""What the codec emits for Asterisk's unsolicited `HANGUP` line (dead mode follows)."""
