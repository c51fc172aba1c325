"""Zalo ZNS delivery callbacks, and the SMS fallback for a ZNS notice never reported delivered.

Zalo reports a ZNS message that reached the citizen's phone by POSTing to the OA's webhook (Zalo's
ZBS docs, "Sự kiện người dùng nhận tin qua SĐT", webhook-gui-tin-qua-sdt/su-kien-nguoi-dung-nhan-tin-qua-sdt):

    header X-ZEvent-Signature: mac = sha256(appId + data + timeStamp + OAsecretKey)   (data: the raw JSON)
    header X-ZEvent-Server: ZNS
    {"sender": {"id": <OA id>}, "recipient": {"id": "84..."}, "event_name": "user_received_message",
     "message": {"delivery_time": "<ms>", "msg_id": "...", "tracking_id": "..."},
     "app_id": "...", "timestamp": "<ms>"}

The webhook must answer 200 to every genuine event (Zalo re-sends otherwise), so other events are
acknowledged and ignored. A callback is kept by its msg_id (a replay is the same row), matched to the
notice that ZNS message carried, and kept even when that notice is not known yet: the callback can
arrive before the gateway has written the msg_id, which then finds it (`after_zns_sent`).

The fallback (`fall_back_to_sms`): a ZNS notice sent but not reported delivered within
`[zns] delivery_wait_s` is queued again once, for SMS only (a notice whose channel is already ZNS is
never given to ZNS again), in one statement that also checks no callback arrived meanwhile.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import sqlalchemy as sa

from motcua.config import ZnsConfig
from motcua.timeutil import utcnow
from sms_gateway.channels import Channel
from sms_gateway.outbox import DeliveryStatus, NoticeState, log_event
from sms_gateway.schema import notices, zns_receipts

RECEIVED = "user_received_message"
SIGNATURE_HEADER = "X-ZEvent-Signature"
# A genuine callback is about 300 bytes; anything much larger is not read, let alone parsed.
MAX_BODY = 8192
MAX_ID = 100  # zns_receipts.msg_id
MAX_TRACKING = 64


class CallbackRefused(ValueError):
    """The request is not a callback we accept; `status` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Callback:
    """What a verified callback did: the msg_id, the notice it settled (None: not known yet), and
    whether it was new (False: a replay of one already kept)."""
    event: str
    msg_id: str | None = None
    notice_id: int | None = None
    new: bool = False


def signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """Zalo's webhook signature: hex sha256 of app id + raw body + timestamp + OA secret key."""
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret_key.encode()).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def parse_verified(cfg: ZnsConfig, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The callback's JSON once its size, shape and signature are right; CallbackRefused otherwise."""
    if not cfg.oa_secret_key:
        raise CallbackRefused(403, "the ZNS webhook is disabled: set [zns] oa_secret_key")
    if len(body) > MAX_BODY:
        raise CallbackRefused(413, f"callback larger than {MAX_BODY} bytes")
    given = _header(headers, SIGNATURE_HEADER).strip()
    if not given:
        raise CallbackRefused(401, f"missing {SIGNATURE_HEADER} header")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep, a 5,000-digit number
        raise CallbackRefused(400, "the body is not a JSON callback") from None
    if not isinstance(data, dict):
        raise CallbackRefused(400, "the body is not a JSON object")
    app_id, timestamp = _text(data.get("app_id")), _text(data.get("timestamp"))
    if not app_id or not timestamp:
        raise CallbackRefused(400, "app_id and timestamp are required")
    # The docs write the header as "mac = sha256(...)": accept the digest with or without "mac=".
    digest = given.split("=", 1)[1].strip() if given.lower().startswith("mac") and "=" in given else given
    if not hmac.compare_digest(digest.lower().encode(), signature(app_id, body, timestamp, cfg.oa_secret_key).encode()):
        raise CallbackRefused(401, "wrong signature")
    if app_id != cfg.app_id:
        raise CallbackRefused(403, "callback for another Zalo app")
    return data


def _delivered_at(value: Any) -> datetime | None:
    text = _text(value)
    if not text.isdigit() or len(text) > 15:
        return None
    return datetime.fromtimestamp(int(text) / 1000, timezone.utc)


def record_callback(conn: sa.Connection, data: dict[str, Any]) -> Callback:
    """Keep a verified `user_received_message` and settle its notice; other events are ignored."""
    event = _text(data.get("event_name"))[:64]
    if event != RECEIVED:
        return Callback(event)
    message = data.get("message")
    message = message if isinstance(message, dict) else {}
    msg_id = _text(message.get("msg_id"))
    if not msg_id or len(msg_id) > MAX_ID:
        raise CallbackRefused(400, f"message.msg_id must be 1..{MAX_ID} characters")
    if conn.execute(sa.select(zns_receipts.c.msg_id).where(zns_receipts.c.msg_id == msg_id)).first():
        return Callback(event, msg_id, new=False)  # a replay: already kept, nothing changes
    delivered_at = _delivered_at(message.get("delivery_time"))
    try:
        with conn.begin_nested():
            conn.execute(zns_receipts.insert().values(
                msg_id=msg_id, tracking_id=_text(message.get("tracking_id"))[:MAX_TRACKING] or None,
                delivered_at=delivered_at, received_at=utcnow()))
    except sa.exc.IntegrityError:  # the same callback, twice at once
        return Callback(event, msg_id, new=False)
    notice_id = conn.execute(sa.select(notices.c.id).where(
        notices.c.provider_id == msg_id, notices.c.channel == Channel.ZNS)).scalar()
    if notice_id is not None:
        _settle(conn, notice_id, msg_id, delivered_at)
    return Callback(event, msg_id, notice_id, new=True)


def _settle(conn: sa.Connection, notice_id: int, msg_id: str, delivered_at: datetime | None) -> None:
    """The ZNS message reached the phone: the notice is delivered. If the SMS fallback queued it and
    the SMS has not been claimed yet, it is not sent at all."""
    now = utcnow()
    conn.execute(zns_receipts.update().where(zns_receipts.c.msg_id == msg_id).values(notice_id=notice_id))
    conn.execute(notices.update().where(notices.c.id == notice_id).values(
        delivery_status=DeliveryStatus.DELIVERED, delivered_at=delivered_at or now, updated_at=now))
    state = conn.execute(sa.select(notices.c.state).where(notices.c.id == notice_id)).scalar()
    if state not in (NoticeState.QUEUED, NoticeState.RETRY):
        return
    withdrawn = conn.execute(notices.update().where(
        notices.c.id == notice_id, notices.c.channel == Channel.ZNS, notices.c.state == state,
    ).values(state=NoticeState.SENT, next_attempt_at=None, updated_at=now)).rowcount
    if withdrawn:
        log_event(conn, notice_id, state, NoticeState.SENT, "zalo",
                  f"ZNS {msg_id} reported delivered before its SMS fallback went: no SMS", now)


def after_zns_sent(conn: sa.Connection, notice_id: int, msg_id: str, *, awaiting: bool) -> None:
    """The gateway's write for a notice ZNS accepted: delivered at once if Zalo's callback already
    came, else pending (the fallback waits for it) when callbacks are set up."""
    row = conn.execute(sa.select(zns_receipts.c.delivered_at).where(zns_receipts.c.msg_id == msg_id)).first() \
        if msg_id else None
    if row is not None:
        _settle(conn, notice_id, msg_id, row.delivered_at)
    elif awaiting and msg_id:
        conn.execute(notices.update().where(notices.c.id == notice_id)
                     .values(delivery_status=DeliveryStatus.PENDING))


def _undelivered(wait_s: float, now: datetime) -> Any:
    """Sent by ZNS, still pending, older than the wait, and no callback kept for its msg_id."""
    return sa.and_(
        notices.c.state == NoticeState.SENT, notices.c.channel == Channel.ZNS,
        notices.c.delivery_status == DeliveryStatus.PENDING, notices.c.sent_at <= now - timedelta(seconds=wait_s),
        ~sa.exists().where(zns_receipts.c.msg_id == notices.c.provider_id),
    )


def has_undelivered(conn: sa.Connection, wait_s: float, now: datetime | None = None) -> bool:
    return conn.execute(sa.select(notices.c.id).where(_undelivered(wait_s, now or utcnow())).limit(1)).first() \
        is not None


def fall_back_to_sms(conn: sa.Connection, wait_s: float, *, actor: str, now: datetime | None = None,
                     limit: int = 100) -> list[int]:
    """Queue once, for SMS, every ZNS notice not reported delivered within `wait_s`. The update repeats
    the whole condition, so a callback committed meanwhile wins and nothing is queued."""
    now = now or utcnow()
    rows = conn.execute(sa.select(notices.c.id, notices.c.provider_id).where(_undelivered(wait_s, now))
                        .order_by(notices.c.id).limit(limit)).all()
    queued = []
    for notice_id, msg_id in rows:
        done = conn.execute(notices.update().where(notices.c.id == notice_id, _undelivered(wait_s, now)).values(
            state=NoticeState.QUEUED, attempts=0, next_attempt_at=now, delivery_status=None, updated_at=now,
        )).rowcount
        if done:
            log_event(conn, notice_id, NoticeState.SENT, NoticeState.QUEUED, actor,
                      f"ZNS {msg_id} not reported delivered within {wait_s:g} s: sent once by SMS", now)
            queued.append(notice_id)
    return queued
