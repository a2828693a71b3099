"""What the audit trail keeps of a routing table: its text as loaded, with personal data masked.

The abuse rule's listed callers are the table's only personal data; every other line is kept verbatim so an
admin can see exactly what changed between two versions.
"""
from __future__ import annotations

import re

from routing.privacy import mask_number
from routing.yamlsource import SourceError, load_document

_NUMBER_TOKEN = re.compile(r"""(['"]?)(\+?[0-9]+)\1""")


def masked_table_text(text: str, file: str = "routing.yaml") -> str:
    try:
        doc = load_document(file, text)
    except SourceError:
        return text  # not YAML at all: it cannot have been loaded either; nothing to locate
    abuse = doc.data.get("abuse") if isinstance(doc.data, dict) else None
    listed = abuse.get("listed") if isinstance(abuse, dict) else None
    lines = text.splitlines(keepends=True)
    for index, entry in enumerate(listed if isinstance(listed, list) else []):
        if not isinstance(entry, dict) or "number" not in entry:
            continue
        line, column = doc.position(("abuse", "listed", index, "number"))
        raw = lines[line - 1]
        match = _NUMBER_TOKEN.match(raw, column - 1)
        if match:
            quote, digits = match.groups()
            lines[line - 1] = raw[:match.start()] + f"{quote}{mask_number(digits)}{quote}" + raw[match.end():]
    return "".join(lines)
