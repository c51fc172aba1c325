"""Uncertain notices that settle themselves by delivery reports (sms_gateway/resolve.py), on the
AT-modem emulator whose network keeps each report in the modem's memory."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.gateway import Gateway
from sms_gateway.outbox import NoticeState
from sms_gateway.resolve import AUTO_RESEND
from sms_gateway.schema import notice_events, notices, sms_reports
from tests.modem.harness import FAST_SMS, EmulatedModem


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    m = EmulatedModem(tmp_path / "emulated-modem")
    m.scenario(status_reports="delivered", store_status_reports=True)
    return m


@pytest.fixture
def setup(make_config, modem):
    engines = []

    def _setup(**sms):
        cfg = make_config(sms={**FAST_SMS, "resolve_wait_s": 0.5, "resolve_min_reports": 2, **sms},
                          modem=modem.modem_section(send_timeout_s=1.5))
        engines.append(make_engine(cfg))
        return cfg, engines[-1]

    yield _setup
    for eng in engines:
        eng.dispose()


def _enqueue(engine, n, text="Thong bao so {i}", first_phone=0):
    with engine.begin() as conn:
        return [outbox.enqueue(conn, key=f"r{i}", phone=f"0912{first_phone + i:06d}", kind="text",
                               params={"text": text.format(i=i)}) for i in range(n)]


def _row(engine, notice_id):
    with engine.connect() as conn:
        return conn.execute(notices.select().where(notices.c.id == notice_id)).one()


def _events(engine, notice_id):
    with engine.connect() as conn:
        return [r.detail for r in conn.execute(sa.select(notice_events.c.detail)
                                               .where(notice_events.c.notice_id == notice_id))]


def _run_until(cfg, engine, done, tries=5):
    """Run the gateway (as the daemon would keep running) until `done()` or `tries` runs."""
    for _ in range(tries):
        Gateway(cfg, engine).run(until_idle=True)
        if done():
            return
        time.sleep(0.6)  # past resolve_wait_s


def test_uncertain_notice_whose_report_arrives_is_marked_sent_without_a_resend(setup, modem):
    cfg, engine = setup()
    modem.scenario(hang_sends=1, accept_before_hang=True)  # the network took it; the modem never said
    first, second = _enqueue(engine, 2)
    _run_until(cfg, engine, lambda: _row(engine, first).state == NoticeState.SENT)
    row = _row(engine, first)
    assert row.state == NoticeState.SENT and row.delivery_status == "delivered"
    assert any("resolved by 1 delivery report" in d for d in _events(engine, first))
    assert len(modem.sent()) == 2  # each went out once
    with engine.connect() as conn:
        assert conn.execute(sa.select(sms_reports.c.notice_id)).scalars().all() == [first]


def test_uncertain_notice_with_no_report_while_later_ones_arrive_is_sent_again_once(setup, modem):
    cfg, engine = setup()
    modem.scenario(hang_sends=1)  # never reached the network
    ids = _enqueue(engine, 3)
    _run_until(cfg, engine, lambda: _row(engine, ids[0]).state == NoticeState.SENT)
    row = _row(engine, ids[0])
    assert row.state == NoticeState.SENT and row.attempts == 1
    assert AUTO_RESEND in _events(engine, ids[0])
    texts = [m[2] for m in modem.messages()]
    assert sorted(texts) == ["Thong bao so 0", "Thong bao so 1", "Thong bao so 2"]  # once each


def test_second_uncertainty_after_the_automatic_resend_is_left_to_an_official(setup, modem):
    cfg, engine = setup()
    modem.scenario(hang_to={"+84912000000": 2})  # the first send and the automatic resend hang
    ids = _enqueue(engine, 4)
    for run in range(3):
        if run:
            time.sleep(0.6)  # past resolve_wait_s (none after the last run: nothing runs after it)
        Gateway(cfg, engine).run(until_idle=True)
    row = _row(engine, ids[0])
    assert row.state == NoticeState.UNCERTAIN
    assert _events(engine, ids[0]).count(AUTO_RESEND) == 1
    assert all(_row(engine, i).state == NoticeState.SENT for i in ids[1:])


def test_silence_without_reports_for_other_messages_proves_nothing(setup, modem):
    cfg, engine = setup()
    modem.scenario(hang_sends=1, status_reports=None)  # the network sends no reports at all
    ids = _enqueue(engine, 3)
    for run in range(2):
        if run:
            time.sleep(0.6)  # past resolve_wait_s
        Gateway(cfg, engine).run(until_idle=True)
    assert _row(engine, ids[0]).state == NoticeState.UNCERTAIN
    assert AUTO_RESEND not in _events(engine, ids[0])


def test_multipart_notice_cut_after_its_first_part_is_recorded_half_sent(setup, modem):
    cfg, engine = setup(encoding="ascii", max_parts=3)
    modem.scenario(unplug_after_sends=1)  # part 1 taken, then the modem is gone
    [notice_id] = _enqueue(engine, 1, text="Ho so {i} " + "x" * 300)
    Gateway(cfg, engine).run(until_idle=True)
    modem.scenario(unplugged=False)
    _run_until(cfg, engine, lambda: _row(engine, notice_id).last_error.startswith("half-sent"))
    row = _row(engine, notice_id)
    assert row.state == NoticeState.UNCERTAIN and row.parts == 3
    assert row.last_error.startswith("half-sent: delivery reports for 1 of 3 parts")
    assert len(modem.sent()) == 1
