"""Named periodic tasks on a monotonic clock: the gateway's "when is the next health check" timers.

The gateway's loop asks `due(name)` each turn and says `done(name)` when it ran a task; a task can
be pushed back by a different delay (reconnect backoff) or made due at once (`now`). The clock is
injected so tests move time by hand instead of sleeping.
"""
from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], float]


class Schedule:
    """Named tasks, each with its own interval and the monotonic time it is next due."""

    def __init__(self, clock: Clock = time.monotonic):
        self.clock = clock
        self._interval: dict[str, float] = {}
        self._due_at: dict[str, float] = {}

    def every(self, name: str, interval_s: float, *, first_after_s: float = 0.0) -> None:
        """Add a task run every `interval_s`; first due `first_after_s` from now (0: at once)."""
        self._interval[name] = interval_s
        self._due_at[name] = self.clock() + first_after_s

    def due(self, name: str) -> bool:
        return self.clock() >= self._due_at[name]

    def wait_s(self, name: str) -> float:
        """Seconds until the task is due (0 when it already is)."""
        return max(0.0, self._due_at[name] - self.clock())

    def done(self, name: str, *, again_after_s: float | None = None) -> None:
        """The task ran: next due after its interval, or after `again_after_s` this once."""
        delay = self._interval[name] if again_after_s is None else again_after_s
        self._due_at[name] = self.clock() + delay

    def now(self, name: str) -> None:
        """Make the task due at once (something happened that it must look at)."""
        self._due_at[name] = self.clock()
