"""Shared fixtures. Paths to the shipped configuration and the recorded Asterisk transcripts."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


@pytest.fixture(scope="session")
def routing_yaml() -> Path:
    return CONF / "routing.yaml"


@pytest.fixture(autouse=True)
def _restore_structlog():
    """CLI tests configure structlog (level, renderer) as `hotline` does; never let that leak into others."""
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
