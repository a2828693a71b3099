"""Names from the routing table for the views: queue names, legacy lines' services, the table's order.

The table writes names bilingually, Chinese first with an English gloss in brackets
(`未成年人保护热线 (minors protection, inside 12345)`). A Chinese reader gets the Chinese part, an English reader
the whole name (the Chinese name is what callers and colleagues say, the gloss explains it). Ids stay a
secondary hint in the views. Pure: a table in, plain data out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)
_CJK = "\u3400-\u9fff"
_GLOSS = re.compile(r"\s*[(（][^(（)）" + _CJK + r"]*[)）]")  # a bracketed gloss without Chinese in it
_TRAILING_EN = re.compile(r"(?<=[" + _CJK + r"])\s+[A-Za-z][A-Za-z0-9 ,;.'/-]*$")  # "… inside 12345"


def localised(name: str, lang: str) -> str:
    """The table's bilingual name as a reader of `lang` wants it."""
    if lang != "zh" or not re.search("[" + _CJK + "]", name):
        return name
    short = _TRAILING_EN.sub("", _GLOSS.sub("", name).replace("->", "→")).strip()
    return short or name


@dataclass(frozen=True)
class Directory:
    queue_names: dict[str, str] = field(default_factory=dict)   # queue id -> the table's name
    queue_order: tuple[str, ...] = ()                           # general queue first, then the table's order
    line_services: dict[str, str] = field(default_factory=dict)  # line number -> the table's service
    line_order: tuple[str, ...] = ()
    timezone: str = "Asia/Shanghai"
    source: str = ""

    @classmethod
    def from_table(cls, table: Any) -> "Directory":
        order = [table.general_queue] + [q for q in table.queues if q != table.general_queue]
        lines = list(table.lines)
        if table.general_queue and "12345" in lines:  # the unified line leads, like its queue
            lines.remove("12345")
            lines.insert(0, "12345")
        return cls({qid: q.name for qid, q in table.queues.items()}, tuple(order),
                   {number: line.service for number, line in table.lines.items()}, tuple(lines),
                   str(table.timezone), str(table.source))

    @classmethod
    def load(cls, path: str | Path) -> "Directory":
        """The table's names, or none (ids are shown) when it cannot be read: the live view still works."""
        from routing.loader import load_table

        try:
            return cls.from_table(load_table(path))
        except Exception as exc:  # a broken table is the admin's to fix with `routes check`; the view goes on
            log.warning("supervisor.names_unavailable", table=str(path), error=f"{type(exc).__name__}: {exc}")
            return cls(source=str(path))

    def queue_title(self, queue: str, lang: str) -> str:
        name = self.queue_names.get(queue)
        return localised(name, lang) if name else queue

    def line_service(self, line: str, lang: str) -> str:
        service = self.line_services.get(line)
        return localised(service, lang) if service else ""

    def queue_rank(self, queue: str) -> tuple[int, str]:
        """Sort key: the table's order, queues it does not name after them, alphabetically."""
        try:
            return self.queue_order.index(queue), queue
        except ValueError:
            return len(self.queue_order), queue

    def line_rank(self, line: str) -> tuple[int, str]:
        try:
            return self.line_order.index(line), line
        except ValueError:
            return len(self.line_order), line
