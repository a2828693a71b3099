"""Tests that run on a real Asterisk 22 (marked `asterisk`). Without one they skip, saying how to get one."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.asterisk import harness
from tests.asterisk.harness import Ami, Asterisk, Engine, FarEnd

ROOT = harness.ROOT


def pytest_collection_modifyitems(config, items):
    why = harness.available()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.asterisk)
            if why:
                item.add_marker(pytest.mark.skip(reason=why))


@pytest.fixture(scope="session")
def workdir():
    # short paths: Asterisk's control socket and Local channel names stay readable
    path = Path(tempfile.mkdtemp(prefix="hl-ast-"))
    yield path
    if not os.environ.get("HOTLINE_TEST_KEEP"):  # HOTLINE_TEST_KEEP=1 keeps configs and logs to look at
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def prompts(workdir) -> Path:
    return harness.silent_prompts(workdir / "prompts", harness.prompt_names())


@pytest.fixture(scope="session")
def far_end(workdir):
    far = FarEnd.start_new(workdir / "farend")
    yield far
    far.stop()


@dataclass
class Rig:
    """A PBX with our rendered config, its engine(s) and the shared far end."""
    pbx: Asterisk
    engines: list[Engine]
    far_end: FarEnd
    table: Path
    render_warnings: str = ""             # what `hotline dialplan render` printed on stderr

    @property
    def engine(self) -> Engine:
        return self.engines[0]

    def ami(self, username: str = "tester", secret: str = harness.TESTER_SECRET) -> Ami:
        """`async with rig.ami() as ami:` a tester (read=all) connection to this PBX."""
        return Ami(self.pbx.ami_port, username, secret)

    def stop(self) -> None:
        for engine in self.engines:
            engine.stop()
        self.pbx.stop()


@pytest.fixture(scope="session")
def make_rig(workdir, prompts, far_end) -> Callable[..., Rig]:
    """make_rig(name, edit_table=None, engines=1, engine_args=(), engine_env={}, extra_extensions="",
    render_args=(), start_engines=True, sounds=True, sounds_dir=None, dead_engines=0, shipped_table=False) -> Rig;
    every rig is stopped at the end of the session (or earlier with rig.stop()). sounds=False: no hotline sounds
    at all; sounds_dir: an Asterisk sounds directory whose hotline/ the PBX plays (e.g. one filled by `hotline
    menus prompts --generate`) instead of the silent test prompts."""
    rigs: list[Rig] = []

    def make(name: str, edit_table=None, engines: int = 1, engine_args=(), engine_env=None,
             extra_extensions: str = "", extra_pjsip: str = "", render_args=(), start_engines: bool = True,
             sounds: bool = True, sounds_dir: Path | None = None, dead_engines: int = 0,
             shipped_table: bool = False) -> Rig:
        base = workdir / name
        if shipped_table:   # the table exactly as shipped (placeholder hosts), rendered without --strict
            base.mkdir(parents=True, exist_ok=True)
            table = base / "routing.yaml"
            shutil.copyfile(ROOT / "conf" / "routing.yaml", table)
        else:
            table = harness.table_with_far_end(ROOT / "conf" / "routing.yaml", base / "routing.yaml",
                                               far_end.host, far_end.port, edit_table)
        hotline_sounds = sounds_dir / "hotline" if sounds_dir is not None else prompts if sounds else None
        pbx = Asterisk.prepare(base / "pbx", sounds=hotline_sounds)
        live = [Engine(base / f"engine{i}", table, args=tuple(engine_args), extra_env=dict(engine_env or {}))
                for i in range(engines)]
        urls = [f"agi://127.0.0.1:{harness.free_port()}" for _ in range(dead_engines)] + [e.url for e in live]
        warnings = harness.pbx_config(pbx, urls, table, extra_extensions, extra_pjsip, render_args,
                                      strict=not shipped_table)
        if start_engines:
            for engine in live:
                engine.start()
        pbx.start()
        pbx.cli("agi set debug on", check=False)
        rig = Rig(pbx, live, far_end, table, warnings)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.stop()


