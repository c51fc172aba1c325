"""One print job per request: a page's idempotency key, and a short window per dossier for kiosk taps
(kiosk.printing.jobs), on SQLite and PostgreSQL."""
from __future__ import annotations

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
