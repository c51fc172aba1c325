"""The dossier store on SQLite and PostgreSQL: ingest is idempotent, ordered by the source's version,
writes history, and enqueues exactly one notice per change into a notifying status."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kiosk.store.ingest import Parser, ingest_batch
from kiosk.store.schema import dossier_history, dossiers
from motcua.config import DEFAULT_STATUS_MAP
from sms_gateway.schema import notices


def parser() -> Parser:
    return Parser(status_map=dict(DEFAULT_STATUS_MAP), tz=ZoneInfo("Asia/Ho_Chi_Minh"))


def rec(**kw):
    base = {"code": "000.00.21.H42-251125-0001", "status": "processing", "procedure": "Đăng ký khai sinh",
            "applicant_name": "Nguyễn Văn Hùng", "phone": "0912345678", "source_version": 1}
    base.update(kw)
    return base


def test_result_ready_twice_makes_one_notice_and_one_history_row(any_engine):
    p = parser()
    ingest_batch(any_engine, p, [rec()], via="api")
    first = ingest_batch(any_engine, p, [rec(status="releasing", source_version=2)], via="api")
    again = ingest_batch(any_engine, p, [rec(status="releasing", source_version=2)], via="api")
    assert (first.updated, again.unchanged) == (1, 1)
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(notices)) == 1
        n = conn.execute(sa.select(notices)).mappings().one()
        assert (n["kind"], n["state"], n["phone_raw"]) == ("result_ready", "queued", "0912345678")
        statuses = conn.execute(sa.select(dossier_history.c.to_status).order_by(dossier_history.c.id)).scalars().all()
        assert statuses == ["processing", "result_ready"]


def test_out_of_order_event_never_moves_dossier_backwards(any_engine):
    p = parser()
    ingest_batch(any_engine, p, [rec(status="done", source_version=5)], via="api")
    report = ingest_batch(any_engine, p, [rec(status="processing", source_version=3)], via="api")
    assert report.stale == 1
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(dossiers.c.status)) == "handed_over"


def test_timestamp_orders_events_without_versions(any_engine):
    p = parser()
    a = rec(source_version=None, source_updated_at="2025-11-25T10:00:00", status="releasing")
    b = rec(source_version=None, source_updated_at="2025-11-25T09:00:00", status="processing")
    ingest_batch(any_engine, p, [a], via="api")
    assert ingest_batch(any_engine, p, [b], via="api").stale == 1
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(dossiers.c.status)) == "result_ready"
        # stored as UTC: 10:00 in Hanoi is 03:00 UTC
        assert conn.scalar(sa.select(dossiers.c.source_updated_at)).hour == 3


def test_batch_with_one_bad_record_writes_nothing(any_engine):
    report = ingest_batch(any_engine, parser(), [rec(), rec(code="X-2", status="teleported")], via="api")
    assert report.errors and report.errors[0]["field"] == "status"
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(dossiers)) == 0


def test_same_code_twice_in_one_batch_applies_in_order(any_engine):
    report = ingest_batch(any_engine, parser(), [rec(), rec(status="releasing", source_version=2),
                                                  rec(status="processing", source_version=1)], via="api")
    assert (report.created, report.updated, report.stale) == (1, 1, 1)
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(dossiers.c.status)) == "result_ready"
        assert conn.scalar(sa.select(sa.func.count()).select_from(notices)) == 1


def test_large_batch_spans_chunks_with_existing_and_new(any_engine):
    p = parser()
    first = [rec(code=f"C-{i}") for i in range(0, 1200, 2)]
    ingest_batch(any_engine, p, first, via="api")
    second = [rec(code=f"C-{i}", status="releasing", source_version=2) for i in range(1200)]
    report = ingest_batch(any_engine, p, second, via="api")
    assert (report.created, report.updated) == (600, 600)
    with any_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(notices)) == 1200
        assert conn.scalar(sa.select(sa.func.count()).select_from(dossier_history)) == 1800
