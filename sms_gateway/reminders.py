"""Reminders (issue 15): an SMS the day before a dossier's appointment date, and one when a ready
result has not been collected after `[sms] reminder_uncollected_days`.

Which dossiers are due is the dossier store's knowledge (kiosk), so the process running the gateway
passes a `ReminderSource` (kiosk's is kiosk/sms_lookup.py). This module only queues them: through
`outbox.enqueue`, with the key `reminder:<kind>:<code>`, so each dossier gets at most one of each,
whatever the number of passes, restarts or gateways. Quiet hours are the gateway's send rule as for
every notice; an opted-out number's reminder is stored cancelled, as every notice to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import sqlalchemy as sa

from sms_gateway import outbox

APPOINTMENT = "reminder_appointment"
UNCOLLECTED = "reminder_uncollected"


@dataclass(frozen=True)
class Reminder:
    kind: str  # APPOINTMENT or UNCOLLECTED
    code: str
    phone: str
    procedure: str
    appointment_date: date | None


class ReminderSource(Protocol):
    def __call__(self, conn: sa.Connection, today: date, uncollected_days: int, tz: str,
                 appointment: bool) -> list[Reminder]: ...


def queue_reminders(conn: sa.Connection, due: list[Reminder]) -> list[int]:
    """Queue the reminders not queued before; the new notice ids."""
    out = []
    for r in due:
        notice_id = outbox.enqueue(conn, key=f"reminder:{r.kind}:{r.code}", phone=r.phone, kind=r.kind,
                                   dossier_code=r.code, params={"code": r.code, "procedure": r.procedure,
                                                                "appointment_date": r.appointment_date})
        if notice_id is not None:
            out.append(notice_id)
    return out
