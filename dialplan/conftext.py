"""Tiny builders for Asterisk .conf text: dialplan contexts and plain sections, one layout for every file."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Exten:
    """One extension: `exten => NAME,1,...` then ` same => n,...`; labels as `n(label)`."""

    name: str
    steps: list[tuple[str | None, str]] = field(default_factory=list)

    def add(self, app: str, label: str | None = None) -> "Exten":
        self.steps.append((label, app))
        return self

    def lines(self) -> list[str]:
        out = []
        for index, (label, app) in enumerate(self.steps):
            priority = ("1" if index == 0 else "n") + (f"({label})" if label else "")
            prefix = f"exten => {self.name}," if index == 0 else " same => "
            out.append(f"{prefix}{priority},{app}")
        return out


@dataclass
class Section:
    """A [name] block: comments, then `key=value` (or `exten =>`) lines."""

    name: str
    comments: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)

    def comment(self, text: str) -> "Section":
        self.comments.append(f"; {text}" if text else ";")
        return self

    def note(self, text: str) -> "Section":
        """A comment among the body lines, just before what it explains."""
        self.body.append(f"; {text}")
        return self

    def set(self, key: str, value: object) -> "Section":
        self.body.append(f"{key}={value}")
        return self

    def exten(self, exten: Exten) -> "Section":
        self.body.extend(exten.lines())
        return self

    def lines(self) -> list[str]:
        return [f"[{self.name}]", *self.comments, *self.body]


def document(head: list[str], sections: list[Section], preamble: list[str] = ()) -> list[str]:
    """Header comments, a blank line, then the sections separated by one blank line."""
    lines = list(head) + list(preamble)
    for section in sections:
        lines.append("")
        lines.extend(section.lines())
    return lines
