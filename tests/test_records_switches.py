"""records.switches on SQLite and PostgreSQL: a flip writes the state and its audit row in one transaction, the
revision grows, expiry is read at the caller's instant, refused flips write nothing; the engine's SwitchBoard
keeps the last state when the database cannot be read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine

from ivr.switchboard import SwitchBoard
from records.db import upgrade
from records.switches import SwitchError, SwitchStore
from tests.db_fixtures import db_url  # noqa: F401

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
KNOWN = ("typhoon", "force-night")


@pytest.fixture
def store(db_url):  # noqa: F811
    engine = create_engine(db_url)
    upgrade(engine)
    yield SwitchStore(engine)
    engine.dispose()


def test_flips_keep_state_and_audit_and_revision(store):
    state, first = store.flip("typhoon", True, by="admin-li", via="web", why="台风", at=NOW,
                              until=NOW + timedelta(hours=6), known=KNOWN)
    _, second = store.flip("force-night", True, by="phone 8001", via="phone", why="*953", at=NOW, known=KNOWN)
    _, third = store.flip("typhoon", False, by="admin-li", via="cli", why="过境", at=NOW + timedelta(hours=1),
                          known=KNOWN)
    assert first < second < third
    snap = store.snapshot()
    assert snap.revision == third
    assert snap.active_names(NOW + timedelta(hours=2)) == {"force-night"}
    typhoon = snap.states["typhoon"]
    assert (typhoon.active, typhoon.changed_by, typhoon.via, typhoon.why, typhoon.until) == \
        (False, "admin-li", "cli", "过境", None)
    assert [(e["name"], e["active"], e["via"]) for e in store.events()] == [
        ("typhoon", False, "cli"), ("force-night", True, "phone"), ("typhoon", True, "web")]
    assert store.events(name="typhoon")[1]["until"] == NOW + timedelta(hours=6)


def test_expiry_is_read_at_the_instant_asked(store):
    store.flip("typhoon", True, by="a", via="cli", why="x", at=NOW, until=NOW + timedelta(minutes=30))
    snap = store.snapshot()
    assert snap.active_names(NOW + timedelta(minutes=29)) == {"typhoon"}
    assert snap.active_names(NOW + timedelta(minutes=30)) == frozenset()


def test_refused_flips_write_nothing(store):
    for kwargs, message in ((dict(name="nope"), "no switch 'nope'"), (dict(why=" "), "say why"),
                            (dict(until=NOW - timedelta(minutes=1)), "not in the future"),
                            (dict(via="fax"), "via must be one of")):
        args = {"name": "typhoon", "why": "x", "via": "cli", **kwargs}
        with pytest.raises(SwitchError, match=message):
            store.flip(args.pop("name"), True, by="a", at=NOW, known=KNOWN, **args)
    assert store.snapshot().revision == 0 and store.events() == []


def test_the_board_keeps_the_last_state_when_the_database_is_gone(store):
    store.flip("typhoon", True, by="a", via="cli", why="x", at=NOW)
    board = SwitchBoard(store)
    assert board.refresh() and board.active(NOW) == {"typhoon"}
    store.engine.dispose()
    board.store = SwitchStore(create_engine("sqlite:////nonexistent/dir/records.sqlite3"))
    assert board.refresh() is False and board.active(NOW) == {"typhoon"}


def test_an_in_process_flip_is_in_force_before_any_refresh(store):
    board = SwitchBoard(store)
    board.refresh()
    state, revision = store.flip("force-night", True, by="phone 8001", via="phone", why="*953", at=NOW)
    board.apply(state, revision)
    assert board.active(NOW) == {"force-night"} and board.current.revision == revision


def test_the_light_reader_of_classic_agi_sees_the_same_snapshot(store, db_url):  # noqa: F811
    from records.switch_state import read_snapshot_light

    store.flip("typhoon", True, by="admin-li", via="web", why="台风", at=NOW, until=NOW + timedelta(hours=6))
    store.flip("force-night", True, by="a", via="cli", why="x", at=NOW)
    store.flip("force-night", False, by="a", via="cli", why="y", at=NOW + timedelta(minutes=1))
    assert read_snapshot_light(db_url) == store.snapshot()


def test_the_light_reader_creates_no_sqlite_file(tmp_path):
    from records.switch_state import read_snapshot_light

    with pytest.raises(Exception):
        read_snapshot_light(f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert not (tmp_path / "none.sqlite3").exists()
