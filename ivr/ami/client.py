"""AmiClient: one AMI link to Asterisk that logs in, keeps itself alive and reconnects.

Why not panoramisk's Manager (panoramisk 1.4 stays pinned: tests/test_ami_panoramisk_faults.py runs it as the
reference that shows each fault). Its faults sit in the core of Manager/AMIProtocol, not at an edge we could
wrap: (a) AMIProtocol.data_received decodes every TCP read on its own with errors='ignore', so a UTF-8 character
split across reads vanishes; (b) Manager.dispatch runs callbacks inside data_received, so one that raises tears
the transport down; (c) Manager.ping sends Ping but never looks at the reply, so a half-open link is never
noticed; (d) AMIProtocol.close moves unanswered actions to `awaiting_actions` and re-sends them after the next
FullyBooted (an Originate can ring a citizen twice), and their futures never fail if no FullyBooted comes;
besides, Action.multi treats "Atxfer successfully queued" and "Added interface to queue" as list starts, so
those replies never resolve. Guarding all that means overriding data_received, handle_message, close, ping,
connection_made, connection_lost, dispatch and Action's completion rules: a fork in disguise that would break
silently with the next panoramisk release. So the link is written here, once, on asyncio streams with our
sans-I/O codec (ivr.ami.framing); this module is the ONE place where those faults are handled:

- bytes are buffered and decoded per complete message (a);
- every subscriber callback is isolated: an exception is logged, the link and other subscribers carry on (b);
- Ping every `ping_interval`; no reply within `ping_timeout` -> the link is dropped and re-established (c);
- an action pending when the link drops fails with AmiLinkLost; nothing is ever re-sent, and actions asked for
  while the link is down fail at once with AmiNotConnected (d). Originate is therefore never sent twice.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import structlog

from ivr.ami.framing import AmiDecoder, AmiFramingError, Message, format_action

log = structlog.get_logger(__name__)

EventCallback = Callable[[Message], Any]


class AmiError(Exception):
    """An action failed: Asterisk said Error (`.response` holds its reply), or the link could not carry it."""

    def __init__(self, message: str, response: Message | None = None) -> None:
        super().__init__(message)
        self.response = response


class AmiAuthError(AmiError):
    """Login refused (wrong user or secret)."""


class AmiNotConnected(AmiError):
    """The link is down right now; the action was not sent."""


class AmiLinkLost(AmiError):
    """The link dropped after the action was sent and before its reply: it may or may not have run. Not re-sent."""


class AmiTimeout(AmiError):
    """No complete reply within the timeout (the action may still run in Asterisk)."""


def backoff_delay(failures: int, first: float, cap: float) -> float:
    """Delay before reconnect attempt number `failures` (1-based): first, 2*first, 4*first ... capped."""
    return min(cap, first * (2 ** max(0, failures - 1)))


@dataclass
class _Pending:
    name: str
    future: asyncio.Future
    messages: list[Message] = field(default_factory=list)
    is_list: bool = False


@dataclass
class _Link:
    writer: asyncio.StreamWriter
    banner: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[str, _Pending] = field(default_factory=dict)

    def fail_pending(self, make_error: Callable[[_Pending, str], AmiError]) -> None:
        pending, self.pending = self.pending, {}
        for action_id, item in pending.items():
            if not item.future.done():
                item.future.set_exception(make_error(item, action_id))
                item.future.exception()          # retrieved: no "never retrieved" warning if nobody awaits it

    def abort(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


class _Subscriber:
    """One on_event registration. Async callbacks run in order on their own task, so a slow one delays only itself."""

    def __init__(self, callback: EventCallback, names: Iterable[str] | None) -> None:
        self.callback = callback
        self.names = None if names is None else frozenset(n.lower() for n in names)
        self.is_async = inspect.iscoroutinefunction(callback)
        self.queue: asyncio.Queue[Message] | None = None
        self.task: asyncio.Task | None = None

    def wants(self, event: Message) -> bool:
        return self.names is None or event.get("Event", "").lower() in self.names

    def deliver(self, event: Message) -> None:
        if not self.is_async:
            try:
                result = self.callback(event)
            except Exception:
                log.exception("ami.callback_failed", callback=_name(self.callback), ami_event=event.get("Event"))
                return
            if inspect.isawaitable(result):
                _spawn(result, self.callback)
            return
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._work())
        self.queue.put_nowait(event)

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            event = await self.queue.get()
            try:
                await self.callback(event)
            except Exception:
                log.exception("ami.callback_failed", callback=_name(self.callback), ami_event=event.get("Event"))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.task = self.queue = None       # a later event (client started again) starts a fresh worker


def _name(callback: Callable) -> str:
    return getattr(callback, "__qualname__", repr(callback))


def _spawn(awaitable: Awaitable, owner: Callable) -> asyncio.Task:
    async def guarded() -> None:
        try:
            await awaitable
        except Exception:
            log.exception("ami.callback_failed", callback=_name(owner))
    return asyncio.ensure_future(guarded())


class AmiClient:
    def __init__(self, host: str, port: int, username: str, secret: Any, *, ping_interval: float = 10,
                 action_timeout: float = 5, reconnect_max_delay: float = 30, reconnect_first_delay: float = 0.5,
                 ping_timeout: float | None = None, connect_timeout: float = 5, events: bool = True,
                 action_id_prefix: str = "hotline") -> None:
        self.host, self.port, self.username = host, port, username
        # pydantic SecretStr or plain str; kept private and never logged or shown in repr
        self.__secret = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout if ping_timeout is not None else min(action_timeout, ping_interval)
        self.action_timeout = action_timeout
        self.reconnect_first_delay = reconnect_first_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.connect_timeout = connect_timeout
        self._events_on = events
        self._ids = (f"{action_id_prefix}-{n}" for n in itertools.count(1))
        self._subscribers: list[_Subscriber] = []
        self._on_connected: list[Callable[[], Any]] = []
        self._on_disconnected: list[Callable[[], Any]] = []
        self._link: _Link | None = None
        self._connected = False
        self._closing = False
        self._runner: asyncio.Task | None = None
        self._first_attempt: asyncio.Future | None = None
        self._connected_event: asyncio.Event | None = None
        self.logins = 0                      # successful logins so far (1 + reconnects)
        self._logged_in_last = False         # the last attempt logged in: backoff starts again from the first delay

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> "AmiClient":
        if settings.ami_secret is None:
            raise AmiError("no AMI secret: set HOTLINE_AMI_SECRET (environment or HOTLINE_SECRETS_FILE)")
        return cls(settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_secret, **options)

    def __repr__(self) -> str:
        return f"AmiClient({self.host}:{self.port} user={self.username} connected={self._connected})"

    @property
    def connected(self) -> bool:
        return self._connected

    # -- life cycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and log in; returns after the first attempt (success or not). Reconnects in the background."""
        if self._runner is not None:
            return
        loop = asyncio.get_running_loop()
        self._closing = False
        self._first_attempt = loop.create_future()
        self._connected_event = asyncio.Event()
        self._runner = loop.create_task(self._run(), name=f"ami-{self.host}:{self.port}")
        await asyncio.shield(self._first_attempt)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until logged in (raises asyncio.TimeoutError)."""
        if self._connected_event is None:
            raise AmiNotConnected("AmiClient.start() was not called")
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        link = self._link
        if link is not None and self._connected:
            try:
                await self._send(link, {"Action": "Logoff"}, timeout=1)
            except AmiError:
                pass
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
            self._runner = None
        for sub in self._subscribers:
            sub.stop()

    # -- subscriptions ----------------------------------------------------------------------------------------
    def on_event(self, callback: EventCallback, names: Iterable[str] | None = None) -> Callable[[], None]:
        """Call `callback(event)` for every event (or those whose Event is in `names`); returns unsubscribe.

        Sync callbacks run in order as events arrive; async ones run in order on a task of their own. Events
        that belong to a pending list action (QueueStatus items ...) go to that action, not here.
        """
        sub = _Subscriber(callback, names)
        self._subscribers.append(sub)

        def unsubscribe() -> None:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
                sub.stop()
        return unsubscribe

    def on_connected(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call `callback()` (no arguments; sync or async) after every (re)login: resync state there."""
        self._on_connected.append(callback)

        def unsubscribe() -> None:
            if callback in self._on_connected:
                self._on_connected.remove(callback)
        return unsubscribe

    def on_disconnected(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call `callback()` (sync or async) whenever a logged-in link is lost (pending actions have failed)."""
        self._on_disconnected.append(callback)

        def unsubscribe() -> None:
            if callback in self._on_disconnected:
                self._on_disconnected.remove(callback)
        return unsubscribe

    def events(self, names: Iterable[str] | None = None, maxsize: int = 10000) -> "EventStream":
        """Events as an async iterator: `async with client.events({"Hangup"}) as stream: async for e in stream`."""
        return EventStream(self, names, maxsize)

    # -- actions ----------------------------------------------------------------------------------------------
    async def action(self, fields: dict[str, str], timeout: float | None = None) -> list[Message]:
        """Send one action; return [Response] or, for list actions, [Response, item events..., *Complete event].

        Raises AmiError for Response: Error (.response), AmiNotConnected, AmiLinkLost, AmiTimeout; ValueError for
        fields that cannot be sent (CR/LF inside, no Action).
        """
        link = self._link
        if link is None or not self._connected:
            raise AmiNotConnected(f"AMI link to {self.host}:{self.port} is down; {fields.get('Action')} not sent")
        return await self._send(link, fields, timeout if timeout is not None else self.action_timeout)

    async def _send(self, link: _Link, fields: dict[str, str], timeout: float) -> list[Message]:
        action_id = fields.get("ActionID") or next(self._ids)
        data = format_action(fields, action_id)
        name = fields["Action"]
        if action_id in link.pending:
            raise AmiError(f"ActionID {action_id} is already pending")
        future = asyncio.get_running_loop().create_future()
        link.pending[action_id] = _Pending(name, future)
        if name.lower() != "login":      # the Login fields hold the secret: never logged
            log.debug("ami.action_sent", action=name, action_id=action_id)
        try:
            link.writer.write(data)
            return await asyncio.wait_for(self._drain_and_wait(link, future), timeout)
        except asyncio.TimeoutError:
            raise AmiTimeout(f"no reply to {name} ({action_id}) within {timeout:g} s") from None
        except (ConnectionError, RuntimeError) as exc:
            raise AmiLinkLost(f"AMI link lost while sending {name} ({action_id}): {exc}") from None
        finally:
            link.pending.pop(action_id, None)

    @staticmethod
    async def _drain_and_wait(link: _Link, future: asyncio.Future) -> list[Message]:
        await link.writer.drain()
        return await future

    # -- the link ---------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            try:
                await self._connect_and_serve()
            except asyncio.CancelledError:
                raise
            except AmiAuthError as exc:
                log.error("ami.login_refused", host=self.host, port=self.port, user=self.username, reason=str(exc))
            except (OSError, AmiError, AmiFramingError, asyncio.TimeoutError) as exc:
                log.warning("ami.link_failed", host=self.host, port=self.port, error=repr(exc))
            finally:
                if self._first_attempt is not None and not self._first_attempt.done():
                    self._first_attempt.set_result(None)
            if self._closing:
                break
            failures = 1 if self._logged_in_last else failures + 1
            delay = backoff_delay(failures, self.reconnect_first_delay, self.reconnect_max_delay)
            log.info("ami.reconnect_scheduled", delay_seconds=delay, attempt=failures)
            await asyncio.sleep(delay)

    async def _connect_and_serve(self) -> None:
        self._logged_in_last = False
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout)
        link = _Link(writer)
        self._link = link
        reader_task = asyncio.get_running_loop().create_task(self._read(reader, link))
        pinger: asyncio.Task | None = None
        try:
            banner_wait = asyncio.ensure_future(link.banner.wait())
            await asyncio.wait({reader_task, banner_wait}, timeout=self.connect_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            banner_wait.cancel()
            if not link.banner.is_set():
                raise AmiError("no AMI banner from the server")
            try:
                await self._send(link, {"Action": "Login", "Username": self.username, "Secret": self.__secret,
                                        "Events": "on" if self._events_on else "off"}, self.action_timeout)
            except AmiError as exc:
                if exc.response is not None:
                    raise AmiAuthError(exc.response.get("Message", "login refused"), exc.response) from None
                raise
            self._connected = True
            self._logged_in_last = True
            self.logins += 1
            assert self._connected_event is not None
            self._connected_event.set()
            log.info("ami.connected", host=self.host, port=self.port, user=self.username, logins=self.logins)
            if self._first_attempt is not None and not self._first_attempt.done():
                self._first_attempt.set_result(None)
            for callback in list(self._on_connected):
                self._run_connected_callback(callback)
            pinger = asyncio.get_running_loop().create_task(self._ping(link))
            await reader_task
        finally:
            was_connected = self._connected
            self._connected = False
            if self._connected_event is not None:
                self._connected_event.clear()
            self._link = None
            for task in (pinger, reader_task):
                if task is not None and not task.done():
                    task.cancel()
            link.abort()
            reason = "client closed" if self._closing else "AMI link lost"
            link.fail_pending(lambda item, aid: (AmiNotConnected if self._closing else AmiLinkLost)(
                f"{reason} before the reply to {item.name} ({aid}); not re-sent"))
            if was_connected:
                log.warning("ami.disconnected", host=self.host, port=self.port, reason=reason)
                for callback in list(self._on_disconnected):
                    self._run_connected_callback(callback)

    async def _read(self, reader: asyncio.StreamReader, link: _Link) -> None:
        decoder = AmiDecoder()
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except AmiFramingError as exc:
                log.error("ami.bad_stream", error=str(exc))
                return
            if decoder.banner is not None:
                link.banner.set()
            for message in messages:
                self._route(link, message)

    def _route(self, link: _Link, message: Message) -> None:
        action_id = message.get("ActionID")
        pending = link.pending.get(action_id) if action_id else None
        if pending is not None and not pending.future.done():
            if "Response" in message and "Event" not in message and not pending.messages:
                pending.messages.append(message)
                if message["Response"].lower() == "error":
                    pending.future.set_exception(AmiError(message.get("Message", "Error"), message))
                elif message.get("EventList", "").lower() == "start":
                    pending.is_list = True
                else:
                    pending.future.set_result(pending.messages)
                return
            if "Event" in message and pending.is_list:
                pending.messages.append(message)
                if message.get("EventList", "").lower() == "complete":
                    pending.future.set_result(pending.messages)
                return
        if "Event" in message:
            self._dispatch(message)
        else:
            log.info("ami.unmatched_reply", action_id=action_id, response=message.get("Response"))

    def _dispatch(self, event: Message) -> None:
        for sub in list(self._subscribers):
            if sub.wants(event):
                sub.deliver(dict(event))

    def _run_connected_callback(self, callback: Callable[[], Any]) -> None:
        try:
            result = callback()
        except Exception:
            log.exception("ami.link_callback_failed", callback=_name(callback))
            return
        if inspect.isawaitable(result):
            _spawn(result, callback)

    async def _ping(self, link: _Link) -> None:
        """Keepalive that checks the answer: a half-open link (no RST, no reply) is dropped and re-established."""
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._send(link, {"Action": "Ping"}, self.ping_timeout)
            except AmiError as exc:
                log.warning("ami.ping_failed", host=self.host, port=self.port, error=str(exc))
                link.abort()
                return


class EventStream:
    """Async iterator over events (bounded queue; on overflow the oldest event is dropped and counted)."""

    def __init__(self, client: AmiClient, names: Iterable[str] | None, maxsize: int) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._unsubscribe = client.on_event(self._put, names)

    def _put(self, event: Message) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Message:
        return await asyncio.wait_for(self._queue.get(), timeout)

    def get_nowait(self) -> Message | None:
        return None if self._queue.empty() else self._queue.get_nowait()

    def close(self) -> None:
        self._unsubscribe()

    async def __aenter__(self) -> "EventStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Message:
        return await self._queue.get()
