"""pjsip_hotline.conf: the table's trunks as PJSIP endpoints, with registration or IP identification.

Secrets are looked up by the variable name the table gives (Trunk.secret_env) in RenderOptions.secrets. A
missing one leaves a placeholder comment naming the variable; the value itself only ever appears on the
password line, and the file is then written mode 0600 by dialplan.render.
"""
from __future__ import annotations

import re

from dialplan.common import RenderError, comment_text, conf_value, header, join_lines
from dialplan.conftext import Section, document
from dialplan.facts import CARRIER, Facts
from dialplan.extensions import CTX_CARRIER
from dialplan.options import RenderOptions
from routing.checks import is_placeholder
from routing.model import Trunk

FILENAME = "pjsip_hotline.conf"
_ADDRESS = re.compile(r"^[A-Za-z0-9.:/\[\]-]+$")
_USER = re.compile(r"^[A-Za-z0-9._+-]+$")


def trunk_secret_names(facts: Facts) -> list[str]:
    names = set()
    for trunk in facts.table.trunks.values():
        if trunk.auth == "registration" and not trunk.secret_env:
            raise RenderError(f"trunk {trunk.id} registers but names no secret_env")
        if trunk.secret_env:
            names.add(trunk.secret_env)
    return sorted(names)


def render_pjsip(facts: Facts, options: RenderOptions) -> str:
    head = header(FILENAME, facts.table, "PJSIP trunks. Include it from pjsip.conf (which keeps the transports).")
    head += [
        ";",
        "; Mode 0600 when it holds a secret. Secrets come from the environment or the --secrets file, named by",
        "; the table's secret_env; never from the YAML. Section names: <trunk id> (endpoint), <id>-aor,",
        "; <id>-identify (IP authentication), <id>-auth and <id>-reg (registration).",
    ]
    sections: list[Section] = []
    trunks = sorted(facts.table.trunks.values(), key=lambda t: t.id)
    for trunk in trunks:
        sections.extend(_trunk(trunk, options, _sharing(trunk, trunks)))
    return join_lines(document(head, sections))


def _address(trunk: Trunk, value: str) -> str:
    if not _ADDRESS.match(value):
        raise RenderError(f"trunk {trunk.id}: {value!r} is not a host, address or network")
    return value


def _matches(trunk: Trunk) -> tuple[str, ...]:
    """Identify entries; placeholders (.invalid) are left out: Asterisk refuses to load an identify whose name
    does not resolve (an ERROR at every load), and a placeholder never will."""
    entries = trunk.match or ((trunk.host,) if trunk.auth == "ip" else ())
    return tuple(e for e in entries if not is_placeholder(e))


def _sharing(trunk: Trunk, trunks: list[Trunk]) -> list[str]:
    """Other trunks identified by the same addresses (e.g. one emergency gateway for 110/119/120/122)."""
    mine = set(_matches(trunk))
    return [t.id for t in trunks if t.id != trunk.id and mine & set(_matches(t))]


def _trunk(trunk: Trunk, options: RenderOptions, sharing: list[str]) -> list[Section]:
    host = _address(trunk, trunk.host)
    if not 0 < trunk.port < 65536:
        raise RenderError(f"trunk {trunk.id}: bad port {trunk.port}")
    uri_host = f"{host}:{trunk.port}"
    has_auth = bool(trunk.secret_env)
    username = trunk.username or trunk.id
    if not _USER.match(username):
        raise RenderError(f"trunk {trunk.id}: bad username {username!r}")

    endpoint = Section(trunk.id)
    endpoint.comment(comment_text(f"{trunk.name} ({trunk.kind}, {trunk.auth} authentication)"))
    endpoint.set("type", "endpoint")
    endpoint.set("transport", options.transport)
    # Calls arriving on any trunk start at the DID step: every number reaches the engine or fails open.
    endpoint.set("context", CTX_CARRIER)
    endpoint.set("disallow", "all")
    endpoint.set("allow", ",".join(options.codecs))
    endpoint.set("aors", f"{trunk.id}-aor")
    endpoint.set("direct_media", "no")
    endpoint.set("dtmf_mode", "rfc4733")
    endpoint.set("language", options.language)
    if trunk.kind != CARRIER:
        _caller_id(endpoint, trunk, username)
    if has_auth:
        endpoint.set("outbound_auth", f"{trunk.id}-auth")
    sections = [endpoint]

    placeholder = is_placeholder(host)
    aor = Section(f"{trunk.id}-aor")
    aor.set("type", "aor")
    if placeholder:
        # No contact: a Dial over this trunk fails at once (CHANUNAVAIL: fail-open, or the emergency
        # announcement) instead of Asterisk trying to resolve the name; no qualify, no registration.
        aor.comment(f"PLACEHOLDER host {host} (.invalid never resolves): no contact, identify or registration")
        aor.comment("until the table has the real address; `hotline routes check` warns about it.")
    else:
        aor.set("contact", f"sip:{uri_host}")
        aor.set("qualify_frequency", 30)
    sections.append(aor)

    if _matches(trunk):
        identify = Section(f"{trunk.id}-identify")
        if sharing:
            identify.comment(f"Same addresses as {', '.join(sharing)}: a call from there is matched to one of")
            identify.comment("these endpoints; all of them start in the same context, so it does not matter.")
        identify.set("type", "identify")
        identify.set("endpoint", trunk.id)
        for entry in _matches(trunk):
            identify.set("match", _address(trunk, entry))
        sections.append(identify)

    if has_auth:
        auth = Section(f"{trunk.id}-auth")
        auth.set("type", "auth")
        auth.set("auth_type", "userpass")
        auth.set("username", username)
        secret = options.secrets.get(trunk.secret_env or "")
        if secret:
            auth.set("password", conf_value(secret))
        else:
            auth.comment(f"SECRET MISSING: set {trunk.secret_env} in the environment or the --secrets file and "
                         "render again; until then this trunk cannot authenticate.")
        sections.append(auth)

    if trunk.auth == "registration" and not placeholder:
        reg = Section(f"{trunk.id}-reg")
        reg.set("type", "registration")
        reg.set("transport", options.transport)
        reg.set("outbound_auth", f"{trunk.id}-auth")
        reg.set("server_uri", f"sip:{uri_host}")
        reg.set("client_uri", f"sip:{username}@{uri_host}")
        reg.set("contact_user", username)
        reg.set("retry_interval", 60)
        reg.set("forbidden_retry_interval", 300)
        reg.set("max_retries", 10000)
        # line=yes: calls the far end sends to this registration are matched to the endpoint.
        reg.set("line", "yes")
        reg.set("endpoint", trunk.id)
        sections.append(reg)
    return sections


def _caller_id(endpoint: Section, trunk: Trunk, username: str) -> None:
    """The citizen's number towards the far end, as the trunk's caller_id says (recorded on Asterisk 22 in
    tests/transcripts/NOTES-2.md "Emergency INVITE"). res_pjsip builds From and PAI/RPID from the dialing
    channel's caller ID, which the dialplan keeps the citizen's (dialplan.extensions.caller_identity on legs)."""
    cid = trunk.identity
    withheld = "sent with Privacy: id" if cid.withheld == "send" else "hidden"
    endpoint.comment(f"caller ID: From {'the caller' if cid.from_user == 'caller' else username}, identity "
                     f"{cid.identity}, withheld numbers {withheld}")
    if cid.from_user == "trunk":
        endpoint.set("from_user", username)
    else:
        # From carries the caller; the Contact keeps the trunk's user (Asterisk would put "asterisk" there).
        endpoint.set("contact_user", username)
    if cid.identity == "pai":
        endpoint.set("send_pai", "yes")
    elif cid.identity == "rpid":
        endpoint.set("send_rpid", "yes")
    if cid.withheld == "send":
        # Without it a caller who withheld the number (CLIR) reaches the far end as Anonymous, number nowhere.
        endpoint.set("trust_id_outbound", "yes")
