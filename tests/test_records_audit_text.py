"""Defect 14: the audit copy of a routing table (table_versions.content) never keeps a listed caller in clear,
whatever YAML form the number is written in, nor a number written in a reason or a comment."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from records.audit_text import mask_config_text
from records.db import make_engine
from records.recorder import CallRecorder
from records.schema import table_versions
from routing.loader import load_table
from scripts.companions import record_config_versions

ROOT = Path(__file__).resolve().parents[1]

TABLE_TAIL = """
  # 13900002222 called 40 times on 2021-09-17, see 138 0013 8000
  max_calls: 20   # raised after +86-137-0000-3333 complained
  per_minutes: 60
"""

BLOCKS = """abuse:
  listed:
    - number: >-
        13800001111
      until: 2027-01-01
      reason: keeps calling from 13600006666 and 0898-6612-3456
    - number: |
        13500004444
      reason: >
        same person as 135 0000 4444,
        also 13700005555
"""


def test_block_scalars_reasons_and_comments_are_masked():
    text = BLOCKS + TABLE_TAIL + 'lines:\n  "12345": {service: s}  # 12345 stays\n'
    masked = mask_config_text(text)
    for number in ("13800001111", "13500004444", "13600006666", "66123456", "13700005555", "13900002222",
                   "0013 8000", "0000-3333", "0000 4444"):
        assert number not in masked, number
    assert "138****1111" in masked and "135****4444" in masked and "089*-****-3456" in masked
    assert "135 **** 4444" in masked                   # separators stay where they were
    # kept: dates, the expiry, line numbers, counts; the text keeps its lines and length
    assert "until: 2027-01-01" in masked and "on 2021-09-17" in masked and '"12345"' in masked
    assert "# 12345 stays" in masked and "max_calls: 20" in masked
    assert len(masked) == len(text) and masked.count("\n") == text.count("\n")


def test_a_listed_number_is_masked_anywhere_in_the_text():
    text = ("abuse:\n  listed:\n    - {number: '+8613800001111', reason: r}\n"
            "lines:\n  \"12345\": {service: 'not 13800001111 here either'}\n")
    masked = mask_config_text(text)
    assert "13800001111" not in masked and "0000111" not in masked


def test_not_yaml_every_long_run_is_masked():
    assert mask_config_text("abuse: [13800001111, {") == "abuse: [138****1111, {"


def test_the_shipped_files_are_kept_verbatim():
    for name in ("routing.yaml", "ivr.yaml"):
        text = (ROOT / "conf" / name).read_text(encoding="utf-8")
        assert mask_config_text(text) == text, name


numbers = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
forms = st.sampled_from(["plain", "single", "double", "folded", "literal", "flow", "spaced", "dashed", "plus"])


def written(number: str, form: str) -> str:
    return {
        "plain": f"    - number: {number}\n      reason: r\n",
        "single": f"    - number: '{number}'\n      reason: r\n",
        "double": f'    - number: "{number}"\n      reason: r\n',
        "folded": f"    - number: >-\n        {number}\n      reason: r\n",
        "literal": f"    - number: |\n        {number}\n      reason: r\n",
        "flow": f"    - {{reason: r, number: {number}}}\n",
        "spaced": f"    - number: '{number}'\n      reason: \"the same: {number[:3]} {number[3:7]} {number[7:]}\"\n",
        "dashed": f"    - number: '{number}'\n      reason: r  # {number[:3]}-{number[3:7]}-{number[7:]}\n",
        "plus": f"    - number: '+86{number}'\n      reason: r\n",
    }[form]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(numbers, forms), min_size=1, max_size=4), st.booleans())
def test_no_listed_number_survives_in_any_form(listings, noted):
    text = "abuse:\n  listed:\n" + "".join(written(n, f) for n, f in listings)
    if noted:
        text += "".join(f"# noted {n}\n" for n, _ in listings)
    masked = mask_config_text(text)
    for number, _ in listings:
        assert number not in masked.replace(" ", "").replace("-", ""), (number, masked)
    assert masked.count("\n") == text.count("\n")


def test_the_engine_stores_the_table_masked(tmp_path):
    """From `hotline serve`'s record of the tables put in force to the row in SQL (and the spool before it)."""
    table_file = tmp_path / "routing.yaml"
    shipped = (ROOT / "conf" / "routing.yaml").read_text(encoding="utf-8")
    listing = ("  listed:\n    - number: >-\n        13800001111\n      until: 2027-01-01\n"
               "      reason: calls from 13600006666 too\n")
    assert "  listed: []\n" in shipped
    table_file.write_text(shipped.replace("  listed: []\n", listing), encoding="utf-8")
    table = load_table(table_file)
    assert table.abuse.listed[0].number == "13800001111"      # the loader takes the block scalar
    menus = SimpleNamespace(version="m", source=tmp_path / "absent-ivr.yaml")
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    rec = CallRecorder(url, tmp_path / "spool", b"k", auto_upgrade=True)
    try:
        record_config_versions(rec, SimpleNamespace(table=table, menus=menus), "admin-li")
        spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").glob("seg-*.jsonl"))
        assert b"13800001111" not in spooled and b"13600006666" not in spooled and b"138****1111" in spooled
        assert rec.flush() == 2
    finally:
        rec.close()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            content = conn.execute(select(table_versions.c.content)
                                   .where(table_versions.c.version == table.version)).scalar_one()
    finally:
        engine.dispose()
    assert "13800001111" not in content and "13600006666" not in content
    assert "138****1111" in content and "136****6666" in content
    assert content.count("\n") == table_file.read_text(encoding="utf-8").count("\n")
