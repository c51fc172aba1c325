"""The outbox's states and the staff actions on them, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from motcua.timeutil import utcnow
from sms_gateway import outbox
from sms_gateway.health import parse_balance, read_modem_health, write_modem_health
from sms_gateway.schema import notice_events, notices

# Due times, today's counts and health ages are measured from now.
pytestmark = pytest.mark.clock


def _state(conn, notice_id):
    return conn.execute(sa.select(notices.c.state).where(notices.c.id == notice_id)).scalar()


def test_same_key_never_makes_two_notices(any_engine):
    with any_engine.begin() as conn:
        first = outbox.enqueue(conn, key="H1:result_ready:v3", phone="0912345678", kind="result_ready",
                               params={"code": "H1"}, dossier_code="H1")
        again = outbox.enqueue(conn, key="H1:result_ready:v3", phone="0912345678", kind="result_ready")
    assert isinstance(first, int) and again is None
    with any_engine.connect() as conn:
        row = conn.execute(sa.select(notices)).one()
    assert row.state == "queued" and row.phone_e164 == "+84912345678" and row.dossier_code == "H1"


def test_invalid_number_fails_at_once_with_reason(any_engine):
    with any_engine.begin() as conn:
        notice_id = outbox.enqueue(conn, key="k-bad", phone="12345", kind="result_ready")
    with any_engine.connect() as conn:
        row = conn.execute(sa.select(notices).where(notices.c.id == notice_id)).one()
        assert outbox.due(conn, utcnow() + timedelta(days=1)) == []
    assert row.state == "failed" and "10 digits" in row.last_error and row.next_attempt_at is None


def test_old_eleven_digit_number_is_remapped_at_enqueue(any_engine):
    with any_engine.begin() as conn:
        notice_id = outbox.enqueue(conn, key="k-old", phone="01689 123 456", kind="result_ready")
        assert conn.execute(sa.select(notices.c.phone_e164).where(notices.c.id == notice_id)).scalar() == "+84389123456"


def test_staff_actions_follow_allowed_transitions(any_engine):
    with any_engine.begin() as conn:
        a = outbox.enqueue(conn, key="a", phone="0912345678", kind="text", params={"text": "x"})
        outbox.cancel(conn, a, actor="staff1")
        assert _state(conn, a) == "cancelled"
        with pytest.raises(ValueError, match="only queued, waiting or failed"):
            outbox.cancel(conn, a)
        outbox.retry(conn, a, actor="staff1")
        assert _state(conn, a) == "queued"
        with pytest.raises(ValueError, match="not uncertain"):
            outbox.resolve_uncertain(conn, a, resend=True)
        # a gateway crash leaves `sending`; the next start makes it uncertain, never queued
        assert outbox.claim(conn, a, phone_e164="+84912345678", text="x", encoding="gsm7", parts=1)
        assert outbox.recover_interrupted(conn) == [a]
        assert _state(conn, a) == "uncertain"
        with pytest.raises(ValueError, match="only failed, cancelled or waiting"):
            outbox.retry(conn, a)
        outbox.resolve_uncertain(conn, a, resend=False, actor="staff2")
        assert _state(conn, a) == "sent"  # marked sent: it counts in the day's usage
        with pytest.raises(ValueError, match="does not exist"):
            outbox.retry(conn, 999999)
        events = conn.execute(sa.select(notice_events.c.to_state, notice_events.c.actor)
                              .where(notice_events.c.notice_id == a).order_by(notice_events.c.id)).all()
    assert [e.to_state for e in events] == ["cancelled", "queued", "uncertain", "sent"]
    assert events[-1].actor == "staff2"


def test_retry_refuses_a_number_that_is_still_invalid(any_engine):
    with any_engine.begin() as conn:
        bad = outbox.enqueue(conn, key="bad", phone="0000", kind="text")
        with pytest.raises(ValueError, match="invalid phone number"):
            outbox.retry(conn, bad)
        assert _state(conn, bad) == "failed"


def test_counts_and_daily_usage(any_engine):
    with any_engine.begin() as conn:
        ids = [outbox.enqueue(conn, key=f"n{i}", phone="0912345678", kind="text") for i in range(3)]
        outbox.enqueue(conn, key="bad", phone="1", kind="text")
        for notice_id in ids[:2]:
            outbox.claim(conn, notice_id, phone_e164="+84912345678", text="x", encoding="ucs2", parts=2)
            outbox.mark_sent(conn, notice_id, [7, 8], delivery_reports=True)
        counts = outbox.counts_by_state(conn)
        usage = outbox.daily_usage(conn, days=3)
    assert counts == {"queued": 1, "sending": 0, "sent": 2, "retry": 0, "failed": 1, "uncertain": 0, "cancelled": 0}
    assert len(usage) == 3 and usage[-1]["sent"] == 2 and usage[-1]["parts"] == 4
    assert usage[0]["sent"] == 0 and usage[0]["day"] < usage[-1]["day"]


def test_delivery_report_matches_newest_pending_with_same_reference(any_engine):
    with any_engine.begin() as conn:
        old = outbox.enqueue(conn, key="old", phone="0912345678", kind="text")
        new = outbox.enqueue(conn, key="new", phone="0912345678", kind="text")
        for notice_id in (old, new):
            outbox.claim(conn, notice_id, phone_e164="+84912345678", text="x", encoding="gsm7", parts=1)
            outbox.mark_sent(conn, notice_id, [42], delivery_reports=True)
        conn.execute(notices.update().where(notices.c.id == old).values(sent_at=utcnow() - timedelta(hours=1)))
        assert outbox.record_delivery(conn, phone_e164="+84912345678", message_ref=42, delivered=True) == new
        assert outbox.record_delivery(conn, phone_e164="+84912345678", message_ref=42, delivered=False) == old
        assert outbox.record_delivery(conn, phone_e164="+84912345678", message_ref=42, delivered=True) is None
        rows = dict(conn.execute(sa.select(notices.c.id, notices.c.delivery_status)).all())
    assert rows == {old: "failed", new: "delivered"}


def test_modem_health_row_round_trip(any_engine):
    with any_engine.begin() as conn:
        assert read_modem_health(conn) is None
        write_modem_health(conn, state="no_network", signal_percent=0, last_seen_at=utcnow(), detail="searching")
        write_modem_health(conn, balance_text="TKC 5.000d", balance_amount=5000.0, balance_low=True,
                           balance_checked_at=utcnow())
        health = read_modem_health(conn)
        with pytest.raises(ValueError):
            write_modem_health(conn, state="happy")
    assert health["state"] == "no_network" and health["balance_low"] is True and health["stale"] is False
    assert health["detail"] == "searching" and health["balance_text"] == "TKC 5.000d"


def test_balance_parsing():
    pattern = r"(\d[\d.,]*)\s*(?:d|đ|vnd|dong|đồng)\b"
    assert parse_balance("TKC: 12.345 d, HSD 01/01/2026", pattern) == 12345.0
    assert parse_balance("Tai khoan goc 150,000VND.", pattern) == 150000.0
    assert parse_balance("So du: 2.500đ", pattern) == 2500.0
    assert parse_balance("Dich vu tam thoi gian doan", pattern) is None


def test_a_failed_notice_can_be_cancelled_for_good(any_engine):
    with any_engine.begin() as conn:
        bad = outbox.enqueue(conn, key="bad-number", phone="12345", kind="result_ready")
        assert _state(conn, bad) == "failed"  # an invalid number fails at once
        outbox.cancel(conn, bad, actor="staff1")
        assert _state(conn, bad) == "cancelled"
