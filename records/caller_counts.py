"""Recent calls per caller, in memory: what the abuse rule's rate limit reads, with no SQL on the call path.

Pure: every instant is passed in (POSIX seconds), nothing here reads a clock, a file or a database. The
recorder (records.recorder.CallRecorder) notes each call of this engine at its arrival and merges, in its
background refresh, the calls other engines sharing the database recorded; a call is counted once, by its
uniqueid, whichever way it came. Callers are known by their keyed hash only (routing.privacy.caller_hash).

Window, as the SQL count it replaces: the calls of this caller with arrived_at in [at - minutes, at], this
call itself not included. Memory is bounded: calls older than the longest window asked for (`keep_minutes`)
before the newest instant seen are dropped, and at most `max_callers` callers and `max_calls` calls are
kept; past either cap the callers heard from least recently are forgotten first (a caller with hundreds of
calls in the window has long tripped any sensible limit; a forgotten one counts from zero again).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from operator import itemgetter
from typing import Iterable

_AT = itemgetter(0)

MAX_CALLERS = 100_000        # a busy day's distinct callers of a city hotline, several times over
MAX_CALLS = 200_000          # calls kept in all (some 50 MB at most): far more than an hour of a busy hotline


class CallerCounts:
    def __init__(self, keep_minutes: int = 60, *, max_callers: int = MAX_CALLERS, max_calls: int = MAX_CALLS) -> None:
        self.keep_minutes = keep_minutes
        self._max_callers = max_callers
        self._max_calls = max_calls
        self._calls: OrderedDict[str, list[tuple[float, str]]] = OrderedDict()   # least recently heard first
        self._seen: dict[str, str] = {}          # uniqueid -> caller hash, of every call kept
        self._newest = float("-inf")             # the newest arrival seen: what "old" is measured from

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def callers(self) -> int:
        return len(self._calls)

    def widen(self, minutes: int) -> bool:
        """Keep calls for at least `minutes` (a reloaded table's longer window). True if the window grew: the
        calls between the old and the new edge are not in memory, the recorder reads them again."""
        if minutes <= self.keep_minutes:
            return False
        self.keep_minutes = minutes
        return True

    def count(self, digest: str, at: float, minutes: int, *, exclude: str | None = None) -> int:
        calls = self._calls.get(digest)
        if not calls:
            return 0
        lo, hi = bisect_left(calls, at - minutes * 60, key=_AT), bisect_right(calls, at, key=_AT)
        n = hi - lo
        if exclude is not None and self._seen.get(exclude) == digest:
            n -= sum(1 for _, uid in calls[lo:hi] if uid == exclude)
        return n

    def arrive(self, digest: str, uniqueid: str | None, at: float, minutes: int) -> int:
        """This caller's earlier calls in [at - minutes, at]; then this call is noted (once per uniqueid; a call
        without one is never recorded, so it never counts either)."""
        self.widen(minutes)
        if at > self._newest:
            self._newest = at
        calls = self._calls.get(digest)
        if calls:
            self._drop_old(digest, calls)
        earlier = self.count(digest, at, minutes, exclude=uniqueid)
        if uniqueid:
            self.add(uniqueid, digest, at)
        return earlier

    def add(self, uniqueid: str, digest: str, at: float) -> bool:
        """Note one call (ours at its arrival, or another engine's from SQL); False if it was known or too old."""
        if uniqueid in self._seen:
            return False
        if at > self._newest:
            self._newest = at
        if at < self._horizon():
            return False
        calls = self._calls.get(digest)
        if calls is None:
            calls = self._calls[digest] = []
        else:
            self._calls.move_to_end(digest)
        insort(calls, (at, uniqueid), key=_AT)
        self._seen[uniqueid] = digest
        self._drop_old(digest, calls)
        self._bound()
        return True

    def merge(self, rows: Iterable[tuple[str, str, float]]) -> int:
        """(uniqueid, caller hash, arrival) rows read from SQL; returns how many were new."""
        return sum(1 for uniqueid, digest, at in rows if self.add(uniqueid, digest, at))

    def prune(self, now: float) -> None:
        """Forget what is older than the window before `now` (or the newest arrival, if later): from the callers
        heard from least recently, as long as theirs are all old; the others drop theirs when they call again."""
        if now > self._newest:
            self._newest = now
        horizon = self._horizon()
        while self._calls:
            digest, calls = next(iter(self._calls.items()))
            if calls[-1][0] >= horizon:
                self._drop_old(digest, calls)
                break
            self._forget(digest)

    def _horizon(self) -> float:
        return self._newest - self.keep_minutes * 60

    def _drop_old(self, digest: str, calls: list[tuple[float, str]]) -> None:
        cut = bisect_left(calls, self._horizon(), key=_AT)
        if cut:
            for _, uid in calls[:cut]:
                self._seen.pop(uid, None)
            del calls[:cut]
        if not calls:
            del self._calls[digest]

    def _forget(self, digest: str) -> None:
        for _, uid in self._calls.pop(digest):
            self._seen.pop(uid, None)

    def _bound(self) -> None:
        while self._calls and (len(self._calls) > self._max_callers or len(self._seen) > self._max_calls):
            self._forget(next(iter(self._calls)))
