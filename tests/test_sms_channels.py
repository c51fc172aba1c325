"""Zalo ZNS and the SMS brandname provider as channels of the same outbox, against HTTP emulators of
their real APIs (tests/emulators/zns.py, esms.py) with faults: 5xx, a timeout after the provider
accepted, a duplicate RequestId, an expired token. ZNS first, SMS when ZNS fails."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.channels import Channel
from sms_gateway.gateway import Gateway
from sms_gateway.outbox import NoticeState
from sms_gateway.schema import notices
from tests.emulators.esms import BrandnameEmulator
from tests.emulators.zns import ZnsEmulator
from tests.modem.harness import FAST_SMS, EmulatedModem


@pytest.fixture
def zalo():
    with ZnsEmulator() as emu:
        yield emu


@pytest.fixture
def esms():
    with BrandnameEmulator() as emu:
        yield emu


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    return EmulatedModem(tmp_path / "emulated-modem")


def _zns(emu, **kw):
    return {"enabled": True, "api_url": emu.url, "oauth_url": emu.url, "app_id": "app-1",
            "secret_key": "zalo-secret", "refresh_token": "rt-0", "templates": {"result_ready": "tpl-ready"},
            "timeout_s": 2, **kw}


def _brandname(emu, **kw):
    return {"enabled": True, "api_url": emu.url, "api_key": "esms-key", "secret_key": "esms-secret",
            "brandname": "UBND YEN HOA", "timeout_s": 1, **kw}


@pytest.fixture
def gateway(make_config, modem):
    engines = []

    def _make(sms=None, **sections):
        cfg = make_config(sms={**FAST_SMS, "retry_base_s": 0.05, "retry_max_s": 0.05, **(sms or {})},
                          modem=modem.modem_section(), **sections)
        engines.append(make_engine(cfg))
        return cfg, engines[-1]

    yield _make
    for eng in engines:
        eng.dispose()


def _enqueue(engine, kind="result_ready", n=1, prefix="c"):
    with engine.begin() as conn:
        return [outbox.enqueue(conn, key=f"{prefix}{i}", phone=f"0912{i:06d}", kind=kind,
                               params={"code": f"H42-{i:04d}", "procedure": "Khai sinh", "text": f"tin {i}"})
                for i in range(n)]


def _rows(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(sa.select(notices))}


def _due_now(engine):
    """A retry's backoff has passed (the test does not wait for it)."""
    from motcua.timeutil import utcnow
    with engine.begin() as conn:
        conn.execute(notices.update().where(notices.c.state == "retry").values(next_attempt_at=utcnow()))


SLOW_RETRY = {"retry_base_s": 600, "retry_max_s": 600}


def _drain(cfg, engine, runs=3):
    import time
    for _ in range(runs):
        Gateway(cfg, engine).run(until_idle=True)
        with engine.connect() as conn:
            if not conn.execute(sa.select(notices.c.id).where(notices.c.state.in_(("queued", "retry")))).first():
                return
        time.sleep(0.1)  # past the 0.05 s backoff


def test_zns_first_with_a_token_from_the_refresh_token_and_sms_for_kinds_without_a_template(
        gateway, zalo, modem):
    cfg, engine = gateway(zns=_zns(zalo))
    [ready] = _enqueue(engine, "result_ready")
    [text] = _enqueue(engine, "text", prefix="t")
    _drain(cfg, engine)
    rows = _rows(engine)
    assert rows[ready].state == NoticeState.SENT and rows[ready].channel == Channel.ZNS
    assert rows[ready].provider_id == zalo.messages[0]["msg_id"]
    assert zalo.messages[0]["phone"] == "84912000000" and zalo.messages[0]["template_id"] == "tpl-ready"
    assert zalo.messages[0]["data"]["code"] == "H42-0000" and zalo.refreshes == 1
    assert rows[text].state == NoticeState.SENT and rows[text].channel is None  # the modem
    assert [m[0] for m in modem.messages()] == ["+84912000000"]
    saved = json.loads((Path(cfg.paths.data_dir) / "sms-gateway" / "zns-token.json").read_text())
    assert saved == {"access_token": "at-1", "refresh_token": "rt-1"}  # Zalo's new refresh token kept


def test_expired_zns_token_is_refreshed_and_the_notice_sent_once(gateway, zalo, modem):
    cfg, engine = gateway(zns=_zns(zalo))
    _enqueue(engine)
    _drain(cfg, engine)
    zalo.fault = "expire"
    [second] = _enqueue(engine, prefix="again")
    _drain(cfg, engine)
    assert _rows(engine)[second].channel == Channel.ZNS and zalo.refreshes == 2
    assert len(zalo.messages) == 2 and modem.sent() == []


def test_zns_server_error_falls_back_to_sms(gateway, zalo, modem):
    cfg, engine = gateway(zns=_zns(zalo))
    zalo.fault, zalo.fault_paths = "500", ("/message/template",)
    [notice_id] = _enqueue(engine)
    _drain(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == NoticeState.SENT and row.channel is None and len(modem.messages()) == 1
    assert zalo.messages == []


def test_zns_timeout_after_accept_is_retried_with_the_same_tracking_id_and_sent_once(gateway, zalo, modem):
    cfg, engine = gateway(zns=_zns(zalo, timeout_s=0.5), sms=SLOW_RETRY)
    zalo.fault, zalo.delay_s = "accept_then_hang", 1.5
    [notice_id] = _enqueue(engine)
    Gateway(cfg, engine).run(until_idle=True)
    assert _rows(engine)[notice_id].state == NoticeState.RETRY  # not uncertain: the resend is recognised
    zalo.fault = None
    _due_now(engine)
    _drain(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == NoticeState.SENT and row.channel == Channel.ZNS and row.attempts == 2
    assert len(zalo.messages) == 1 and modem.sent() == []


def test_brandname_provider_sends_instead_of_the_modem(gateway, esms, modem):
    cfg, engine = gateway(brandname=_brandname(esms), sms={**FAST_SMS, "encoding": "ucs2"})
    ids = _enqueue(engine, "text", n=3)
    _drain(cfg, engine)
    rows = _rows(engine)
    assert {rows[i].state for i in ids} == {NoticeState.SENT}
    assert {rows[i].channel for i in ids} == {Channel.BRANDNAME}
    assert [m["content"] for m in esms.messages] == ["tin 0", "tin 1", "tin 2"]
    assert esms.messages[0]["phone"] == "84912000000" and esms.messages[0]["unicode"] is True
    assert not (modem.dir / "starts.log").exists()  # no modem opened at all


def test_brandname_timeout_after_accept_resends_with_the_same_request_id_and_is_not_sent_twice(
        gateway, esms):
    cfg, engine = gateway(brandname=_brandname(esms, timeout_s=0.5), sms=SLOW_RETRY)
    esms.fault, esms.delay_s = "accept_then_hang", 1.5
    [notice_id] = _enqueue(engine, "text")
    Gateway(cfg, engine).run(until_idle=True)
    assert _rows(engine)[notice_id].state == NoticeState.RETRY
    esms.fault = None
    _due_now(engine)
    _drain(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == NoticeState.SENT and row.provider_id.startswith("duplicate:")  # refused as seen
    assert len(esms.messages) == 1 and esms.count("SendMultipleMessage") == 2


def test_brandname_server_error_is_retried_and_wrong_keys_fail_at_once(gateway, esms):
    cfg, engine = gateway(brandname=_brandname(esms), sms=SLOW_RETRY)
    esms.fault = "500"
    [notice_id] = _enqueue(engine, "text")
    Gateway(cfg, engine).run(until_idle=True)
    assert _rows(engine)[notice_id].state == NoticeState.RETRY
    esms.fault = None
    _due_now(engine)
    _drain(cfg, engine)
    assert _rows(engine)[notice_id].state == NoticeState.SENT
    cfg_bad, engine_bad = gateway(brandname=_brandname(esms, brandname="NOT REGISTERED"))
    [bad] = _enqueue(engine_bad, "text", prefix="bad")
    Gateway(cfg_bad, engine_bad).run(until_idle=True)
    row = _rows(engine_bad)[bad]
    assert row.state == NoticeState.FAILED and "CodeResult 104" in row.last_error


def test_brandname_out_of_balance_is_retried_and_a_blocked_number_fails_at_once(gateway, esms):
    """eSMS's table of error codes: 103 "Not enough balance" goes once the hall tops up; 99 "The phone
    number is blocked in the system" never will."""
    cfg, engine = gateway(brandname=_brandname(esms), sms=SLOW_RETRY)
    esms.fault = "no_balance"
    esms.blocked.add("84912000001")
    short, blocked = _enqueue(engine, "text", n=2)
    Gateway(cfg, engine).run(until_idle=True)
    rows = _rows(engine)
    assert rows[short].state == NoticeState.RETRY and "CodeResult 103" in rows[short].last_error
    esms.fault = None  # topped up
    _due_now(engine)
    _drain(cfg, engine)
    rows = _rows(engine)
    assert rows[short].state == NoticeState.SENT and [m["phone"] for m in esms.messages] == ["84912000000"]
    assert rows[blocked].state == NoticeState.FAILED and "CodeResult 99" in rows[blocked].last_error


# --- ZNS delivery callbacks (Zalo's webhook on the kiosk web app) and the SMS fallback ---------------

WEBHOOK = "/api/v1/zalo/webhook"
CALLBACKS = {"delivery_callbacks": True, "oa_secret_key": "oa-secret", "delivery_wait_s": 600}


@pytest.fixture
def webhook():
    """The kiosk web app's test client for a config: the webhook's HTTP door."""
    from kiosk.app import create_app

    return lambda cfg, engine: create_app(cfg, engine, test_config={"TESTING": True}).test_client()


def _later(hours=1):
    """Past [zns] delivery_wait_s without waiting for it."""
    from datetime import timedelta

    import time_machine

    from motcua.timeutil import utcnow
    return time_machine.travel(utcnow() + timedelta(hours=hours), tick=True)


def _events(engine, notice_id):
    from sms_gateway.schema import notice_events
    with engine.connect() as conn:
        return [e.detail for e in conn.execute(sa.select(notice_events).where(notice_events.c.notice_id == notice_id)
                                               .order_by(notice_events.c.id))]


def _receipts(engine):
    from sms_gateway.schema import zns_receipts
    with engine.connect() as conn:
        return conn.execute(sa.select(zns_receipts)).all()


def test_zns_reported_delivered_in_time_never_goes_by_sms(gateway, zalo, modem, webhook):
    cfg, engine = gateway(zns=_zns(zalo, **CALLBACKS))
    [notice_id] = _enqueue(engine)
    _drain(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.channel == Channel.ZNS and row.delivery_status == "pending"
    Gateway(cfg, engine).run(until_idle=True)  # inside the wait: nothing goes by SMS yet
    assert modem.messages() == []
    body, headers = zalo.callback(row.provider_id, delivered_ms=1764600000000)
    resp = webhook(cfg, engine).post(WEBHOOK, data=body, headers=headers)
    assert resp.status_code == 200 and resp.json["notice"] == notice_id and resp.json["new"] is True
    row = _rows(engine)[notice_id]
    assert row.delivery_status == "delivered" and row.delivered_at.timestamp() == 1764600000.0
    with _later():
        Gateway(cfg, engine).run(until_idle=True)
    assert modem.messages() == [] and _rows(engine)[notice_id].state == NoticeState.SENT


def test_zns_not_reported_delivered_in_time_goes_exactly_once_by_sms(gateway, zalo, modem, webhook):
    cfg, engine = gateway(zns=_zns(zalo, **CALLBACKS))
    [notice_id] = _enqueue(engine)
    _drain(cfg, engine)
    msg_id = _rows(engine)[notice_id].provider_id
    with _later():
        for _ in range(3):  # restarts find it already sent by SMS
            Gateway(cfg, engine).run(until_idle=True)
    assert [m[0] for m in modem.messages()] == ["+84912000000"]
    assert len(zalo.messages) == 1  # not given to ZNS again
    row = _rows(engine)[notice_id]
    assert row.state == NoticeState.SENT and row.channel is None and row.delivery_status == "delivered"
    assert any(f"ZNS {msg_id} not reported delivered within 600 s: sent once by SMS" in (e or "")
               for e in _events(engine, notice_id))
    # Zalo's callback, late: kept, answered 200, and no second SMS.
    body, headers = zalo.callback(msg_id)
    assert webhook(cfg, engine).post(WEBHOOK, data=body, headers=headers).status_code == 200
    with _later(2):
        Gateway(cfg, engine).run(until_idle=True)
    assert len(modem.messages()) == 1 and len(_receipts(engine)) == 1


def test_zns_callback_before_the_gateway_wrote_the_msg_id_still_settles_the_notice(gateway, zalo, modem, webhook):
    cfg, engine = gateway(zns=_zns(zalo, **CALLBACKS))
    [notice_id] = _enqueue(engine)
    client = webhook(cfg, engine)
    zalo.messages.append({"phone": "84912000000", "msg_id": "zns-1", "tracking_id": "t"})  # the id Zalo will give
    body, headers = zalo.callback("zns-1")
    zalo.messages.clear()
    assert client.post(WEBHOOK, data=body, headers=headers).json["notice"] is None  # kept, not known yet
    _drain(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.provider_id == "zns-1" and row.delivery_status == "delivered"
    with _later():
        Gateway(cfg, engine).run(until_idle=True)
    assert modem.messages() == []


def test_zns_callback_with_a_bad_signature_or_a_hostile_body_is_refused_and_changes_nothing(
        gateway, zalo, modem, webhook):
    from sms_gateway.zns_delivery import signature
    cfg, engine = gateway(zns=_zns(zalo, **CALLBACKS))
    [notice_id] = _enqueue(engine)
    _drain(cfg, engine)
    client = webhook(cfg, engine)
    msg_id = _rows(engine)[notice_id].provider_id
    body, headers = zalo.callback(msg_id, secret="not-the-oa-secret")
    assert client.post(WEBHOOK, data=body, headers=headers).status_code == 401
    good_body, good_headers = zalo.callback(msg_id)
    assert client.post(WEBHOOK, data=good_body + b" ", headers=good_headers).status_code == 401  # body changed
    assert client.post(WEBHOOK, data=good_body, headers={"Content-Type": "application/json"}).status_code == 401
    other = good_body.replace(b'"app_id": "app-1"', b'"app_id": "app-2"')
    signed = {"X-ZEvent-Signature": signature("app-2", other, json.loads(other)["timestamp"], "oa-secret")}
    assert client.post(WEBHOOK, data=other, headers=signed).status_code == 403  # another app's OA
    huge = client.post(WEBHOOK, data=b'{"a": "' + b"x" * 200_000 + b'"}', headers=good_headers)
    assert huge.status_code == 413
    deep, long_number = b"[" * 4000 + b"]" * 4000, b'{"app_id": "app-1", "timestamp": 1' + b"9" * 6000 + b"}"
    for hostile in (deep, b"\xff\xfe not json", long_number, b'["app-1"]'):
        mac = signature("app-1", hostile, "1", "oa-secret")
        resp = client.post(WEBHOOK, data=hostile, headers={"X-ZEvent-Signature": mac})
        assert resp.status_code == 400 and "error" in resp.json
    assert _receipts(engine) == [] and _rows(engine)[notice_id].delivery_status == "pending"


def test_replayed_zns_callback_is_idempotent(gateway, zalo, modem, webhook):
    cfg, engine = gateway(zns=_zns(zalo, **CALLBACKS))
    [notice_id] = _enqueue(engine)
    _drain(cfg, engine)
    client = webhook(cfg, engine)
    body, headers = zalo.callback(_rows(engine)[notice_id].provider_id)
    first = client.post(WEBHOOK, data=body, headers=headers)
    settled = _rows(engine)[notice_id]
    events = _events(engine, notice_id)
    again = client.post(WEBHOOK, data=body, headers=headers)
    assert first.status_code == again.status_code == 200 and (first.json["new"], again.json["new"]) == (True, False)
    assert _rows(engine)[notice_id] == settled and _events(engine, notice_id) == events
    assert len(_receipts(engine)) == 1
