"""`hotline ami ping` and `hotline transfer KIND CHANNEL LINE`: the AMI link and transfers from a desk script.

CHANNEL is the agent's channel (as CoreShowChannels shows it); the caller is the other party in its bridge
(or --caller). LINE is the call's legacy line (HOTLINE_LINE): its routing rule says which transfers it offers.
Exit codes: 0 answered, 1 failed (or AMI unreachable, unknown channel), 2 usage, 3 nobody answered (caller kept
or returned to the agent).
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone

import click

from ivr.ami.client import AmiClient, AmiError
from ivr.ami.framing import Message
from records.types import TransferOutcome
from routing.model import TransferKind
from scripts.settings import load_settings

KINDS = {"warm": TransferKind.ATTENDED, "threeway": TransferKind.THREE_WAY, "handover": TransferKind.HANDOVER,
         "escalate": TransferKind.ESCALATE}
EXIT = {TransferOutcome.ANSWERED: 0, TransferOutcome.FAILED: 1, TransferOutcome.RETURNED: 3,
        TransferOutcome.NO_ANSWER: 3}


def _client(settings, timeout: float) -> AmiClient:
    try:
        return AmiClient.from_settings(settings, action_timeout=timeout, connect_timeout=timeout,
                                       reconnect_max_delay=2)
    except AmiError as exc:
        raise click.ClickException(str(exc)) from None


async def _connect(settings, timeout: float) -> AmiClient:
    client = _client(settings, timeout)
    await client.start()
    if not client.connected:
        await client.close()
        raise click.ClickException(f"cannot log in to AMI at {settings.ami_host}:{settings.ami_port} as "
                                   f"{settings.ami_user} (see the log above)")
    return client


@click.group()
def ami() -> None:
    """The AMI link to Asterisk."""


@ami.command()
@click.option("--timeout", default=5.0, show_default=True, help="Seconds for connect, login and the Ping.")
def ping(timeout: float) -> None:
    """Connect with the settings (HOTLINE_AMI_*), log in, Ping, print the result."""
    settings = load_settings()

    async def run() -> Message:
        client = await _connect(settings, timeout)
        try:
            return (await client.action({"Action": "Ping"}))[0]
        finally:
            await client.close()
    try:
        reply = asyncio.run(run())
    except AmiError as exc:
        raise click.ClickException(f"Ping failed: {exc}") from None
    click.echo(f"AMI {settings.ami_host}:{settings.ami_port}: {reply.get('Ping', reply.get('Response'))} "
               f"(Asterisk time {reply.get('Timestamp', '?')})")


async def _find_call(client: AmiClient, channel: str, caller: str | None) -> tuple[Message, Message]:
    """The agent's channel and the caller's, from CoreShowChannels (the caller shares the agent's bridge)."""
    listing = [m for m in await client.action({"Action": "CoreShowChannels"}) if m.get("Event") == "CoreShowChannel"]
    by_name = {m["Channel"]: m for m in listing}
    if channel not in by_name:
        raise click.ClickException(f"no such channel: {channel}")
    agent = by_name[channel]
    if caller is not None:
        if caller not in by_name:
            raise click.ClickException(f"no such caller channel: {caller}")
        return agent, by_name[caller]
    peers = [m for m in listing if m["Channel"] != channel and agent.get("BridgeId")
             and m.get("BridgeId") == agent["BridgeId"]]
    if len(peers) != 1:
        raise click.ClickException(f"{channel} is not in a two-party call; name the caller with --caller")
    return agent, peers[0]


def _switches_on(settings, now: datetime) -> frozenset[str]:
    """The override switches on now (records.switches); none when the records cannot be read."""
    try:
        from records.switches import SwitchStore
        return SwitchStore.for_url(settings.db_url).snapshot().active_names(now)
    except Exception as exc:
        click.echo(f"note: override switches unknown ({type(exc).__name__}); transferring as the table says",
                   err=True)
        return frozenset()


@click.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("channel")
@click.argument("line")
@click.option("--caller", "caller_channel", help="The caller's channel (default: the agent's bridge peer).")
@click.option("--target", help="Trunk or queue id when the line offers several (e.g. emergency-119).")
@click.option("--first-line", default="12345", show_default=True, help="The line that took the call first.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds for each AMI action.")
@click.option("--record/--no-record", default=True, show_default=True, help="Write the TransferRecord.")
def transfer(kind: str, channel: str, line: str, caller_channel: str | None, target: str | None, first_line: str,
             timeout: float, record: bool) -> None:
    """Transfer the call of agent CHANNEL (legacy LINE): warm | threeway | handover | escalate."""
    from ivr.ami.transfers import TransferDriver, request_from_route, work_order_after
    from routing.decide import decide
    from routing.loader import TableError, load_table

    settings = load_settings()
    try:
        table = load_table(settings.routing_table)
    except TableError as exc:
        raise click.ClickException(f"routing table {settings.routing_table}: {exc}") from None
    now = datetime.now(timezone.utc)
    route = decide(table, line, None, now, switches=_switches_on(settings, now))   # e.g. a sub-center down
    recorder = _recorder(settings) if record else None

    async def run():
        client = await _connect(settings, timeout)
        try:
            agent, caller = await _find_call(client, channel, caller_channel)
            try:
                request = request_from_route(route, table, KINDS[kind], uniqueid=caller["Uniqueid"],
                                             caller_channel=caller["Channel"], agent_channel=agent["Channel"],
                                             agent=agent["Channel"], target=target,
                                             linkedid=caller.get("Linkedid") or None)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            request = replace(request, first_line=first_line)
            driver = TransferDriver(client)        # recorded below, once a work order (if any) has its number
            result = await driver.run(request)
            return result, driver.last_machine
        finally:
            await client.close()
    try:
        result, machine = asyncio.run(run())
        for step in machine.log:
            click.echo(f"  {step}")
        outcome = result.outcome or TransferOutcome.FAILED
        click.echo(f"{kind} transfer of {channel} ({line} -> {result.target_trunk or result.target_queue}): "
                   f"{outcome.value}{'' if recorder else ' (not recorded)'}")
        follow_up = work_order_after(route, KINDS[kind], outcome, target)
        if follow_up is not None:
            number = _dispatch_work_order(settings, table, route, result, follow_up, agent=channel)
            result = replace(result, work_order=number)        # the record names the order it led to
        if recorder is not None:
            try:
                recorder.record_transfer(result)
            except Exception as exc:   # the transfer happened: say so, never fail it for the records
                click.echo(f"warning: transfer not recorded ({type(exc).__name__}: {exc})", err=True)
    finally:
        if recorder is not None:
            recorder.flush()
            recorder.close()
    raise SystemExit(EXIT.get(outcome, 1))


def _dispatch_work_order(settings, table, route, result, option, *, agent: str) -> str | None:
    """Nobody at the sub-center answered: the table says the matter goes to it as a work order instead."""
    from records import workorders
    from records.db import make_engine, upgrade

    engine = make_engine(settings.db_url)
    try:
        upgrade(engine)
        order = workorders.dispatch(
            engine, line=route.line, category=route.category.value, target=result.target_trunk or "",
            department=option.department, uniqueid=result.uniqueid, dispatched_by=agent,
            summary=f"{route.line}: transfer to {result.target_trunk} not answered",
            at=datetime.now(timezone.utc), calendar=next(iter(table.calendars.values())), tz=table.timezone)
    except Exception as exc:  # the agent still has the caller: say so plainly, the order can be made by hand
        click.echo(f"warning: work order not dispatched ({type(exc).__name__}: {exc}); "
                   "use `hotline workorders dispatch`", err=True)
        return None
    finally:
        engine.dispose()
    click.echo(f"work order {order.number} dispatched to {option.department}, to be signed by "
               f"{order.sign_deadline.astimezone(table.timezone):%Y-%m-%d %H:%M}")
    return order.number


def _recorder(settings):
    try:
        from records.keys import key_from_settings
        from records.recorder import CallRecorder
        return CallRecorder(settings.db_url, settings.spool_dir, key_from_settings(settings), count_callers=False)
    except Exception as exc:           # a transfer is never refused because records are unavailable
        click.echo(f"warning: records unavailable ({type(exc).__name__}: {exc}); the transfer is not recorded",
                   err=True)
        return None
