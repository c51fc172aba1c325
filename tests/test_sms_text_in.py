"""Text-in: a citizen's SMS to the hall's number, through the AT-modem emulator (+CMTI, AT+CMGR/CMGL
in PDU mode, single, multipart with UDH, UCS-2), answered through the outbox with kiosk's lookup."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from kiosk.sms_lookup import lookup
from kiosk.store.ingest import DossierEvent, apply_event
from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.gateway import Gateway
from sms_gateway.incoming import IncomingCommand, parse
from sms_gateway.outbox import NoticeState
from sms_gateway.schema import incoming_messages, notices, opt_outs
from tests.modem.harness import FAST_SMS, EmulatedModem

CODE = "000.00.21.H42-251125-0001"
CITIZEN = "+84912345678"


@pytest.mark.parametrize("text, command, code, secret", [
    (f"HS {CODE} AB12CD", IncomingCommand.LOOKUP, CODE, "AB12CD"),
    (f"hs {CODE.lower()} ab12cd", IncomingCommand.LOOKUP, CODE, "AB12CD"),
    (f"Tra cứu {CODE}", IncomingCommand.LOOKUP, CODE, None),
    (f"TRACUU  {CODE}  x9", IncomingCommand.LOOKUP, CODE, "X9"),
    ("Hủy", IncomingCommand.STOP, None, None),
    ("stop", IncomingCommand.STOP, None, None),
    ("Xin chào, hồ sơ của tôi đâu?", IncomingCommand.UNKNOWN, None, None),
])
def test_commands_are_read_in_any_case_with_or_without_diacritics(text, command, code, secret):
    parsed = parse(text)
    assert (parsed.command, parsed.code, parsed.secret) == (command, code, secret)


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    return EmulatedModem(tmp_path / "emulated-modem")


@pytest.fixture
def hall(make_config, modem):
    """(config, engine) with one dossier whose receipt secret is AB12CD."""
    cfg = make_config(sms={**FAST_SMS, "text_in_replies_per_hour": 3}, modem=modem.modem_section())
    engine = make_engine(cfg)
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code=CODE, status="processing", secret="AB12CD",
                                       applicant_name="Nguyễn Văn Hùng", procedure="Đăng ký khai sinh",
                                       appointment_date=date(2025, 12, 2)), via="test")
    yield cfg, engine
    engine.dispose()


def _run(cfg, engine, tries=3):
    for _ in range(tries):  # a start that fails at Gammu's Init on a loaded machine starts again
        Gateway(cfg, engine, lookup=lookup).run(until_idle=True)
        with engine.connect() as conn:
            if conn.execute(sa.select(incoming_messages.c.id)).first():
                return


def _incoming(engine):
    with engine.connect() as conn:
        return conn.execute(incoming_messages.select().order_by(incoming_messages.c.id)).all()


def _replies(modem, number=CITIZEN):
    return [text for to, _enc, text in modem.messages() if to == number]


def test_lookup_with_the_secret_answers_status_and_date_never_the_name(hall, modem):
    cfg, engine = hall
    modem.deliver(CITIZEN, f"HS {CODE} AB12CD")
    _run(cfg, engine)
    [reply] = _replies(modem)
    assert f"Ho so {CODE}: Dang xu ly" in reply and "02/12/2025" in reply
    assert "Hung" not in reply and "Nguyen" not in reply
    [msg] = _incoming(engine)
    assert msg.command == IncomingCommand.LOOKUP and msg.dossier_code == CODE and msg.reply_notice_id
    assert msg.phone_e164 == CITIZEN and msg.text == f"HS {CODE} AB12CD"
    assert modem.memory() == []  # stored, then freed in the modem


def test_lookup_without_the_secret_tells_the_status_only(hall, modem):
    cfg, engine = hall
    modem.deliver(CITIZEN, f"tra cuu {CODE}")
    _run(cfg, engine)
    [reply] = _replies(modem)
    assert "Dang xu ly" in reply and "02/12/2025" not in reply and "ma bi mat" in reply


def test_unknown_code_gets_the_short_help_text(hall, modem):
    cfg, engine = hall
    modem.deliver(CITIZEN, "HS 000.00.21.H42-251125-9999")
    _run(cfg, engine)
    [reply] = _replies(modem)
    assert "Khong tim thay ho so" in reply and "HS <ma ho so>" in reply


def test_multipart_ucs2_lookup_is_joined_before_it_is_read(hall, modem):
    cfg, engine = hall
    text = f"Tra cứu {CODE} AB12CD — cảm ơn cán bộ Bộ phận Một cửa"
    indexes = modem.deliver(CITIZEN, text, ucs2=True, part_chars=20)
    assert len(indexes) >= 3
    _run(cfg, engine)
    [msg] = _incoming(engine)
    assert msg.text == text and msg.parts == len(indexes)
    [reply] = _replies(modem)
    assert "02/12/2025" in reply
    assert modem.memory() == []


def test_stop_opts_the_number_out_of_notices_and_is_confirmed_once(hall, modem):
    cfg, engine = hall
    modem.deliver(CITIZEN, "HỦY", ucs2=True)  # a phone sends marks as UCS-2
    _run(cfg, engine)
    with engine.connect() as conn:
        [row] = conn.execute(opt_outs.select()).all()
    assert row.phone_e164 == CITIZEN and row.keyword == "HUY"
    [reply] = _replies(modem)
    assert "khong nhan tin bao ho so nua" in reply
    with engine.begin() as conn:
        notice_id = outbox.enqueue(conn, key="after-stop", phone="0912 345 678", kind="result_ready",
                                   params={"code": CODE, "procedure": "x"})
        notice = conn.execute(notices.select().where(notices.c.id == notice_id)).one()
    assert notice.state == NoticeState.CANCELLED and "opted out" in notice.last_error
    modem.deliver(CITIZEN, "STOP")  # a second STOP is stored, not answered again
    _run(cfg, engine)
    Gateway(cfg, engine, lookup=lookup).run(until_idle=True)
    assert len(_incoming(engine)) == 2 and len(_replies(modem)) == 1


def test_a_sender_gets_at_most_the_hourly_number_of_answers(hall, modem):
    cfg, engine = hall
    for i in range(5):
        modem.deliver(CITIZEN, f"HS 000.00.21.H42-251125-{i:04d}", concat_ref=i)
    _run(cfg, engine)
    stored = _incoming(engine)
    assert len(stored) == 5
    assert len(_replies(modem)) == 3  # text_in_replies_per_hour
    assert sum(1 for m in stored if m.note and "not answered" in m.note) == 2


def test_a_sender_that_is_not_a_mobile_number_is_stored_and_never_answered(hall, modem):
    cfg, engine = hall
    modem.deliver("+8419001234", "HS x")  # not a Vietnamese mobile (a service number)
    _run(cfg, engine)
    [msg] = _incoming(engine)
    assert msg.phone_e164 is None and msg.reply_notice_id is None and modem.sent() == []
