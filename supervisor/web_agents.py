"""The agents panel of the supervisors' view: log an agent of conf/agents.yaml in to or out of its queues.

The same membership the phone codes give (dialplan/agents.py): one AMI QueueAdd per queue of the agent, with
the penalty its skills give (routing.agents.Roster.member_penalty), its name and state interface; QueueRemove
to log out. app_queue stores dynamic members added over AMI in the astdb like AddQueueMember's
(persistentmembers=yes), so a login from here survives an Asterisk restart too. Logging in needs the `add`
permission, logging out `remove` (supervisor and admin roles); each is one audit entry (agent_login /
agent_logout) with the agent, the server and the queues it changed. The live view sees QueueMemberAdded /
Removed as for any member; this panel reads the same live state.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from routing.agents import Agent, AgentsError, Roster, default_agents_path, load_agents
from routing.loader import TableError, load_table
from routing.model import RoutingTable
from scripts.settings import CONF_DIR
from supervisor import i18n
from supervisor.names import localised
from supervisor.auth import User
from supervisor.hub import SupervisorHub

log = structlog.get_logger(__name__)
KINDS = {"login": "add", "logout": "remove"}        # what the user's role must allow
_NUMBER = re.compile(r"^[0-9]{2,8}$")


class RosterSource:
    """The table and agents file beside it, read again when either file changes (mtime)."""

    def __init__(self, table_path: str | Path | None = None) -> None:
        self.table_path = Path(table_path or os.environ.get("HOTLINE_ROUTING_TABLE") or CONF_DIR / "routing.yaml")
        self._key: tuple | None = None
        self._value: tuple[RoutingTable | None, Roster | None, str] = (None, None, "")

    def get(self) -> tuple[RoutingTable | None, Roster | None, str]:
        agents_path = default_agents_path(self.table_path)
        key = tuple(p.stat().st_mtime_ns if p and p.exists() else None for p in (self.table_path, agents_path))
        if key != self._key:
            self._key, self._value = key, self._load(agents_path)
        return self._value

    def _load(self, agents_path: Path | None) -> tuple[RoutingTable | None, Roster | None, str]:
        if agents_path is None:
            return None, None, ""
        try:
            table = load_table(self.table_path)
            return table, load_agents(agents_path, table), ""
        except (TableError, AgentsError) as exc:
            log.warning("supervisor.agents_file_invalid", problems=[str(p) for p in exc.problems][:5])
            return None, None, str(exc.problems[0]) if exc.problems else "invalid"


def agents_view(hub: SupervisorHub, table: RoutingTable | None, roster: Roster | None, user: User,
                lang: str = i18n.DEFAULT_LANGUAGE) -> dict:
    """Every agent with its queues (names from the table) and, per server, which of them it is logged in to."""
    servers = sorted(hub.state.servers)
    agents = []
    for agent in roster.agents if roster else ():
        queues = [{"id": q, "name": localised(table.queues[q].name, lang) if table and q in table.queues else q,
                   "penalty": roster.member_penalty(agent, q)} for q, _ in agent.queues]
        logged = {s: [q for q, _ in agent.queues if _member(hub, s, q, agent) is not None] for s in servers}
        agents.append({"number": agent.number, "name": agent.name, "interface": agent.interface,
                       "skills": list(agent.skills), "queues": queues, "logged_in": logged})
    return {"servers": servers, "agents": agents,
            "may": {kind: user.may(permission) for kind, permission in KINDS.items()}}


def _member(hub: SupervisorHub, server: str, queue: str, agent: Agent) -> Any:
    known = hub.state.servers.get(server)
    found = known.queues.get(queue) if known else None
    return found.members.get(agent.interface) if found else None


def plan(kind: str, hub: SupervisorHub, roster: Roster, agent: Agent, server: str) -> list[dict[str, str]]:
    """The AMI actions that bring `agent` to logged in (or out) on `server`; queues already so are left alone."""
    actions = []
    for queue, _ in agent.queues:
        present = _member(hub, server, queue, agent) is not None
        if kind == "login" and not present:
            fields = {"Action": "QueueAdd", "Queue": queue, "Interface": agent.interface,
                      "Penalty": str(roster.member_penalty(agent, queue)), "MemberName": agent.name,
                      "Paused": "false"}
            if agent.state_interface:
                fields["StateInterface"] = agent.state_interface
            actions.append(fields)
        elif kind == "logout" and present:
            actions.append({"Action": "QueueRemove", "Queue": queue, "Interface": agent.interface})
    return actions


async def perform(hub: SupervisorHub, source: RosterSource, user: User, kind: str, number: str, server: str,
                  lang: str) -> tuple[int, dict[str, Any]]:
    table, roster, _ = source.get()
    agent = roster.find(number) if roster and _NUMBER.match(number) else None
    name = agent.name if agent else number[:16]
    if kind not in KINDS or not user.may(KINDS.get(kind, "")):
        return 403, {"ok": False, "message": i18n.text("agents.not_allowed", lang, role=user.role)}
    if agent is None:
        return 404, {"ok": False, "message": i18n.text("agents.unknown_agent", lang, agent=number[:16])}
    if server not in hub.state.servers or server not in hub.clients:
        return 400, {"ok": False, "message": i18n.text("agents.unknown_server", lang, server=server[:40])}
    done, failed = [], []
    for fields in plan(kind, hub, roster, agent, server):
        try:
            await hub.clients[server].action(fields)
            done.append(fields["Queue"])
        except Exception as exc:        # the AMI error (e.g. "Unable to add interface to queue"): shown as is
            failed.append((fields["Queue"], str(exc)[:120]))
    names = lambda ids: "、".join(localised(table.queues[q].name, lang) if table and q in table.queues else q  # noqa: E731
                                 for q in ids)
    if failed:
        queue, reason = failed[0]
        message = i18n.text("agents.failed", lang, agent=name, queue=names([queue]), reason=reason)
    elif done:
        message = i18n.text(f"agents.done_{kind}", lang, agent=name, queues=names(done))
    else:
        message = i18n.text("agents.nothing_to_do", lang, agent=name)
    result = {"ok": not failed, "message": message, "queues": done}
    if hub.audit is not None:
        hub.audit.record(at=hub.clock(), user=user.name, role=user.role, action=f"agent_{kind}",
                         params={"server": server, "agent": agent.number, "interface": agent.interface,
                                 "queues": ",".join(done), "failed": ",".join(q for q, _ in failed)},
                         result="ok" if not failed else "error", message=i18n.text(
                             f"agents.done_{kind}", "en", agent=agent.name, queues=",".join(done))
                         if not failed else failed[0][1])
    log.info("supervisor.agent_action", user=user.name, action=kind, agent=agent.number, server=server,
             queues=done, failed=[q for q, _ in failed])
    return (200 if not failed else 502), result


def routes(hub: SupervisorHub, *, current_user: Callable[[Request], User | None],
           read_form: Callable[[Request], Awaitable[dict[str, str] | None]],
           csrf_ok: Callable[[Request, Mapping[str, str]], bool], source: RosterSource | None = None) -> list[Route]:
    """The panel's routes, mounted by supervisor.web.create_app (which owns sessions and CSRF)."""
    source = source or RosterSource()

    async def api_agents(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        lang = i18n.request_language(request)
        table, roster, problem = source.get()
        body = agents_view(hub, table, roster, user, lang)
        body.update(lang=lang, problem=problem,
                    texts={k: v for k, v in i18n.messages_for(lang).items() if k.startswith("agents.")})
        return JSONResponse(body)

    async def api_agent_action(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        form = await read_form(request)
        if form is None:
            return JSONResponse({"ok": False, "message": "unreadable request"}, status_code=400)
        if not csrf_ok(request, form):
            return JSONResponse({"ok": False, "message": "CSRF token missing or wrong"}, status_code=403)
        servers = sorted(hub.state.servers)
        server = form.get("server") or (servers[0] if len(servers) == 1 else "")
        status, result = await perform(hub, source, user, request.path_params["kind"],
                                       request.path_params["number"], server, i18n.request_language(request))
        return JSONResponse(result, status_code=status)

    return [Route("/api/agents", api_agents),
            Route("/api/agents/{number}/{kind}", api_agent_action, methods=["POST"])]
