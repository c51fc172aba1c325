"""Priority queue (Decree 107/2021): `[queue] priority_every` = N calls one priority ticket after at most
N regular ones, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from kiosk.queue import core

T0 = datetime(2026, 11, 17, 1, 0, tzinfo=timezone.utc)  # 08:00 in Hanoi


def _order(engine, cfg, arrivals: str) -> list[str]:
    """Take tickets in `arrivals` order ('R' regular, 'P' priority), then call them all at counter 1."""
    svc = core.services_at_counter(cfg, "1")[0].code
    names: dict[str, str] = {}
    with engine.begin() as conn:
        for i, kind in enumerate(arrivals):
            t = core.take_ticket(conn, cfg, svc, now=T0 + timedelta(minutes=i), priority=kind == "P")
            names[t.label] = f"{kind}{sum(1 for k in arrivals[:i + 1] if k == kind)}"
    called = []
    for i in range(len(arrivals)):
        with engine.begin() as conn:
            c = core.call_next(conn, cfg, "1", now=T0 + timedelta(hours=1, minutes=i))
        called.append(names[c.label])
    return called


@pytest.mark.parametrize(("every", "expected"), [
    (2, ["P1", "R1", "R2", "P2", "R3", "R4"]),
    (0, ["P1", "P2", "R1", "R2", "R3", "R4"]),
    (3, ["P1", "R1", "R2", "R3", "P2", "R4"]),
])
def test_call_next_applies_one_priority_ticket_every_n_regular(any_engine, make_config, every, expected):
    cfg = make_config(queue={"priority_every": every})
    assert _order(any_engine, cfg, "RRRRPP") == expected


def test_without_priority_tickets_the_queue_is_first_come_first_served(any_engine, make_config):
    cfg = make_config(queue={"priority_every": 2})
    assert _order(any_engine, cfg, "RRR") == ["R1", "R2", "R3"]


def test_the_display_marks_a_priority_call(any_engine, make_config):
    cfg = make_config(queue={"priority_every": 2})
    _order(any_engine, cfg, "RP")
    with any_engine.connect() as conn:
        state = core.display_state(conn, cfg, now=T0 + timedelta(hours=2))
    calls = [c for col in state["columns"] for c in col["calls"]]
    assert [c["priority"] for c in calls] == [False, True]  # newest first: R1 was called after P1



def _issue_then_call(engine, cfg, arrivals: str, served_first: int = 0) -> list[tuple[str, int, int]]:
    """At a frozen clock: take tickets in `arrivals` order ('R'/'P'); after the first `served_first`
    arrivals, call that many. Then call everyone. For each ticket taken: (kind, the "people ahead" it
    was told, how many of those who were waiting when it was taken were called before it)."""
    svc = core.services_at_counter(cfg, "1")[0].code
    issued, called = [], []
    with time_machine.travel(T0, tick=False):
        for i, kind in enumerate(arrivals):
            if i == served_first:
                for _ in range(served_first):
                    with engine.begin() as conn:
                        called.append(core.call_next(conn, cfg, "1", now=T0 + timedelta(minutes=i)).label)
            with engine.begin() as conn:
                t = core.take_ticket(conn, cfg, svc, now=T0 + timedelta(minutes=i), priority=kind == "P")
            issued.append((t.label, kind, t.waiting_ahead, len(called)))
        for i in range(len(arrivals)):
            with engine.begin() as conn:
                c = core.call_next(conn, cfg, "1", now=T0 + timedelta(hours=1, minutes=i))
            if c is not None:
                called.append(c.label)
    result = []
    for n, (label, kind, ahead, done) in enumerate(issued):
        waiting_then = {lb for lb, *_ in issued[:n]} - set(called[:done])
        result.append((kind, ahead, sum(1 for lb in called[done:called.index(label)] if lb in waiting_then)))
    return result


@pytest.mark.parametrize(("every", "arrivals", "served_first", "told"), [
    (2, "RRRRPPR", 0, [0, 1, 2, 3, 0, 3, 6]),  # P1 goes next; P2 after P1 and two regular calls
    (0, "RRRPP", 0, [0, 1, 2, 0, 1]),  # priority always first
    (2, "RRPRRP", 2, [0, 1, 0, 1, 2, 3]),  # two regular calls just made: P1 at once, P2 after two more
    (3, "PRRRRP", 1, [0, 0, 1, 2, 3, 3]),  # P1 was just called: P2 waits for three regular calls
])
def test_people_ahead_on_the_ticket_follows_the_counters_calling_order(any_engine, make_config, every, arrivals,
                                                                       served_first, told):
    cfg = make_config(queue={"priority_every": every})
    seen = _issue_then_call(any_engine, cfg, arrivals, served_first)
    assert [ahead for _k, ahead, _c in seen] == told
    assert all(ahead == really for _k, ahead, really in seen), seen  # as the counter then called them


def test_calling_order_is_the_rule_call_next_applies():
    # (id, priority), longest waiting first; history newest first
    waiting = [(1, False), (2, False), (3, True), (4, False), (5, True)]
    assert core.calling_order(waiting, [], 2) == [3, 1, 2, 5, 4]
    assert core.calling_order(waiting, [True], 2) == [1, 2, 3, 4, 5]  # a priority call just made
    assert core.calling_order(waiting, [], 0) == [3, 5, 1, 2, 4]
    assert core.calling_order([(1, False), (2, False)], [], 1) == [1, 2]
