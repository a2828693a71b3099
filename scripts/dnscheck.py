"""Does a trunk host name resolve here? The one DNS look-up of the CLIs (`routes check`, `dialplan render`).

Asterisk resolves identify `match` names and contacts when it loads pjsip; a name that does not resolve then
costs an identify object (an ERROR at every load) or every call over the trunk. The table checks take this
as a plain function (routing.checks.Resolver), so they stay pure; this is the real one.
"""
from __future__ import annotations

import socket
import threading
from typing import Callable

TIMEOUT_SECONDS = 3.0     # per name: a DNS server that does not answer must not hang a check


def system_resolver(timeout: float = TIMEOUT_SECONDS) -> Callable[[str], bool]:
    """name -> True when getaddrinfo finds an address within `timeout` seconds; answers are cached."""
    answers: dict[str, bool] = {}

    def lookup(name: str, into: list[bool]) -> None:
        try:
            into.append(bool(socket.getaddrinfo(name, None, proto=socket.IPPROTO_UDP)))
        except (OSError, UnicodeError):
            into.append(False)

    def resolves(name: str) -> bool:
        if name not in answers:
            # A daemon thread: a look-up the system resolver keeps hanging never holds the command at exit.
            result: list[bool] = []
            worker = threading.Thread(target=lookup, args=(name, result), daemon=True, name="dnscheck")
            worker.start()
            worker.join(timeout)
            answers[name] = bool(result and result[0])
        return answers[name]

    return resolves
