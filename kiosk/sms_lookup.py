"""Dossier lookup for text-in SMS ("HS <code> <secret>"), and `kiosk sms-gateway`, which runs the SMS
gateway with it. sms_gateway never imports kiosk, so the dossier store reaches it this way: the
motcua-sms service runs `kiosk sms-gateway` (the same gateway as `sms-gateway run`, plus lookups)."""
from __future__ import annotations

from datetime import date

import click
import sqlalchemy as sa

from kiosk.store import codes
from kiosk.store.dossiers import find, secret_matches
from motcua.cli import AppContext
from motcua.devicelock import DeviceBusy
from motcua.statuses import STATUSES
from sms_gateway.api import LookupAnswer, run_gateway


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


@click.command("sms-gateway")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due (for scripts and tests).")
@click.pass_obj
def sms_gateway_command(obj: AppContext, until_idle: bool) -> None:
    """Run the SMS gateway with text-in dossier lookups (the motcua-sms service)."""
    try:
        raise SystemExit(run_gateway(obj.config, obj.engine, lookup=lookup, until_idle=until_idle))
    except DeviceBusy as exc:
        raise click.ClickException(f"the modem is taken: {exc}") from None
