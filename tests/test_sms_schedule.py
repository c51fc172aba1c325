"""The gateway's scheduling helper, on a clock moved by hand."""
from __future__ import annotations

import pytest

from sms_gateway.schedule import Schedule


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_task_is_due_at_once_then_again_after_its_interval(clock: FakeClock) -> None:
    s = Schedule(clock)
    s.every("health", 60)
    assert s.due("health")
    s.done("health")
    assert not s.due("health") and s.wait_s("health") == 60
    clock.advance(59.9)
    assert not s.due("health")
    clock.advance(0.1)
    assert s.due("health") and s.wait_s("health") == 0


def test_a_task_can_wait_its_first_interval(clock: FakeClock) -> None:
    s = Schedule(clock)
    s.every("sweep", 300, first_after_s=300)
    assert not s.due("sweep")
    clock.advance(300)
    assert s.due("sweep")


def test_tasks_keep_their_own_intervals(clock: FakeClock) -> None:
    s = Schedule(clock)
    s.every("heartbeat", 10)
    s.every("balance", 3600)
    s.done("heartbeat")
    s.done("balance")
    clock.advance(10)
    assert s.due("heartbeat") and not s.due("balance")
    s.done("heartbeat")
    clock.advance(3590)
    assert s.due("balance") and s.due("heartbeat")


def test_a_task_pushed_back_once_returns_to_its_interval(clock: FakeClock) -> None:
    s = Schedule(clock)
    s.every("connect", 5)
    s.done("connect", again_after_s=40)  # backoff after a failed connect
    clock.advance(39)
    assert not s.due("connect") and s.wait_s("connect") == 1
    clock.advance(1)
    assert s.due("connect")
    s.done("connect")
    assert s.wait_s("connect") == 5


def test_a_task_made_due_now_runs_before_its_time(clock: FakeClock) -> None:
    s = Schedule(clock)
    s.every("health", 60)
    s.done("health")
    clock.advance(1)
    s.now("health")  # the modem was lost mid-send: look at it before the next notice
    assert s.due("health")


def test_an_unknown_task_is_an_error_not_silently_never_due(clock: FakeClock) -> None:
    s = Schedule(clock)
    with pytest.raises(KeyError):
        s.due("helth")
