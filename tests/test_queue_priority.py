"""Priority queue (Decree 107/2021): `[queue] priority_every` = N calls one priority ticket after at most
N regular ones, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

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
