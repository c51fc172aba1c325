"""The ZNS delivery rules on SQLite and PostgreSQL, without a gateway: a callback kept once per msg_id,
the SMS fallback queued once and never after a callback, an SMS fallback withdrawn by a callback that
arrives before the SMS was claimed. (The whole path, gateway and webhook, is in test_sms_channels.py.)"""
from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from motcua.config import ZnsConfig
from motcua.timeutil import utcnow
from sms_gateway import outbox, zns_delivery
from sms_gateway.channels import Channel
from sms_gateway.schema import notices, zns_receipts

CFG = ZnsConfig(enabled=True, app_id="app-1", oa_secret_key="oa-secret", delivery_callbacks=True)


def _sent_by_zns(conn, key, msg_id, minutes_ago):
    notice_id = outbox.enqueue(conn, key=key, phone="0912345678", kind="result_ready", params={"code": key})
    conn.execute(notices.update().where(notices.c.id == notice_id).values(
        state="sent", channel=Channel.ZNS, provider_id=msg_id, text="t", encoding="gsm7", parts=1,
        sent_at=utcnow() - timedelta(minutes=minutes_ago)))
    zns_delivery.after_zns_sent(conn, notice_id, msg_id, awaiting=True)
    return notice_id


def _callback(msg_id):
    """Zalo's signed callback for `msg_id`, as the webhook has verified it."""
    body = json.dumps({"event_name": "user_received_message", "app_id": "app-1", "timestamp": "1764600000000",
                       "message": {"msg_id": msg_id, "delivery_time": "1764600000000", "tracking_id": "t"}}).encode()
    headers = {"X-ZEvent-Signature": "mac=" + zns_delivery.signature("app-1", body, "1764600000000", "oa-secret")}
    return zns_delivery.parse_verified(CFG, body, headers)


def _row(conn, notice_id):
    return conn.execute(sa.select(notices).where(notices.c.id == notice_id)).one()


def test_fallback_is_queued_once_and_never_for_a_reported_notice(any_engine):
    with any_engine.begin() as conn:
        late = _sent_by_zns(conn, "late", "m-late", 30)
        reported = _sent_by_zns(conn, "reported", "m-reported", 30)
        fresh = _sent_by_zns(conn, "fresh", "m-fresh", 1)
        assert zns_delivery.record_callback(conn, _callback("m-reported")).notice_id == reported
        assert zns_delivery.fall_back_to_sms(conn, 900, actor="test") == [late]
        assert zns_delivery.fall_back_to_sms(conn, 900, actor="test") == []  # once
        assert _row(conn, late).state == "queued" and _row(conn, late).channel == Channel.ZNS
        assert _row(conn, reported).delivery_status == "delivered" and _row(conn, fresh).state == "sent"


def test_a_callback_before_the_sms_is_claimed_withdraws_it_and_a_replay_changes_nothing(any_engine):
    with any_engine.begin() as conn:
        notice_id = _sent_by_zns(conn, "n", "m-1", 30)
        assert zns_delivery.fall_back_to_sms(conn, 900, actor="test") == [notice_id]
        first = zns_delivery.record_callback(conn, _callback("m-1"))
        row = _row(conn, notice_id)
        assert first.new and row.state == "sent" and row.delivery_status == "delivered" and row.next_attempt_at is None
        assert not zns_delivery.record_callback(conn, _callback("m-1")).new
        assert conn.execute(sa.select(sa.func.count()).select_from(zns_receipts)).scalar() == 1
        assert outbox.due(conn, utcnow() + timedelta(days=1)) == []  # no SMS left to send
