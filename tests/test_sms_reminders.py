"""Reminders: an SMS the day before the appointment date, one when a ready result is not collected
after N days; at most one of each per dossier, never queued in quiet hours."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from kiosk.sms_lookup import reminders_due
from kiosk.store.ingest import DossierEvent, apply_event
from kiosk.store.schema import dossier_history, dossiers
from motcua.db import make_engine
from motcua.timeutil import utcnow
from sms_gateway.gateway import Gateway
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


def test_no_reminder_is_queued_during_quiet_hours(hall, modem):
    cfg, engine = hall(quiet_start="00:00:00", quiet_end="23:59:59")  # quiet all day but one second
    today = utcnow().astimezone(ZONE).date()
    _dossier(engine, "A-1", "processing", today + timedelta(days=1))
    Gateway(cfg, engine, reminders=reminders_due).run(until_idle=True)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notices)).scalar() == 0
