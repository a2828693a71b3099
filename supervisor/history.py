"""Rolling in-memory history of each queue for the charts: waiting callers, longest wait, service level.

Pure: `sample(view)` appends one point per queue at the view's time; points older than `max_age` go.
`series()` thins long ranges to at most `max_points` per queue, keeping each bucket's worst value
(most waiting, longest wait) so a short peak is never averaged away.
"""
from __future__ import annotations

from collections import deque
from typing import Any

Point = tuple[float, int, int, float | None]  # time, waiting, longest wait (s), service level today (0..1)


class History:
    def __init__(self, max_age: float = 6 * 3600) -> None:
        self.max_age = max_age
        self._points: dict[tuple[str, str], deque[Point]] = {}

    def sample(self, view: dict[str, Any]) -> None:
        now = view["now"]
        for server in view["servers"]:
            for q in server["queues"]:
                points = self._points.setdefault((server["name"], q["name"]), deque())
                points.append((now, q["waiting"], q["longest_wait"], q["service_level"]))
        for points in self._points.values():
            while points and points[0][0] < now - self.max_age:
                points.popleft()

    def series(self, now: float, seconds: float, max_points: int = 360) -> list[dict[str, Any]]:
        earliest = min((p[0][0] for p in self._points.values() if p), default=now)
        since = max(now - seconds, earliest)  # buckets over the data there is, not the whole asked range
        width = max((now - since) / max_points, 1e-9)
        out = []
        for (server, queue), points in sorted(self._points.items()):
            buckets: dict[int, list[Any]] = {}
            for t, waiting, longest, sl in points:
                if t < since:
                    continue
                key = int((t - since) // width)
                b = buckets.get(key)
                if b is None:
                    buckets[key] = [t, waiting, longest, sl]
                else:
                    b[0], b[1], b[2] = t, max(b[1], waiting), max(b[2], longest)
                    b[3] = sl if sl is not None else b[3]
            out.append({"server": server, "queue": queue, "points": [buckets[k] for k in sorted(buckets)]})
        return out
