"""Queue numbering, daily reset at local midnight, counters calling tickets, and the wait estimate,
on SQLite and a real PostgreSQL server."""
from __future__ import annotations

import threading
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from kiosk.queue import core
from kiosk.queue.schema import queue_tickets
from motcua.config import ConfigError, load_config

# Ticket numbers restart at local midnight; waits are estimated from the clock.
pytestmark = pytest.mark.clock

UTC = timezone.utc


@pytest.fixture
def still_clock():
    """The clock stands still for the test, so a test begun a second before midnight ends on the same day."""
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def _cfg(engine):
    url = engine.url.render_as_string(hide_password=False)
    return load_config(None, {"database": {"url": url}, "paths": {"data_dir": "/tmp/unused-motcua"}})


def test_default_services_have_prefixes_and_counters(config):
    services = core.list_services(config)
    assert [s.name_vi for s in services] == ["Hộ tịch - Chứng thực", "Đất đai", "Lao động - Thương binh và Xã hội"]
    assert len({s.prefix for s in services}) == 3 and all(s.counters for s in services)
    assert core.get_service(config, "a").code == core.get_service(config, "HT").code == "HT"
    with pytest.raises(LookupError):
        core.get_service(config, "Z9")


def test_numbers_are_consecutive_per_service_and_reset_at_local_midnight(any_engine):
    cfg = _cfg(any_engine)
    # 23:59 on 1 Dec in Hanoi is 16:59 UTC; 00:00 on 2 Dec is 17:00 UTC.
    before = datetime(2025, 12, 1, 16, 59, 0, tzinfo=UTC)
    after = datetime(2025, 12, 1, 17, 0, 0, tzinfo=UTC)
    with any_engine.begin() as conn:
        a = [core.take_ticket(conn, cfg, "HT", now=before) for _ in range(3)]
        b = core.take_ticket(conn, cfg, "DD", now=before)
        late = core.take_ticket(conn, cfg, "HT", now=after)
    assert [t.label for t in a] == ["A001", "A002", "A003"]
    assert b.label == "B001"
    assert [t.waiting_ahead for t in a] == [0, 1, 2]
    assert late.label == "A001" and late.day.isoformat() == "2025-12-02" and late.waiting_ahead == 0
    assert a[0].day.isoformat() == "2025-12-01"


def test_unknown_service_is_a_lookup_error(any_engine):
    with any_engine.begin() as conn, pytest.raises(LookupError):
        core.take_ticket(conn, _cfg(any_engine), "NOPE")


def test_threads_taking_numbers_at_once_get_distinct_consecutive_numbers(any_engine, still_clock):
    cfg = _cfg(any_engine)
    labels: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def take() -> None:
        try:
            start.wait()
            for _ in range(3):
                with any_engine.begin() as conn:
                    labels.append(core.take_ticket(conn, cfg, "LD").label)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(labels) == [f"C{n:03d}" for n in range(1, 37)]


def test_counter_calls_oldest_first_recalls_skips_and_transfers(any_engine, still_clock):
    cfg = _cfg(any_engine)
    now = datetime.now(UTC)
    day_start = datetime.combine(core.local_day(cfg, now), time(0), ZoneInfo(cfg.site.timezone))
    t0 = max(now - timedelta(seconds=3), day_start)  # today's tickets, even when run just after midnight
    with any_engine.begin() as conn:
        a1 = core.take_ticket(conn, cfg, "HT", now=t0)
        b1 = core.take_ticket(conn, cfg, "DD", now=t0 + timedelta(seconds=1))
        a2 = core.take_ticket(conn, cfg, "HT", now=t0 + timedelta(seconds=2))
    with any_engine.begin() as conn:
        first = core.call_next(conn, cfg, "1")
        second = core.call_next(conn, cfg, "2")  # counter 2 also serves HT: the next one, not the same
    assert (first.label, second.label) == (a1.label, a2.label)
    with any_engine.begin() as conn:
        again = core.recall(conn, cfg, "1")
        assert again.call_count == 2
        moved = core.transfer(conn, cfg, "1", "DD")  # a1 belongs at the land counter
        assert moved.service_code == "DD" and moved.transferred_from == "HT"
        with pytest.raises(core.QueueError):
            core.recall(conn, cfg, "1")  # counter 1 has nobody now
    with any_engine.begin() as conn:
        # At the land counter the transferred ticket goes first: it was taken before B001.
        land = core.call_next(conn, cfg, "3")
        assert land.label == a1.label
        land2 = core.call_next(conn, cfg, "3")  # finishes A001, calls B001
        assert land2.label == b1.label
        skipped = core.skip(conn, cfg, "3")
        assert skipped.label == b1.label
        assert core.call_next(conn, cfg, "3") is None
        with pytest.raises(LookupError):
            core.call_next(conn, cfg, "99")
    with any_engine.connect() as conn:
        states = dict(conn.execute(sa.select(queue_tickets.c.label, queue_tickets.c.state)).all())
        display = core.display_state(conn, cfg, after=0)
    assert states == {a1.label: "done", a2.label: "called", b1.label: "skipped"}
    land_col = next(c for c in display["columns"] if c["code"] == "DD")
    assert [c["label"] for c in land_col["calls"]] == [b1.label, a1.label]
    assert land_col["calls"][0]["counter"] == "3"
    # every call and the recall are announced once, in order
    announced = [(a["label"], a["counter"], a["recall"]) for a in display["announce"]]
    assert announced[:3] == [(a1.label, "1", False), (a2.label, "2", False), (a1.label, "1", True)]
    with any_engine.connect() as conn:
        assert core.display_state(conn, cfg, after=display["last_id"])["announce"] == []
        assert core.display_state(conn, cfg)["announce"] == []  # a display just opened announces nothing old


def test_wait_estimate_follows_recent_service_times(any_engine):
    cfg = _cfg(any_engine)
    now = datetime.now(UTC)
    with any_engine.begin() as conn:
        assert core.estimate_wait_min(conn, cfg, "DD", 3) == 3 * 5  # default 5 min before any history
        for i in range(4):
            t = core.take_ticket(conn, cfg, "DD", now=now - timedelta(hours=1))
            conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == t.id).values(
                state="done", counter="3", called_at=now - timedelta(minutes=40 - i * 10),
                finished_at=now - timedelta(minutes=40 - i * 10 - 12)))
        assert core.average_service_min(conn, cfg, "DD") == pytest.approx(12)
        assert core.estimate_wait_min(conn, cfg, "DD", 3) == 36
        # two counters share the civil-status queue: half the wait
        for _ in range(2):
            t = core.take_ticket(conn, cfg, "HT", now=now - timedelta(hours=1))
            conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == t.id).values(
                state="done", called_at=now - timedelta(minutes=20), finished_at=now - timedelta(minutes=12)))
        assert core.estimate_wait_min(conn, cfg, "HT", 3) == 12
        ticket = core.take_ticket(conn, cfg, "DD")
    assert ticket.waiting_ahead == 0 and ticket.estimated_wait_min == 0


def test_queue_config_rejects_clashing_prefixes(make_config):
    with pytest.raises(ConfigError, match="used by services"):
        make_config(queue={"services": [
            {"code": "HT", "name_vi": "Hộ tịch", "prefix": "A", "counters": ["1"]},
            {"code": "DD", "name_vi": "Đất đai", "prefix": "A", "counters": ["2"]},
        ]})
    with pytest.raises(ConfigError):
        make_config(queue={"services": [{"code": "H T", "name_vi": "x", "prefix": "A"}]})
