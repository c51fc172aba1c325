"""Reminders: an SMS the day before the appointment date, one when a ready result is not collected
after N days; at most one of each per dossier, never queued in quiet hours."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from kiosk.sms_lookup import reminders_due
from kiosk.store.ingest import DossierEvent, apply_event
from kiosk.store.schema import dossier_history, dossiers
from motcua.db import make_engine
from motcua.timeutil import utcnow
from sms_gateway.gateway import Gateway, in_quiet_hours
from sms_gateway.reminders import APPOINTMENT, UNCOLLECTED, queue_reminders
from sms_gateway.schema import notices
from tests.modem.harness import FAST_SMS, EmulatedModem

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    return EmulatedModem(tmp_path / "emulated-modem")


@pytest.fixture
def hall(make_config, modem):
    engines = []

    def _make(**sms):
        cfg = make_config(sms={**FAST_SMS, **sms}, modem=modem.modem_section())
        engines.append(make_engine(cfg))
        return cfg, engines[-1]

    yield _make
    for eng in engines:
        eng.dispose()


def _dossier(engine, code, status, appointment=None, phone="0912345678"):
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code=code, status=status, phone=phone, procedure="Đăng ký khai sinh",
                                       appointment_date=appointment), via="test")


def _ready_since(engine, code, days):
    with engine.begin() as conn:
        dossier_id = conn.execute(sa.select(dossiers.c.id).where(dossiers.c.code == code)).scalar_one()
        conn.execute(dossier_history.update().where(dossier_history.c.dossier_id == dossier_id)
                     .values(changed_at=utcnow() - timedelta(days=days)))


def test_uncollected_results_after_n_days_and_tomorrows_appointments_are_due_once(hall):
    _cfg, engine = hall()
    today = utcnow().astimezone(ZONE).date()
    _dossier(engine, "A-TOMORROW", "processing", today + timedelta(days=1))
    _dossier(engine, "A-LATER", "processing", today + timedelta(days=2))
    _dossier(engine, "A-DONE", "handed_over", today + timedelta(days=1))
    _dossier(engine, "A-NOPHONE", "processing", today + timedelta(days=1), phone=None)
    _dossier(engine, "R-OLD", "result_ready")
    _dossier(engine, "R-NEW", "result_ready")
    _ready_since(engine, "R-OLD", 4)
    _ready_since(engine, "R-NEW", 1)
    with engine.begin() as conn:
        due = reminders_due(conn, today, 3)
        assert sorted((r.kind, r.code) for r in due) == [(APPOINTMENT, "A-TOMORROW"), (UNCOLLECTED, "R-OLD")]
        assert len(queue_reminders(conn, due)) == 2
        assert queue_reminders(conn, reminders_due(conn, today, 3)) == []  # at most one of each per dossier
        assert reminders_due(conn, today, 0) and all(r.kind == APPOINTMENT for r in reminders_due(conn, today, 0))


def test_gateway_sends_the_appointment_reminder_once_across_runs(hall, modem):
    cfg, engine = hall()
    today = utcnow().astimezone(ZONE).date()
    _dossier(engine, "000.00.21.H42-251125-0007", "processing", today + timedelta(days=1))
    for _ in range(2):
        Gateway(cfg, engine, reminders=reminders_due).run(until_idle=True)
    [(number, _enc, text)] = modem.messages()
    assert number == "+84912345678"
    assert "Nhac lich" in text and (today + timedelta(days=1)).strftime("%d/%m/%Y") in text
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(notices.c.kind, notices.c.state, notices.c.dossier_code)).all()
    assert tuple(row) == ("reminder_appointment", "sent", "000.00.21.H42-251125-0007")


QUIET = {"quiet_start": "21:00:00", "quiet_end": "07:00:00"}  # the default window, across midnight


@pytest.mark.parametrize(("local", "quiet"), [
    (dtime(21, 0), True), (dtime(23, 59, 59), True), (dtime(0, 0), True), (dtime(6, 59, 59), True),
    (dtime(7, 0), False), (dtime(12, 0), False), (dtime(20, 59, 59), False),
])
def test_quiet_hours_from_21_to_7_cross_midnight(local, quiet):
    moment = datetime.combine(date(2026, 12, 7), local, ZONE)
    assert in_quiet_hours(moment, dtime(21), dtime(7)) is quiet


@pytest.mark.clock
@pytest.mark.parametrize(("local", "queued"), [
    (dtime(22, 30), False), (dtime(3, 15), False), (dtime(6, 57), False),  # inside 21:00-07:00
    (dtime(7, 1), True), (dtime(20, 57), True),  # outside; minutes of margin for the ticking clock
])
def test_reminders_are_queued_only_outside_quiet_hours(hall, modem, local, queued):
    cfg, engine = hall(**QUIET)
    moment = datetime.combine(date(2026, 12, 7), local, ZONE)  # a Monday; any day behaves the same
    with time_machine.travel(moment, tick=True):
        _dossier(engine, "A-1", "processing", moment.date() + timedelta(days=1))
        Gateway(cfg, engine, reminders=reminders_due).run(until_idle=True)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.kind, notices.c.state)).all()
    assert [tuple(r) for r in rows] == ([("reminder_appointment", "sent")] if queued else [])
    assert len(modem.messages()) == (1 if queued else 0)
