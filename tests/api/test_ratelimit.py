"""The per-token rate limit is an exact moving window (a pinned clock, no waiting)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.api.ratelimit import MovingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_then_wait_then_allowed_again() -> None:
    clock = Clock()
    limiter = MovingWindowLimiter(3, 60, clock=clock)
    for _ in range(3):  # at 1000, 1001, 1002
        assert limiter.hit("t") is None
        clock.now += 1
    clock.now += 10
    assert limiter.hit("t") == pytest.approx(47)  # the oldest request leaves the window in 47 s
    assert limiter.hit("other") is None  # per key
    clock.now = 1060.5
    assert limiter.hit("t") is None  # the first one has left
    assert limiter.hit("t") == pytest.approx(0.5)  # the second is still in, for half a second


def test_a_burst_straddling_two_windows_is_still_limited() -> None:
    """A sliding-window *counter* lets this through; an exact moving window does not."""
    clock = Clock()
    limiter = MovingWindowLimiter(100, 60, clock=clock)
    clock.now = 59.0  # the end of one fixed window
    assert all(limiter.hit("t") is None for _ in range(100))
    clock.now = 61.0  # just into the next one
    assert limiter.hit("t") is not None


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 8),
    period=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=80),
)
def test_never_more_than_limit_in_any_window(limit: int, period: int, gaps: list[float]) -> None:
    """Against a brute-force oracle: a request is allowed exactly when fewer than `limit` allowed
    requests lie in the `period` seconds before it."""
    clock = Clock()
    limiter = MovingWindowLimiter(limit, period, clock=clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        in_window = [t for t in allowed if t > clock.now - period]
        expect = len(in_window) < limit
        assert (limiter.hit("k") is None) == expect
        if expect:
            allowed.append(clock.now)


def test_idle_keys_are_dropped_first_when_there_are_too_many() -> None:
    clock = Clock()
    limiter = MovingWindowLimiter(2, 60, max_keys=3, clock=clock)
    limiter.hit("old")
    clock.now += 120  # "old" has no request in its window any more
    for key in ("a", "b", "c"):
        limiter.hit(key)
    assert list(limiter._hits) == ["a", "b", "c"]
    limiter.hit("a")
    limiter.hit("a")
    limiter.hit("d")  # every key is active: the least recently used ("b") goes
    assert list(limiter._hits) == ["c", "a", "d"]
    assert limiter.hit("a") is not None  # a kept key keeps its count
