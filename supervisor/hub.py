"""The edge between the AMI links and the pure state: events in, resync on (re)connect, actions out, audited.

One AmiClient per Asterisk server. Every AMI event is folded into the LiveState as it arrives (sync callback,
in order); after each (re)login a QueueStatus reply resynchronises that server. Watchers (the web event stream,
the terminal view) wait on `wait_change()`, which wakes on the next change.

Today's figures are seeded from the SQL records (`records_loader`: a local day -> that day's call rows) at
start, again after midnight Asia/Shanghai, and every `reseed_interval` s (calls another engine recorded, or
that ended while this view was away); live events keep them current in between.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

import structlog

from supervisor import actions
from supervisor.audit import AuditLog
from supervisor.auth import User
from supervisor.history import History
from supervisor.state import HANDLED_EVENTS, LiveState, local_day

log = structlog.get_logger(__name__)
WATCHED_EVENTS = HANDLED_EVENTS


class SupervisorHub:
    def __init__(self, clients: Mapping[str, Any], *, state: LiveState | None = None,
                 history: History | None = None, audit: AuditLog | None = None,
                 clock: Callable[[], float] = time.time, sample_interval: float = 5.0,
                 resync_timeout: float = 10.0, close_clients: bool = True,
                 records_loader: Callable[[Any], list[Any]] | None = None, reseed_interval: float = 300.0) -> None:
        self.clients = dict(clients)
        self.close_clients = close_clients  # False when the clients are shared with the engine (transfers)
        self.state = state or LiveState()
        self.history = history or History()
        self.audit = audit
        self.clock = clock
        self.sample_interval = sample_interval
        self.resync_timeout = resync_timeout
        self.records_loader = records_loader
        self.reseed_interval = reseed_interval
        self._seeded_at = 0.0
        self._changed = asyncio.Event()
        self._synced: dict[str, asyncio.Event] = {name: asyncio.Event() for name in self.clients}
        self._unsubscribe: list[Callable[[], None]] = []
        self._ticker: asyncio.Task | None = None
        for name in self.clients:  # configured servers show (as not connected, since now) before their login
            self.state.set_connected(name, False, self.clock())

    # ---- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.seed()
        for name, client in self.clients.items():
            self._unsubscribe.append(client.on_event(self._event_handler(name), WATCHED_EVENTS))
            self._unsubscribe.append(client.on_connected(self._connected_handler(name)))
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="supervisor-tick")
        already_up = [name for name, client in self.clients.items() if client.connected]  # shared clients
        # each client returns after its first attempt and keeps reconnecting on its own
        await asyncio.gather(*(client.start() for client in self.clients.values()), return_exceptions=True)
        for name in already_up:  # their login happened before we subscribed: no on_connected for it
            await self.resync(name)

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        if self.close_clients:
            await asyncio.gather(*(client.close() for client in self.clients.values()), return_exceptions=True)

    async def wait_synced(self, timeout: float) -> bool:
        """Until every server has answered its first QueueStatus (False if some did not in time)."""
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._synced.values())), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ---- change notification ------------------------------------------------------------------------
    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()  # waiters hold the event that was just set

    async def wait_change(self, timeout: float) -> bool:
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ---- AMI callbacks ------------------------------------------------------------------------------
    def _event_handler(self, server: str) -> Callable[[dict[str, str]], None]:
        def on_event(event: dict[str, str]) -> None:
            if self.state.apply(server, event, self.clock()):
                self.notify()
        return on_event

    def _connected_handler(self, server: str) -> Callable[[], Any]:
        async def on_connected() -> None:
            await self.resync(server)
        return on_connected

    async def resync(self, server: str) -> None:
        client = self.clients[server]
        sent_at = self.clock()
        try:
            reply = await client.action({"Action": "QueueStatus"}, timeout=self.resync_timeout)
        except Exception as exc:  # the link dropped again: the next login resyncs
            log.warning("supervisor.resync_failed", server=server, error=str(exc))
            return
        self.state.resync(server, reply, self.clock(), sent_at=sent_at)
        self.state.set_connected(server, True, self.clock())
        log.info("supervisor.resynced", server=server, queues=len(self.state.servers[server].queues))
        self.notify()
        await self._resync_ivr(server, client)
        self._synced[server].set()  # a first frame (`queues watch --once`) has the IVR count too

    async def _resync_ivr(self, server: str, client: Any) -> None:
        """The calls already in the IVR (CoreShowChannels): the events alone only know calls that arrive later."""
        sent_at = self.clock()
        try:
            reply = await client.action({"Action": "CoreShowChannels"}, timeout=self.resync_timeout)
        except Exception as exc:  # refused (no reporting class) or the link dropped: the events still count
            log.info("supervisor.ivr_resync_skipped", server=server, error=str(exc))
            return
        self.state.resync_ivr(server, reply, self.clock(), sent_at)
        self.notify()

    async def seed(self) -> bool:
        """Today's figures from the SQL records (off the event loop); False (figures live only) on trouble."""
        if self.records_loader is None:
            return False
        now = self.clock()
        self._seeded_at = now
        try:
            rows = await asyncio.to_thread(self.records_loader, local_day(now))
        except Exception as exc:  # noqa: BLE001 - no database: the view still runs, on live events only
            log.warning("supervisor.figures_not_seeded", error=f"{type(exc).__name__}: {str(exc)[:200]}",
                        effect="today's figures count only calls seen live from now on")
            self.state.seed_failed(f"{type(exc).__name__}")
            self.notify()
            return False
        changed = self.state.seed(rows, self.clock())
        log.info("supervisor.figures_seeded", calls=len(rows), changed=changed)
        self.notify()
        return True

    async def _tick(self) -> None:
        last_sample = 0.0
        while True:
            now = self.clock()
            if self.state.roll_day(now) or (self.records_loader is not None
                                            and now - self._seeded_at >= self.reseed_interval):
                await self.seed()
            for name, client in self.clients.items():
                if not client.connected and self.state.server(name).connected:
                    self.state.set_connected(name, False, now)
                    log.warning("supervisor.ami_down", server=name)
                    self.notify()
            if now - last_sample >= self.sample_interval:
                self.history.sample(self.state.view(now, full_numbers=False))
                last_sample = now
            await asyncio.sleep(min(1.0, self.sample_interval))

    # ---- actions ------------------------------------------------------------------------------------
    async def perform(self, user: User, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate, check the role, send through the server's AmiClient, audit. Never raises for bad input.

        The result's `message` is what the audit keeps (Asterisk's own words included); `code` (a message key
        of supervisor/messages/view.yaml) is what the user is told, in their language."""
        now = self.clock()
        summary = {k: str(v)[:100] for k, v in params.items() if k in ("server", "queue", "interface", "reason")}
        if kind not in actions.ACTIONS:
            result = {"ok": False, "message": f"unknown action {kind[:40]!r}", "code": "view.err.unknown_action"}
        elif not user.may(kind):
            result = {"ok": False, "message": f"your role ({user.role}) may not {kind}", "code": "view.err.forbidden"}
        else:
            try:
                request = actions.build(kind, params, self.state, default_phone=user.phone)
            except actions.ActionError as exc:
                result = {"ok": False, "message": str(exc), "code": _refusal_code(str(exc))}
            else:
                summary = request.summary
                try:
                    reply = await self.clients[request.server].action(request.fields)
                    result = {"ok": True, "message": reply[0].get("Message", "Success") if reply else "Success",
                              "code": f"view.ok.{kind}"}
                except Exception as exc:
                    result = {"ok": False, "message": f"Asterisk refused: {exc}", "code": "view.err.asterisk"}
        if self.audit is not None:
            self.audit.record(at=now, user=user.name, role=user.role, action=kind, params=summary,
                              result="ok" if result["ok"] else "error", message=result["message"])
        log.info("supervisor.action", user=user.name, action=kind, ok=result["ok"], message=result["message"],
                 **{k: v for k, v in summary.items() if k in ("server", "queue", "interface")})
        return result


def _refusal_code(message: str) -> str:
    """The user's message for a refusal of supervisor.actions (the English detail stays in the audit)."""
    if "is not a member of" in message:
        return "view.err.not_member"
    if "is already a member of" in message:
        return "view.err.already_member"
    if message.startswith("your phone"):
        return "view.err.phone"
    return "view.err.invalid"
