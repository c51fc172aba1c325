"""Dossier lookup for text-in SMS ("HS <code> <secret>"), the dossiers due a reminder, and
`kiosk sms-gateway`, which runs the SMS gateway with both. sms_gateway never imports kiosk, so the
dossier store reaches it this way: the motcua-sms service runs `kiosk sms-gateway` (the same gateway
as `sms-gateway run`, plus lookups and reminders)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa

from kiosk.store import codes
from kiosk.store.dossiers import FINISHED, find, secret_matches
from kiosk.store.schema import dossier_history, dossiers
from motcua.cli import AppContext
from motcua.devicelock import DeviceBusy
from motcua.statuses import STATUSES
from sms_gateway.api import APPOINTMENT, UNCOLLECTED, LookupAnswer, Reminder, run_gateway

REMINDER_BATCH = 500  # dossiers looked at per pass and kind


def lookup(conn: sa.Connection, code: str, secret: str | None) -> LookupAnswer | None:
    """What an SMS may say about a dossier: its status, and with the receipt's secret its appointment
    date. Never a name or a phone number. None: no such dossier."""
    # Full codes only, separators forgiven: the keypad's short forms would let a texter probe codes.
    stored = codes.resolve(conn, code, (), date.today(), 0)
    row = find(conn, stored) if stored else None
    if row is None:
        return None
    status = STATUSES.get(row["status"])
    ok = secret_matches(row, secret)
    return LookupAnswer(code=row["code"], status_label=status.label_vi if status else row["status"],
                        appointment_date=row["appointment_date"] if ok else None, secret_ok=ok)


def reminders_due(conn: sa.Connection, today: date, uncollected_days: int, tz: str = "Asia/Ho_Chi_Minh",
                  appointment: bool = True) -> list[Reminder]:
    """Dossiers due a reminder today: the appointment is tomorrow and the dossier is not finished; or the
    result has been ready (the latest change into result_ready) for `uncollected_days` days or more."""
    out: list[Reminder] = []
    if appointment:
        rows = conn.execute(sa.select(dossiers.c.code, dossiers.c.phone, dossiers.c.procedure,
                                      dossiers.c.appointment_date)
                            .where(dossiers.c.appointment_date == today + timedelta(days=1),
                                   dossiers.c.phone.is_not(None), dossiers.c.status.not_in(FINISHED))
                            .limit(REMINDER_BATCH)).all()
        out += [Reminder(APPOINTMENT, r.code, r.phone, r.procedure, r.appointment_date) for r in rows]
    if uncollected_days > 0:
        cutoff = datetime.combine(today - timedelta(days=uncollected_days), time.max, ZoneInfo(tz))
        ready_since = (sa.select(sa.func.max(dossier_history.c.changed_at))
                       .where(dossier_history.c.dossier_id == dossiers.c.id,
                              dossier_history.c.to_status == "result_ready").scalar_subquery())
        rows = conn.execute(sa.select(dossiers.c.code, dossiers.c.phone, dossiers.c.procedure,
                                      dossiers.c.appointment_date)
                            .where(dossiers.c.status == "result_ready", dossiers.c.phone.is_not(None),
                                   ready_since <= cutoff)
                            .limit(REMINDER_BATCH)).all()
        out += [Reminder(UNCOLLECTED, r.code, r.phone, r.procedure, r.appointment_date) for r in rows]
    return out


@click.command("sms-gateway")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due (for scripts and tests).")
@click.pass_obj
def sms_gateway_command(obj: AppContext, until_idle: bool) -> None:
    """Run the SMS gateway with text-in dossier lookups (the motcua-sms service)."""
    try:
        raise SystemExit(run_gateway(obj.config, obj.engine, lookup=lookup, reminders=reminders_due,
                                     until_idle=until_idle))
    except DeviceBusy as exc:
        raise click.ClickException(f"the modem is taken: {exc}") from None
