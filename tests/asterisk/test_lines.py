"""Every number of the shipped table (conf/routing.yaml) with its category's behaviour, on the real Asterisk.

All calls run at once on one rig (distinct callers, so the abuse rate limit never counts them together), each
pinned to a test instant with the HOTLINE_AT channel variable (the rig's engine runs --allow-test-clock), then
each case checks what Asterisk saw: the AGI commands the engine ran (what the caller heard), the HOTLINE_*
variables when the dialplan read the engine's answer, the caller name the queue shows, and where the call went
(QueueCallerJoin, or the Dial to the trunk and what the far end got). `hotline routes explain NUMBER --at ...`
prints the same decisions.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest

from records.schema import calls
from routing.loader import load_table
from tests.asterisk.harness import ROOT
from tests.asterisk.scenario import Script, dial_ends, hang_up, records, run_all

NOW = "2026-12-02T10:00"          # a Wednesday, a working day, inside office hours: every seat is open
EVENING = "2026-12-02T20:00"      # expert seats closed (office hours end at 18:00)
WINDOW = "2021-09-10T10:00"       # inside the cancelled lines' two-month transition (2021-09-01..2021-10-31)
MERGED = "hotline/number-merged-into-12345"
CANCELLED = "hotline/number-cancelled-dial-12345"
GENERAL = "general-12345"


@dataclass(frozen=True)
class Case:
    did: str
    category: str
    tags: str
    queue: str | None = GENERAL          # the queue the caller joins first (None: dialed to a trunk)
    trunk: str | None = None
    prompts: tuple[str, ...] = ()        # announcements before any menu
    at: str = NOW
    keys: tuple[str, ...] = ()
    menu: str | None = None              # the menu prompt the caller hears (zh)
    path: str = ""
    line: str | None = None              # HOTLINE_LINE; default the DID
    rule: str | None = None              # HOTLINE_RULE; default <did>/<category>@2021-09-01

    @property
    def expected_line(self) -> str:
        return self.line or self.did

    @property
    def expected_rule(self) -> str:
        return self.rule or f"{self.did}/{self.category}@2021-09-01"


CANCELLED_LINES = {"12396": "science-technology", "12336": "natural-resources", "12312": "commerce",
                   "12301": "tourism", "12300": "telecom", "12356": "line-12356", "96119": "fire-safety",
                   "12322": "earthquake"}

CASES: dict[str, Case] = {}
for number, tag in CANCELLED_LINES.items():
    CASES[f"{number}-after-transition"] = Case(number, "cancelled", tag, prompts=(CANCELLED,))
    CASES[f"{number}-in-transition"] = Case(number, "cancelled", tag, prompts=(MERGED,), at=WINDOW)
CASES.update({
    # 12349 is cancelled into the minors-protection line inside 12345: its own queue and announcement
    "12349-after-transition": Case("12349", "cancelled", "minors-protection", queue="minors-protection",
                                   prompts=("hotline/minors-protection-now-12345",)),
    "12349-in-transition": Case("12349", "cancelled", "minors-protection", queue="minors-protection",
                                prompts=(MERGED,), at=WINDOW),
    # the window's edges, through the test clock: its last minute, the first after it, the day before the rule
    "12396-last-minute-of-transition": Case("12396", "cancelled", "science-technology", prompts=(MERGED,),
                                            at="2021-10-31T23:59"),
    "12396-first-minute-after": Case("12396", "cancelled", "science-technology", prompts=(CANCELLED,),
                                     at="2021-11-01T00:00"),
    "12396-before-its-rule": Case("12396", "unknown", "unknown-line", prompts=("hotline/welcome-12345",),
                                  at="2021-08-31T23:59", rule="unknown-number"),
    # dual numbers: the number stays and lands in 12345, tagged with its service
    "12318": Case("12318", "dual", "culture-market"),
    "12317": Case("12317", "dual", "rural-revitalisation"),
    "12367": Case("12367", "dual", "immigration"),
    # expert seats: 12320 through its menu (key 1: the expert seat), 12329 straight in; closed: on to 12345
    "12320-key-1": Case("12320", "expert", "health+expert", queue="expert-12320", keys=("1",),
                        menu="hotline/zh/expert-12320-menu", path="expert-12320>1"),
    "12320-key-2": Case("12320", "expert", "health", keys=("2",), menu="hotline/zh/expert-12320-menu",
                        path="expert-12320>2"),
    "12320-closed": Case("12320", "expert", "health", at=EVENING),
    "12329": Case("12329", "expert", "housing-fund", queue="expert-12329"),
    "12329-closed": Case("12329", "expert", "housing-fund", at=EVENING),
    # retained seats: 12345 answers (the agent warm-transfers when needed)
    "12348": Case("12348", "retained_seat", "legal"),
    "12333": Case("12333", "retained_seat", "social-security"),
    # sub-centers: their menu; 1 general question, 2 specialist question (both answered by 12345 first)
    "12360-key-2": Case("12360", "subcenter", "customs+specialist", keys=("2",),
                        menu="hotline/zh/subcenter-menu", path="subcenter>2"),
    "12366-key-1": Case("12366", "subcenter", "tax", keys=("1",), menu="hotline/zh/subcenter-menu",
                        path="subcenter>1"),
    "12305-key-2": Case("12305", "subcenter", "postal+specialist", keys=("2",),
                        menu="hotline/zh/subcenter-menu", path="subcenter>2"),
    # the unified line and a number the table does not know
    "12345-key-1": Case("12345", "unified", "general", keys=("1",), menu="hotline/zh/main-menu", path="main>1",
                        rule="12345-unified"),
    "unknown-number": Case("99999", "unknown", "unknown-line", prompts=("hotline/welcome-12345",), line="12345",
                           rule="unknown-number"),
})
for number in ("110", "119", "120", "122"):
    CASES[number] = Case(number, "emergency_linkage", "emergency", queue=None, trunk=f"emergency-{number}",
                         rule=f"{number}/emergency_linkage")
    CASES[f"{number}-evening"] = Case(number, "emergency_linkage", "emergency", queue=None,
                                      trunk=f"emergency-{number}", rule=f"{number}/emergency_linkage", at=EVENING)


@pytest.fixture(scope="module")
def rig(make_rig):
    return make_rig("cov-lines")


@pytest.fixture(scope="module")
def placed(rig):
    """Every case at once; returns (results by case, far-end INVITE counts before and after, call records)."""
    emergency = sorted({c.did for c in CASES.values() if c.trunk})
    for number in emergency:
        rig.far_end.behave(number, "answer", stay=60)   # the far end is shared: another module may have changed it
    before = {n: int(rig.far_end.invite(n).get("count") or 0) for n in emergency}

    async def go():
        async with rig.ami() as ami:
            scripts = {name: Script(c.did, at=c.at, keys=c.keys, caller=f"1390000{i:04d}")
                       for i, (name, c) in enumerate(CASES.items())}
            results = await run_all(ami, scripts, "ln")
            for name, r in results.items():
                if CASES[name].trunk and r.dials:      # the far end's answer follows the DialBegin
                    await ami.wait("DialEnd", Uniqueid=re.escape(r.tag), timeout=10)
            ends = {name: dial_ends(ami, r.tag) for name, r in results.items()}
            await hang_up(ami, results)
            return results, ends

    results, ends = asyncio.run(go())
    after = {n: int(rig.far_end.invite(n).get("count") or 0) for n in emergency}
    return results, ends, before, after


def test_every_line_of_the_shipped_table_has_a_case():
    table = load_table(ROOT / "conf" / "routing.yaml")
    assert set(table.lines) - {c.did for c in CASES.values()} == set()


@pytest.mark.parametrize("name", list(CASES))
def test_line(name, placed):
    results, _, _, _ = placed
    case, got = CASES[name], results[name]
    assert not got.error, got.error
    v = got.vars
    assert "HOTLINE_FAILOPEN" not in v, f"failed open: {v.get('HOTLINE_FAILOPEN')}"
    # the engine read the test instant first (the cases differ only by it)
    assert got.commands[0] == "GET VARIABLE HOTLINE_AT"
    assert v.get("HOTLINE_LINE") == case.expected_line
    assert v.get("HOTLINE_TAGS") == case.tags
    assert v.get("HOTLINE_RULE") == case.expected_rule
    assert v.get("HOTLINE_IVR_PATH", "") == case.path
    if case.trunk:
        # emergency: dialed at once, nothing played, never answered by us, never queued, any hour
        assert (v.get("HOTLINE_ACTION"), v.get("HOTLINE_TARGET")) == ("dial", case.trunk)
        assert all(c.startswith(("GET VARIABLE", "SET VARIABLE")) for c in got.commands), got.commands
        assert got.joins == []
        assert [d["DestChannel"].rsplit("-", 1)[0] for d in got.dials] == [f"PJSIP/{case.trunk}"]
        assert got.dials[0]["CallerIDName"] == f"[{case.did}] Zhang"
        assert float(got.dials[0]["_t"]) - got.agi_started < 3, "the trunk was not dialed at once"
        return
    assert (v.get("HOTLINE_ACTION"), v.get("HOTLINE_TARGET")) == ("queue", case.queue)
    assert got.commands[1] == "ANSWER"
    heard = got.sounds()
    assert heard[:len(case.prompts)] == list(case.prompts), heard
    if case.menu:
        assert case.menu in heard
    else:
        assert heard == list(case.prompts)
    assert got.joins, "the caller joined no queue"
    first = got.joins[0]
    assert first["Queue"] == case.queue
    # the old line as context for the agent: the caller name the queue shows
    assert first["CallerIDName"] == f"[{case.expected_line}] Zhang"


@pytest.mark.parametrize("number", ["110", "119", "120", "122"])
def test_emergency_far_end_answered(number, placed):
    _, ends, before, after = placed
    tried = [name for name, c in CASES.items() if c.did == number]
    # the far end counts INVITEs per number with a read-modify-write in its dialplan: two calls to one number
    # at the same instant may count once, so the count proves it got the calls, the DialEnds how many answered
    assert after[number] > before[number]
    for name in tried:
        assert [e["DialStatus"] for e in ends[name]] == ["ANSWER"]


def test_records_name_line_category_and_rule(rig, placed):
    results, _, _, _ = placed
    rows = records(rig.engine.db_url, calls, [r.tag for r in results.values()])
    wrong = {}
    for name, case in CASES.items():
        row = rows.get(results[name].tag)
        got = (row["line"], row["category"], row["rule_id"], row["tags"]) if row else None
        want = (case.expected_line, case.category, case.expected_rule, case.tags)
        if got != want:
            wrong[name] = (got, want)
    assert wrong == {}


# ------------------------------------------------------------------------------------------ the abuse rule
LISTED = "13911112222"
REPEATER = "13933334444"


def abuse_table(text: str) -> str:
    """The shipped abuse rule with one listed caller and a limit of 1 call an hour (the shipped one is 20)."""
    listed = f'  listed:\n    - {{number: "{LISTED}", reason: "test listing", until: 2030-01-01}}\n'
    assert "  listed: []\n  max_calls: 20\n" in text
    return text.replace("  listed: []\n  max_calls: 20\n", listed + "  max_calls: 1\n")


@pytest.fixture(scope="module")
def abuse_rig(make_rig):
    return make_rig("cov-abuse", edit_table=abuse_table)


async def test_abuse_rule_queues_listed_and_repeat_callers_for_review_but_never_emergency_calls(abuse_rig):
    rig = abuse_rig
    rig.far_end.behave("110", "answer", stay=60)
    async with rig.ami() as ami:
        listed = await run_all(ami, {"listed-12396": Script("12396", at=NOW, caller=LISTED),
                                     "listed-110": Script("110", at=NOW, caller=LISTED)}, "ab")
        # the limit counts the caller's recorded calls, so these go one after the other, each recorded first
        repeated = {}
        for minute, did in enumerate(("12318", "12318", "12318", "110")):
            name = f"repeat-{minute}-{did}"
            result = (await run_all(ami, {name: Script(did, at=f"2026-12-02T10:0{minute}", caller=REPEATER)},
                                    "ar"))[name]
            records(rig.engine.db_url, calls, [result.tag])
            repeated[name] = result
        await hang_up(ami, {**listed, **repeated})

    def where(result):
        assert not result.error, result.error
        return (result.vars.get("HOTLINE_RULE"), result.vars.get("HOTLINE_ACTION"), result.vars.get("HOTLINE_TARGET"),
                result.vars.get("HOTLINE_TAGS"), result.sounds(),
                result.joins[0]["Queue"] if result.joins else result.dials[0]["DestChannel"].rsplit("-", 1)[0])

    review = ["hotline/abuse-warning"]
    assert where(listed["listed-12396"]) == ("abuse", "queue", "abuse-review", "science-technology+abuse", review,
                                             "abuse-review")
    assert where(listed["listed-110"]) == ("110/emergency_linkage", "dial", "emergency-110", "emergency", [],
                                           "PJSIP/emergency-110")
    dual = ("12318/dual@2021-09-01", "queue", "general-12345", "culture-market", [], "general-12345")
    assert [where(r) for r in repeated.values()] == [
        dual, dual,
        ("abuse", "queue", "abuse-review", "culture-market+abuse", review, "abuse-review"),
        ("110/emergency_linkage", "dial", "emergency-110", "emergency", [], "PJSIP/emergency-110")]
