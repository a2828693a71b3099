"""How a session ends from the wire side, for both adapters: kept apart from ivr.fastagi_compat (panoramisk,
asyncio) so that the engine, which catches them, imports neither in a classic AGI process."""
from __future__ import annotations


class SessionClosed(ConnectionError):
    """Asterisk closed the connection (the call went on in the dialplan, or the peer died)."""


class SessionStalled(TimeoutError):
    """The peer did not finish the env block, or did not answer a command, within the bound."""
