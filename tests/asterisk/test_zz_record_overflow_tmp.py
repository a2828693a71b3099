"""One-off recorder (not kept): ami-queue-overflow.txt, the generated dialplan's HotlineQueueLeft on Asterisk 22."""
import asyncio
import re
import time

from tests.asterisk import harness
from tests.asterisk.harness import place_call
from tests.asterisk.test_queues import short_minors_overflow, MINORS_OVERFLOW

OUT = harness.ROOT / "tests" / "transcripts" / "ami-queue-overflow.txt"
END = re.compile(rb"\r\n\r\n")


class Recorder:
    def __init__(self, port):
        self.port, self.t0, self.parts, self.buf = port, None, [], b""
        self.events = []

    def mark(self, direction, data):
        self.parts.append(f"#@ {time.monotonic() - self.t0:.3f} {direction} {len(data)}\n".encode() + data)

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.t0 = time.monotonic()
        banner = await self.reader.readline()
        self.mark("A>C", banner)
        self.task = asyncio.create_task(self.read())

    async def read(self):
        while True:
            data = await self.reader.read(65536)
            if not data:
                self.mark("A>C", b"")
                return
            self.buf += data
            while (m := END.search(self.buf)):
                msg, self.buf = self.buf[:m.end()], self.buf[m.end():]
                self.mark("A>C", msg)
                self.events.append(msg)

    def send(self, text, shown=None):
        data = text.encode()
        self.writer.write(data)
        self.mark("C>A", (shown or text).encode())

    def note(self, text):
        self.mark("note", text.encode())
        self.parts[-1] += b"\n"

    async def wait(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while not any(re.search(needle, e) for e in self.events):
            if time.monotonic() > deadline:
                raise AssertionError(needle)
            await asyncio.sleep(0.05)


async def test_record(make_rig):
    rig = make_rig("queues-rec", edit_table=short_minors_overflow)
    rec = Recorder(rig.pbx.ami_port)
    await rec.open()
    secret = harness.TESTER_SECRET
    rec.send(f"Action: Login\r\nActionID: queue-overflow-1\r\nUsername: tester\r\nSecret: {secret}\r\nEvents: on\r\n\r\n",
             "Action: Login\r\nActionID: queue-overflow-1\r\nUsername: tester\r\nSecret: ********\r\nEvents: on\r\n\r\n")
    await rec.wait(rb"Authentication accepted")
    async with rig.ami() as ami:
        rec.send("Action: QueueAdd\r\nActionID: queue-overflow-2\r\nQueue: general-12345\r\nInterface: Local/ag1@test-agent/n\r\nMemberName: Agent ag1\r\n\r\n")
        await rec.wait(rb"QueueMemberAdded")
        rec.note("call 1: 12349, minors-protection has no members -> leave-empty -> general-12345, ag1 answers (stays 20 s); the tester hangs the caller's phone up after the answer")
        tag = await place_call(ami, "12349", caller="13800001349", tag="qo1")
        await rec.wait(rb"AgentConnect(.|\r\n)*Uniqueid: qo1", 30)
        await asyncio.sleep(1)
        rec.send("Action: Hangup\r\nActionID: queue-overflow-3\r\nChannel: /^Local/12349@hotline-from-carrier-.*;1$/\r\n\r\n")
        await rec.wait(rb"Event: Hangup\r\n(.|\r\n)*Uniqueid: qo1\r\n", 10)
        rec.send("Action: QueueRemove\r\nActionID: queue-overflow-4\r\nQueue: general-12345\r\nInterface: Local/ag1@test-agent/n\r\n\r\n")
        rec.send("Action: QueueAdd\r\nActionID: queue-overflow-5\r\nQueue: minors-protection\r\nInterface: Local/rr1@test-ringer/n\r\nMemberName: Ringer rr1\r\n\r\n")
        await rec.wait(rb"QueueMemberAdded(.|\r\n)*minors-protection", 5)
        rec.note(f"call 2: 12349, rr1 rings in minors-protection (overflow after {MINORS_OVERFLOW} s in this table copy) -> TIMEOUT -> general-12345 (no members, waits); the caller hangs up 2 s later")
        tag = await place_call(ami, "12349", caller="13800002349", tag="qo2")
        await rec.wait(rb"QueueCallerJoin(.|\r\n)*Uniqueid: qo2\r\n(.|\r\n)*Queue: general-12345", 40)
        await asyncio.sleep(2)
        rec.send("Action: Hangup\r\nActionID: queue-overflow-6\r\nChannel: /^Local/12349@hotline-from-carrier-.*;1$/\r\n\r\n")
        await rec.wait(rb"Event: Hangup\r\n(.|\r\n)*Uniqueid: qo2\r\n", 10)
        rec.send("Action: QueueRemove\r\nActionID: queue-overflow-7\r\nQueue: minors-protection\r\nInterface: Local/rr1@test-ringer/n\r\n\r\n")
        await asyncio.sleep(0.5)
        rec.send("Action: Logoff\r\nActionID: queue-overflow-8\r\n\r\n")
        await asyncio.wait_for(rec.task, 5)
    version = harness.run([str(harness.ASTERISK), "-V"]).stdout.strip()
    head = (f"# {version} (/opt/asterisk-22) | raw AMI TCP stream of the rig's PBX (user tester, read=all, Events: on; the driver's actions on the same connection) | scenario: queue-overflow\n"
            "# The project's generated dialplan with UserEvent(HotlineQueueLeft,...) after each Queue(); table copy with minors-protection overflow after_seconds 4.\n"
            "# Format: each chunk is preceded by a marker line '#@ <seconds> <dir> <nbytes>' and followed by the\n"
            "#   chunk's exact bytes (CRLF kept). dir: C>A = client -> Asterisk, A>C = Asterisk -> client,\n"
            "#   note = test-driver note (not on the wire). Only redaction: the Login Secret.\n"
            "#   A>C chunks are split at the blank line ending each AMI message; a 0-byte A>C chunk = EOF.\n")
    OUT.write_bytes(head.encode() + b"".join(rec.parts))
