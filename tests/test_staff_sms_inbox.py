"""Staff SMS page: each notice's channel, the citizens' incoming messages and the opted-out numbers,
read through sms_gateway's api only; hostile text from a citizen is shown escaped."""
from __future__ import annotations

import pytest

from kiosk.staff.testing import csrf_token, sign_in
from motcua.timeutil import utcnow
from sms_gateway import outbox
from sms_gateway.incoming import IncomingPart, Message, handle
from sms_gateway.schema import notices
from tests.conftest import CHEAP_HASHING


@pytest.fixture
def config(make_config):
    return make_config(staff=CHEAP_HASHING)


def _incoming(engine, number, text):
    part = IncomingPart(number, text, "2025-11-20 19:00:00", None, (0, 1))
    with engine.begin() as conn:
        return handle(conn, Message(number, text, [part]), lookup=None, replies_per_hour=5)


def test_notices_page_shows_channel_incoming_messages_and_opt_outs(app, engine):
    with engine.begin() as conn:
        zns = outbox.enqueue(conn, key="z", phone="0912000001", kind="result_ready", params={"code": "A"})
        conn.execute(notices.update().where(notices.c.id == zns).values(
            state="sent", sent_at=utcnow(), channel="zns", provider_id="zns-1"))
        sms = outbox.enqueue(conn, key="m", phone="0912000002", kind="result_ready", params={"code": "B"})
        conn.execute(notices.update().where(notices.c.id == sms).values(state="sent", sent_at=utcnow()))
    _incoming(engine, "+84912000003", "HUY")
    _incoming(engine, "+84912000004", "<script>alert(1)</script>")
    client = sign_in(app)
    body = client.get("/staff/notices").get_data(as_text=True)
    zns_row = body.split(f'id="notice-{zns}"', 1)[1].split("</tr>", 1)[0]
    sms_row = body.split(f'id="notice-{sms}"', 1)[1].split("</tr>", 1)[0]
    assert "Zalo ZNS" in zns_row and "SMS (modem)" in sms_row
    incoming = body.split('id="incoming"', 1)[1].split("</table>", 1)[0]
    assert "+84912000003" in incoming and "Ngừng nhận tin" in incoming
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in incoming and "<script>alert" not in body
    assert "Không rõ yêu cầu" in incoming
    opt_outs = body.split('id="opt-outs"', 1)[1].split("</table>", 1)[0]
    assert "+84912000003" in opt_outs and "HUY" in opt_outs and "+84912000004" not in opt_outs


def test_notices_page_in_english_names_the_channel_and_the_sections(app, engine):
    _incoming(engine, "+84912000005", "STOP")
    client = sign_in(app)
    client.post("/staff/language", data={"lang": "en", "csrf_token": csrf_token(client, "/staff/notices")})
    body = client.get("/staff/notices").get_data(as_text=True)
    assert "Incoming messages" in body and "Numbers that stopped notices" in body and "Channel" in body
    assert "Stop notices" in body and "Tin nhắn đến" not in body
