"""traffic.source on SQLite and PostgreSQL: synthetic calls written through the records' own rows (masked,
hashed), read back for replay and forecast, the talk time kept (migration 0007_traffic_fields)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from records.db import make_engine, ready_engine, upgrade
from records.schema import calls
from routing.loader import load_table
from routing.privacy import caller_hash
from tests.db_fixtures import db_url, pg_url  # noqa: F401
from traffic.source import call_facts, period_of, recorded_calls, write_calls
from traffic.synth import Model, synthesize

CONF = Path(__file__).resolve().parents[1] / "conf"
KEY = b"k" * 32


def test_write_and_read_back(db_url):  # noqa: F811
    table = load_table(CONF / "routing.yaml")
    records = synthesize(table, date(2026, 11, 24), 1, seed=6, model=Model(volumes={"12345": 400, "12320": 80}))
    fresh = make_engine(db_url)
    upgrade(fresh)                         # PostgreSQL is migrated by the admin (`hotline db upgrade`)
    fresh.dispose()
    engine = ready_engine(db_url)
    try:
        assert write_calls(engine, records, KEY) == len(records)
        assert write_calls(engine, records, KEY) == len(records)          # a second write changes nothing
        first, last = period_of(engine)
        assert first == min(r.arrived_at for r in records) and last == max(r.arrived_at for r in records)
        start = datetime(2026, 11, 24, tzinfo=table.timezone)
        back = list(recorded_calls(engine, start, start + timedelta(days=1)))
        assert len(back) == len(records)
        by_time = sorted(records, key=lambda r: r.arrived_at)
        assert [(c.dialed, c.target, c.caller_hash) for c in back] == [
            (r.dialed, r.target, caller_hash(r.caller, KEY)) for r in by_time]
        facts = list(call_facts(engine, start, start + timedelta(days=1)))
        answered = [r for r in records if r.outcome and r.outcome.value == "answered"]
        assert sum(1 for f in facts if f.talk is not None) == len(answered) > 0
        with engine.connect() as conn:
            shown = conn.execute(select(calls.c.caller_masked)).scalars().all()
        assert all("****" in m for m in shown)                             # never a number in clear
        assert not list(recorded_calls(engine, start - timedelta(days=1), start))
    finally:
        engine.dispose()
