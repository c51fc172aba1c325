"""One print job per request: a page's idempotency key, and a short window per dossier for kiosk taps
(kiosk.printing.jobs), on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kiosk.printing import jobs
from kiosk.printing.schema import print_jobs
from kiosk.store.ingest import Parser, ingest_batch
from motcua.config import DEFAULT_STATUS_MAP

CODE = "000.00.21.H42-251125-0001"


def _seed(engine) -> None:
    parser = Parser(status_map=dict(DEFAULT_STATUS_MAP), tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    ingest_batch(engine, parser, [{"code": CODE, "status": "processing", "procedure": "Đăng ký khai sinh"}], via="test")


def _count(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(print_jobs)).scalar_one())


def test_the_same_request_key_is_one_job_whoever_sends_it(any_engine, make_config):
    _seed(any_engine)
    cfg = make_config()
    with any_engine.begin() as conn:
        first = jobs.submit_slip(conn, cfg, CODE, request_key="a" * 32, source="staff")
    with any_engine.begin() as conn:
        again = jobs.submit_slip(conn, cfg, CODE, request_key="a" * 32, source="staff")
    assert first == again and _count(any_engine) == 1


def test_kiosk_taps_for_one_dossier_within_the_window_are_one_job_and_later_ones_print(any_engine, make_config):
    _seed(any_engine)
    cfg = make_config()
    with any_engine.begin() as conn:
        first = jobs.submit_slip(conn, cfg, CODE, request_key="b" * 32)
    with any_engine.connect() as conn:
        created = jobs.get_job(conn, first)["created_at"]
    with any_engine.begin() as conn:
        assert jobs.submit_slip(conn, cfg, CODE, request_key="c" * 32, now=created + timedelta(seconds=5)) == first
    assert _count(any_engine) == 1
    with any_engine.begin() as conn:
        later = jobs.submit_slip(conn, cfg, CODE, request_key="d" * 32,
                                 now=created + jobs.DEDUP_WINDOW + timedelta(seconds=1))
    assert later != first and _count(any_engine) == 2


def test_staff_asking_twice_gets_two_slips(any_engine, make_config):
    _seed(any_engine)
    cfg = make_config()
    for _ in range(2):
        with any_engine.begin() as conn:
            jobs.submit_slip(conn, cfg, CODE, source="staff", now=datetime.now(timezone.utc))
    assert _count(any_engine) == 2


def _when_both_arrived(func):
    """`func`, entered by two threads together: each waits (up to 1 s) for the other to arrive. SQLite
    serialises writers at BEGIN, so there the second never gets here first and the wait just ends."""
    both_inside = threading.Barrier(2)

    def wrapper(*args, **kwargs):
        try:
            both_inside.wait(timeout=1.0)
        except threading.BrokenBarrierError:
            pass
        return func(*args, **kwargs)

    return wrapper


def test_a_double_tap_sending_one_request_key_twice_at_once_gets_one_number_and_one_printout(
        any_engine, make_config, monkeypatch):
    import re
    from concurrent.futures import ThreadPoolExecutor

    from kiosk.app import create_app
    from kiosk.queue import core as queue
    from kiosk.queue.schema import queue_tickets
    from tests.kiosk_support import ALL_WEEK

    cfg = make_config(site={"opening_hours": ALL_WEEK}, kiosk={"station_ticket_rate": "1000 per minute"})
    app = create_app(cfg, any_engine, test_config={"TESTING": True})
    service = queue.list_services(cfg)[0].code
    # Both requests are past their "key already used?" read before either takes a number.
    monkeypatch.setattr(queue, "take_ticket", _when_both_arrived(queue.take_ticket))

    def tap(_):
        return app.test_client().post("/ticket", data={"service": service, "request_key": "e" * 32})

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(tap, range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    labels = [set(re.findall(rf"{queue.get_service(cfg, service).prefix}\d{{3,}}", a.get_data(as_text=True)))
              for a in answers]
    assert labels[0] == labels[1] and len(labels[0]) == 1, labels  # both screens show the one number
    with any_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(queue_tickets)).scalar_one() == 1
    assert _count(any_engine) == 1


def test_two_kiosk_taps_for_one_dossier_at_once_with_different_keys_are_one_slip(any_engine, make_config,
                                                                                 monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    _seed(any_engine)
    cfg = make_config()
    # Both taps look for a recent slip before either has written one, unless the second is held back.
    monkeypatch.setattr(jobs, "_recent_duplicate", _when_both_arrived(jobs._recent_duplicate))

    def tap(key):
        with any_engine.begin() as conn:
            return jobs.submit_slip(conn, cfg, CODE, request_key=key)

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(tap, ["f" * 32, "0" * 32]))
    assert ids[0] == ids[1] and _count(any_engine) == 1
