"""The API's per-token rate limit: an exact moving window, kept in this process.

At most `limit` requests in any `period` seconds per key. Each key keeps the times of its last
`limit` requests in a ring (`deque(maxlen=limit)`): a request is allowed when the ring is not full
or its oldest entry has left the window — O(1) per request, no background task and no thread.

Hand-written on purpose (README, "Choices"): the `limits` library's asyncio moving window schedules
an expiry task that hops to a thread on nearly every request, and its sliding-window *counter*
estimates the previous window's share, so a burst straddling two windows gets through. `limits`
still parses the rate (`600/minute`).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class MovingWindowLimiter:
    def __init__(
        self, limit: int, period_s: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a rate limit needs at least 1 request per a positive period")
        self.limit, self.period, self.max_keys, self.clock = limit, period_s, max_keys, clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str) -> float | None:
        """Count a request of `key`: None when allowed, else the seconds until one is allowed."""
        now = self.clock()
        ring = self._hits.get(key)
        if ring is None:
            ring = self._hits[key] = deque(maxlen=self.limit)
            if len(self._hits) > self.max_keys:
                self._evict(now)
        else:
            self._hits.move_to_end(key)
        if len(ring) == self.limit and ring[0] > now - self.period:
            return ring[0] + self.period - now  # refused requests are not counted
        ring.append(now)
        return None

    def _evict(self, now: float) -> None:
        """Drop keys whose window is empty (least recently used first); if every key is active,
        the least recently used one."""
        for key in list(self._hits):
            if len(self._hits) <= self.max_keys:
                return
            ring = self._hits[key]
            if ring and ring[-1] > now - self.period:
                break
            del self._hits[key]
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)
