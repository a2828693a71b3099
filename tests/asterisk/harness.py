"""A real Asterisk 22 for integration tests: our rendered config, a real `hotline serve`, a scriptable far end.

Layout of one test set-up (all on loopback, every port picked free at start, so several run at once):

    caller (AMI Originate of Local/<DID>@hotline-from-carrier)  ->  PBX Asterisk (our *_hotline.conf)
        -> FastAGI -> `hotline serve` (a subprocess; SIGSTOP/SIGCONT to stall it)
        -> trunks (every table trunk host rewritten to 127.0.0.2:<port>) -> far-end Asterisk

The far end answers each dialed number as the test asks (`FarEnd.behave("12348", "answer")`: answer, ring,
busy, congestion) and stores the SIP headers of each INVITE (From, PAI, RPID, Privacy, Contact) it receives in its astdb (`FarEnd.invite(...)`).
Queue members are Local channels into [test-agent] (answer at once, stay for ${AGENT_STAY} s) or
[test-ringer] (ring, never answer).

Nothing here decides behaviour: it only starts real processes and reports what Asterisk did.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "asterisk-22"
PREFIX = Path(os.environ.get("HOTLINE_TEST_ASTERISK", "/opt/asterisk-22"))
ASTERISK = PREFIX / "sbin" / "asterisk"
DATA = PREFIX / "var" / "lib" / "asterisk"
TESTER_SECRET = "testerSecret1"
AMI_SECRET = "hotlineAmiSecret1"
SILENCE_MS = 200                      # every test prompt: 0.2 s of silence (format_sln: 8 kHz, 16-bit)

_addresses = itertools.count(2)


def available() -> str | None:
    """None when a usable Asterisk 22 is installed, else why not (one line)."""
    if not ASTERISK.exists():
        return (f"no Asterisk 22 at {PREFIX}: run ../shared/asterisk-22/install.sh, or set HOTLINE_TEST_ASTERISK "
                "to the prefix of an Asterisk 22 install")
    return None


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------------------------- Asterisk


COMMON_EMPTY = ("acl", "ccss", "cdr", "cel", "cli_aliases", "pjproject", "pjsip_notify", "pjsip_wizard",
                "res_config_sqlite3", "res_http_media_cache", "res_stun_monitor", "udptl", "confbridge",
                "res_parking", "indications")


@dataclass
class Asterisk:
    """One Asterisk process on its own config dir and ports."""
    confdir: Path
    ami_port: int
    sip_host: str
    sip_port: int
    pid: int | None = None

    @classmethod
    def prepare(cls, confdir: Path, sip_host: str = "127.0.0.1", sounds: Path | None = None) -> "Asterisk":
        confdir.mkdir(parents=True, exist_ok=True)
        pbx = cls(confdir, free_port(), sip_host, free_port(socket.SOCK_DGRAM, sip_host))
        pbx._write_base(sounds)
        return pbx

    def _write_base(self, sounds: Path | None) -> None:
        c = self.confdir
        data = c / "data"
        (data / "sounds").mkdir(parents=True, exist_ok=True)
        for name in ("moh", "documentation", "keys", "static-http"):
            if (DATA / name).exists() and not (data / name).exists():
                (data / name).symlink_to(DATA / name)
        if (DATA / "sounds" / "en").exists() and not (data / "sounds" / "en").exists():
            (data / "sounds" / "en").symlink_to(DATA / "sounds" / "en")
        if sounds is not None and not (data / "sounds" / "hotline").exists():
            (data / "sounds" / "hotline").symlink_to(sounds)
        run_dir = Path("/tmp") / f"ast-{os.getpid()}-{self.ami_port}"
        run_dir.mkdir(exist_ok=True)
        for sub in ("log", "spool", "db", "lib", "keys"):
            (c / "var" / sub).mkdir(parents=True, exist_ok=True)
        (c / "asterisk.conf").write_text(f"""[directories]
astetcdir => {c}
astmoddir => {PREFIX}/lib/asterisk/modules
astdatadir => {data}
astvarlibdir => {c}/var/lib
astdbdir => {c}/var/db
astkeydir => {c}/var
astagidir => {c}/agi-bin
astspooldir => {c}/var/spool
astrundir => {run_dir}
astlogdir => {c}/var/log
astsbindir => {PREFIX}/sbin
[options]
verbose = 3
timestamp = yes
hideconnect = yes
nocolor = yes
defaultlanguage = zh
documentation_language = en_US
""")
        for name in COMMON_EMPTY:
            (c / f"{name}.conf").touch()
        (c / "modules.conf").write_text("[modules]\nautoload=yes\nnoload => pbx_dundi.so\nnoload => pbx_ael.so\n"
                                        "noload => res_adsi.so\nnoload => cdr_csv.so\n")
        (c / "logger.conf").write_text("[general]\ndateformat=%F %T.%3q\n[logfiles]\n"
                                       "full => notice,warning,error,verbose,dtmf\nmessages => notice,warning,error\n")
        (c / "musiconhold.conf").write_text("[default]\nmode=files\ndirectory=moh\n")
        (c / "rtp.conf").write_text(f"[general]\nrtpstart={20000 + (self.ami_port % 400) * 20}\n"
                                    f"rtpend={20000 + (self.ami_port % 400) * 20 + 19}\n")

    def write(self, name: str, text: str) -> None:
        (self.confdir / name).write_text(text)

    def start(self) -> None:
        log = open(self.confdir / "var" / "log" / "console.log", "ab")
        proc = subprocess.Popen([str(ASTERISK), "-f", "-C", str(self.confdir / "asterisk.conf")],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.pid = proc.pid
        self._proc = proc
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"asterisk exited at start: {self.tail('console.log')}")
            out = self.cli("core waitfullybooted", timeout=5, check=False)
            if "fully booted" in out:
                return
            time.sleep(0.1)
        raise RuntimeError(f"asterisk not booted in 30 s: {self.tail('console.log')}")

    def cli(self, command: str, timeout: float = 10, check: bool = True) -> str:
        try:
            res = run([str(ASTERISK), "-C", str(self.confdir / "asterisk.conf"), "-rx", command], timeout=timeout)
        except subprocess.TimeoutExpired:
            if check:
                raise
            return ""
        if check and res.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r}: {res.stderr or res.stdout}")
        return res.stdout

    def tail(self, log: str = "full", lines: int = 60) -> str:
        path = self.confdir / "var" / "log" / log
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def log_text(self, log: str = "full") -> str:
        path = self.confdir / "var" / "log" / log
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.pid is None:
            return
        self.cli("core stop now", timeout=5, check=False)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self.pid = None


# ---------------------------------------------------------------------------------------------- AMI tester


class Ami:
    """A plain AMI connection as user `tester` (read=all): actions and every event, each with its arrival time."""

    def __init__(self, port: int, username: str = "tester", secret: str = TESTER_SECRET) -> None:
        self.port, self.username, self.secret = port, username, secret
        self.events: list[dict[str, str]] = []
        self._replies: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def connect(self) -> "Ami":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.reader.readline()  # banner
        self._task = asyncio.create_task(self._read())
        reply = await self.action("Login", Username=self.username, Secret=self.secret, Events="on")
        if reply.get("Response") != "Success":
            raise RuntimeError(f"AMI login as {self.username} refused: {reply}")
        return self

    async def _read(self) -> None:
        block: dict[str, str] = {}
        while True:
            raw = await self.reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                key, _, value = line.partition(":")
                block.setdefault(key.strip(), value.strip())
                continue
            if not block:
                continue
            block["_t"] = f"{time.monotonic():.6f}"
            if "Response" in block and block.get("ActionID") in self._replies:
                fut = self._replies.pop(block["ActionID"])
                if not fut.done():
                    fut.set_result(block)
            elif "Event" in block:
                self.events.append(block)
                self._changed.set()
            block = {}

    async def action(self, name: str, timeout: float = 10, **fields: str) -> dict[str, str]:
        action_id = f"t{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._replies[action_id] = fut
        text = f"Action: {name}\r\nActionID: {action_id}\r\n"
        for key, value in fields.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                text += f"{key}: {item}\r\n"
        self.writer.write((text + "\r\n").encode())
        await self.writer.drain()
        return await asyncio.wait_for(fut, timeout)

    def find(self, event: str, **match: str) -> list[dict[str, str]]:
        return [e for e in self.events if e.get("Event") == event
                and all(re.fullmatch(v, e.get(k, "")) for k, v in match.items())]

    async def wait(self, event: str, timeout: float = 10, count: int = 1, **match: str) -> dict[str, str]:
        """The count-th event of that name whose fields fullmatch the given regexes."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(event, **match)
            if len(found) >= count:
                return found[count - 1]
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("Event") for e in self.events[-30:]]
                raise AssertionError(f"no {event} {match} within {timeout} s; last events: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def getvar(self, channel: str, variable: str) -> str:
        return (await self.action("Getvar", Channel=channel, Variable=variable)).get("Value", "")

    async def __aenter__(self) -> "Ami":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.action("Logoff", timeout=2)
        except Exception:
            pass
        self._task.cancel()
        self.writer.close()


# ---------------------------------------------------------------------------------------------- the engine


LOG_BATCH_WAIT = 0.3       # scripts.logsetup.BatchedLines writes info lines within 0.1 s; warnings at once


@dataclass
class Engine:
    """`hotline serve` as a subprocess on its own port, records in its own SQLite file."""
    workdir: Path
    table: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"agi://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.workdir / 'records.sqlite3'}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_ROUTING_TABLE=str(self.table),
                    HOTLINE_DB_URL=self.db_url, HOTLINE_SPOOL_DIR=str(self.workdir / "spool"),
                    HOTLINE_CALLER_HASH_KEY="test-key", **self.extra_env)

    def start(self) -> "Engine":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "engine.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.hotline", "--log-format", "json", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--pid-file", str(self.workdir / "hotline.pid"), "--no-web",
             "--drain-timeout", "2", "--allow-test-clock", *self.args],
            cwd=ROOT, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hotline serve exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"hotline serve not listening: {self.log()}")

    def log(self) -> str:
        """Its log so far: after the 0.1 s within which `hotline serve` writes its batched info lines."""
        time.sleep(LOG_BATCH_WAIT)
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stall(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------- config


def silent_prompts(directory: Path, names: Iterable[str], ms: int = SILENCE_MS) -> Path:
    """Every prompt as a short silent .sln file under directory (which stands for sounds/hotline)."""
    frames = b"\0\0" * (8 * ms)
    for name in names:
        if not name.startswith("hotline/"):
            continue
        path = directory / (name[len("hotline/"):] + ".sln")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(frames)
    return directory


def prompt_names() -> list[str]:
    names = []
    for line in (ROOT / "conf" / "prompts.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            names.append(line.split("|", 1)[0].strip())
    return names


def table_with_far_end(source: Path, dest: Path, host: str, port: int,
                       edit: Callable[[str], str] | None = None) -> Path:
    """A copy of the routing table whose trunks all lead to the far end (host:port); `edit` may change more of
    the text. Edited as text, not re-dumped: the admin's YAML (1.2 scalars, comments) stays as it is."""
    out, kind = [], None
    for line in source.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\s+)(kind|host|match):\s*(.*)$", line)
        if m and m.group(2) == "kind":
            kind = m.group(3).strip()
        elif m and m.group(2) == "host":
            if kind == "carrier":
                line = f"{m.group(1)}host: 127.0.0.1"
            else:
                line = f"{m.group(1)}host: {host}\n{m.group(1)}port: {port}"
        elif m and m.group(2) == "match":
            line = f"{m.group(1)}match: [{'127.0.0.1' if kind == 'carrier' else host}]"
        out.append(line)
    text = "\n".join(out) + "\n"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(edit(text) if edit else text, encoding="utf-8")
    return dest


TEST_CONTEXTS = """
[test-caller]
; the caller's phone (;1 half): presses ${DTMF} after ${DTMF_DELAY} s (if any), then stays on the line
exten => s,1,Wait(${IF($[${LEN(${DTMF_DELAY})} > 0]?${DTMF_DELAY}:1)})
 same => n,ExecIf($[${LEN(${DTMF})} > 0]?SendDTMF(${DTMF}))
 same => n,Wait(${IF($[${LEN(${STAY})} > 0]?${STAY}:30)})
 same => n,Hangup()

[test-agent]
; a queue member that answers at once and stays ${AGENT_STAY} s (default 20)
exten => _ag.,1,Answer()
 same => n,Wait(20)
 same => n,Hangup()

[test-ringer]
; a queue member that rings and never answers
exten => _rr.,1,Ringing()
 same => n,Wait(600)
"""


SWITCH_PIN = "86420"          # the override switches' phone PIN in every rig (extensions_hotline_switches.conf)


def pbx_config(pbx: Asterisk, engines: list[str], table: Path, extra_extensions: str = "",
               extra_pjsip: str = "", render_args: Iterable[str] = (), strict: bool = True) -> str:
    """Our rendered *_hotline.conf plus the admin's own files, as the README tells an admin to write them.
    Returns what the render printed on stderr (its warnings). `strict=False`: render without --strict, e.g. the
    shipped table with its placeholder hosts."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOTLINE_AMI_SECRET=AMI_SECRET,
               TRUNK_SEAT_12348_SECRET="seat12348pw", TRUNK_SEAT_12333_SECRET="seat12333pw",
               HOTLINE_SWITCH_PIN=SWITCH_PIN)
    agi = ["--agi", engines[0]] if len(engines) == 1 else ["--agi-hosts", ",".join(engines)]
    res = run([sys.executable, "-m", "scripts.hotline", "dialplan", "render", "--table", str(table),
               "--out", str(pbx.confdir), *agi, *(["--strict"] if strict else []), *render_args], cwd=ROOT, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"dialplan render failed: {res.stdout}{res.stderr}")
    pbx.write("manager.conf", f"""[general]
enabled=yes
bindaddr=127.0.0.1
port={pbx.ami_port}
[tester]
secret={TESTER_SECRET}
deny=0.0.0.0/0.0.0.0
permit=127.0.0.1/255.255.255.255
read=all
write=all
#include manager_hotline.conf
""")
    pbx.write("pjsip.conf", f"""[transport-udp]
type=transport
protocol=udp
bind={pbx.sip_host}:{pbx.sip_port}
#include pjsip_hotline.conf
{extra_pjsip}
""")
    pbx.write("queues.conf", "[general]\npersistentmembers=no\nautofill=yes\n#include queues_hotline.conf\n")
    pbx.write("queuerules.conf", "#include queuerules_hotline.conf\n")
    pbx.write("features.conf", "#include features_hotline.conf\n")
    pbx.write("extensions.conf", "[general]\nstatic=yes\nwriteprotect=yes\nclearglobalvars=no\n[globals]\n"
                                 f"#include extensions_hotline.conf\n{TEST_CONTEXTS}\n{extra_extensions}\n")
    return res.stderr


FAR_END_EXTENSIONS = """
[farend]
; Each dialed number behaves as DB(behave/<number>) says (default answer); the INVITE's headers are kept.
exten => _X.,1,Set(DB(invite/${EXTEN}/from)=${PJSIP_HEADER(read,From)})
 same => n,Set(DB(invite/${EXTEN}/pai)=${PJSIP_HEADER(read,P-Asserted-Identity)})
 same => n,Set(DB(invite/${EXTEN}/rpid)=${PJSIP_HEADER(read,Remote-Party-ID)})
 same => n,Set(DB(invite/${EXTEN}/privacy)=${PJSIP_HEADER(read,Privacy)})
 same => n,Set(DB(invite/${EXTEN}/contact)=${PJSIP_HEADER(read,Contact)})
 same => n,Set(DB(invite/${EXTEN}/callerid)=${CALLERID(num)})
 same => n,Set(DB(invite/${EXTEN}/count)=${MATH(${IF($[${LEN(${DB(invite/${EXTEN}/count)})} > 0]?${DB(invite/${EXTEN}/count)}:0)}+1,i)})
 same => n,Set(B=${DB(behave/${EXTEN})})
 same => n,GotoIf($["${B}" = "ring"]?ring)
 same => n,GotoIf($["${B}" = "busy"]?busy)
 same => n,GotoIf($["${B}" = "congestion"]?congestion)
 same => n,Answer()
 same => n,Wait(${IF($[${LEN(${DB(stay/${EXTEN})})} > 0]?${DB(stay/${EXTEN})}:60)})
 same => n,Hangup()
 same => n(ring),Ringing()
 same => n,Wait(600)
 same => n(busy),Busy(5)
 same => n(congestion),Congestion(5)
"""


@dataclass
class FarEnd:
    """A second Asterisk standing for every trunk's far end (seats, sub-centers, emergency gateway)."""
    pbx: Asterisk

    @classmethod
    def start_new(cls, confdir: Path, pbx_host: str = "127.0.0.1") -> "FarEnd":
        host = f"127.0.0.{2 + (next(_addresses) * 7 + os.getpid()) % 250}"
        far = Asterisk.prepare(confdir, sip_host=host)
        far.write("manager.conf", f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nport={far.ami_port}\n"
                                  f"[tester]\nsecret={TESTER_SECRET}\npermit=127.0.0.1/255.255.255.255\n"
                                  "read=all\nwrite=all\n")
        far.write("pjsip.conf", f"""[transport-udp]
type=transport
protocol=udp
bind={host}:{far.sip_port}
[pbx]
type=endpoint
transport=transport-udp
context=farend
disallow=all
allow=alaw,ulaw
direct_media=no
aors=pbx
[pbx]
type=aor
[pbx-identify]
type=identify
endpoint=pbx
match={pbx_host}
""")
        far.write("extensions.conf", f"[general]\nstatic=yes\nwriteprotect=yes\n{FAR_END_EXTENSIONS}\n")
        far.start()
        return cls(far)

    @property
    def host(self) -> str:
        return self.pbx.sip_host

    @property
    def port(self) -> int:
        return self.pbx.sip_port

    def behave(self, number: str, how: str, stay: int | None = None) -> None:
        self.pbx.cli(f"database put behave {number} {how}")
        if stay is not None:
            self.pbx.cli(f"database put stay {number} {stay}")

    def invite(self, number: str) -> dict[str, str]:
        out = self.pbx.cli(f"database show invite/{number}")
        fields = {}
        for line in out.splitlines():
            m = re.match(rf"/invite/{re.escape(number)}/(\w+)\s*:\s?(.*)$", line.strip())
            if m:
                fields[m.group(1)] = m.group(2).strip()
        return fields

    def forget(self) -> None:
        self.pbx.cli("database deltree invite", check=False)

    def stop(self) -> None:
        self.pbx.stop()


# ---------------------------------------------------------------------------------------------- calls


async def place_call(ami: Ami, did: str, caller: str = "13800138000", dtmf: str = "", *, name: str = "",
                     dtmf_delay: float | None = None, stay: int = 30, variables: dict[str, str] | None = None,
                     tag: str | None = None) -> str:
    """Originate a caller to a DID; returns the tag whose channels are ph<tag> (;1; Asterisk matches ids by prefix) and <tag> (;2, the caller
    in the dialplan and queues)."""
    tag = tag or f"c{time.monotonic_ns() % 10**12}"
    var = [f"DTMF={dtmf}", f"STAY={stay}"]
    if dtmf_delay is not None:
        var.append(f"DTMF_DELAY={dtmf_delay}")
    for key, value in (variables or {}).items():
        var.append(f"__{key}={value}" if not key.startswith("_") else f"{key}={value}")
    reply = await ami.action("Originate", Channel=f"Local/{did}@hotline-from-carrier/n", Context="test-caller",
                             Exten="s", Priority="1", CallerID=f'"{name}" <{caller}>' if name else caller,
                             Async="true", ChannelId=f"ph{tag}", OtherChannelId=tag, Variable=var)
    if reply.get("Response") != "Success":
        raise RuntimeError(f"Originate refused: {reply}")
    return tag


async def channel_of(ami: Ami, uniqueid: str, timeout: float = 10) -> str:
    return (await ami.wait("Newchannel", timeout=timeout, Uniqueid=re.escape(uniqueid)))["Channel"]


async def vars_after_engine(ami: Ami, uniqueid: str, timeout: float = 15) -> dict[str, str]:
    """The HOTLINE_* values the caller's channel had when the dialplan read the engine's answer (VarSet events)."""
    await ami.wait("Newexten", timeout=timeout, Uniqueid=re.escape(uniqueid), Application="NoOp",
                   AppData="engine answered.*")
    values: dict[str, str] = {}
    for e in ami.find("VarSet", Uniqueid=re.escape(uniqueid)):
        values[e.get("Variable", "")] = e.get("Value", "")
    return values
