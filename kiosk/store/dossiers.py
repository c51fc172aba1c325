"""Reading dossiers for screens, and the small staff/citizen updates that go through ingest."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

import sqlalchemy as sa

from kiosk.store.schema import dossier_history, dossiers
from motcua.phones import InvalidPhone, mask, normalise_vn_mobile
from motcua.statuses import STATUSES
from motcua.timeutil import utcnow

FINISHED = frozenset({"result_ready", "handed_over", "denied", "cancelled"})


@dataclass(frozen=True)
class PublicDossier:
    """What a public kiosk screen may show. Names and phones are masked even with the secret;
    without it only status, procedure and dates are shown. ID numbers are never stored."""

    code: str
    status: str
    procedure: str
    field: str
    appointment_date: date | None
    received_on: date | None
    overdue: bool
    secret_ok: bool
    applicant_masked: str | None
    phone_masked: str | None
    has_phone: bool


def find(conn: sa.Connection, code: str) -> Mapping[str, Any] | None:
    return conn.execute(sa.select(dossiers).where(dossiers.c.code == code)).mappings().first()


def secret_matches(row: Mapping[str, Any], secret: str | None) -> bool:
    stored = row["secret"]
    if not stored or not secret:
        return False
    return hmac.compare_digest(stored.strip().upper().encode(), secret.strip().upper().encode())


# Waiting on the citizen (documents to bring), not on the office: past the date is not "Quá hạn".
WAITING_ON_CITIZEN = frozenset({"more_documents"})


def is_overdue(status: str, appointment: date | None, today: date) -> bool:
    """Past the appointment date while the office still owes the result (screen and paper alike)."""
    return (appointment is not None and appointment < today and status not in FINISHED
            and status not in WAITING_ON_CITIZEN)


def mask_name(name: str) -> str:
    """'Nguyễn Văn Hùng' -> 'N***** V** Hùng': the given name stays so the citizen recognises it."""
    parts = (name or "").split()
    if not parts:
        return ""
    return " ".join([p[0] + "*" * (len(p) - 1) for p in parts[:-1]] + [parts[-1]])


def public_view(row: Mapping[str, Any], secret: str | None, today: date) -> PublicDossier:
    ok = secret_matches(row, secret)
    received = row["received_at"]
    return PublicDossier(
        code=row["code"],
        status=row["status"],
        procedure=row["procedure"],
        field=row["field"],
        appointment_date=row["appointment_date"],
        received_on=received.date() if received else None,
        overdue=is_overdue(row["status"], row["appointment_date"], today),
        secret_ok=ok,
        applicant_masked=mask_name(row["applicant_name"]) if ok else None,
        phone_masked=mask(row["phone"]) if ok and row["phone"] else None,
        has_phone=bool(row["phone"]),
    )


def history(conn: sa.Connection, dossier_id: int) -> list[Mapping[str, Any]]:
    return list(
        conn.execute(
            sa.select(dossier_history).where(dossier_history.c.dossier_id == dossier_id).order_by(dossier_history.c.id)
        ).mappings()
    )


def set_phone(conn: sa.Connection, code: str, phone: str, *, via: str, actor: str | None = None) -> str:
    """Add or correct a dossier's phone (validated, stored as +84...) through the ingest path.

    Raises InvalidPhone with a reason, or LookupError when the dossier does not exist.
    """
    from kiosk.store.ingest import DossierEvent, apply_event

    e164 = normalise_vn_mobile(phone)
    row = find(conn, code)
    if row is None:
        raise LookupError(code)
    apply_event(conn, DossierEvent(code=code, status=row["status"], phone=e164), via=via, actor=actor, force=True)
    return e164


class PhoneAlreadySet(Exception):
    """Someone else added a phone to this dossier first (the kiosk never overwrites one)."""


def add_phone_once(conn: sa.Connection, code: str, phone: str, *, via: str, actor: str) -> str:
    """A citizen's sign-up for SMS: sets the phone only if the dossier has none, in one conditional
    UPDATE, so of several parallel sign-ups exactly one is told "saved" (the first writer wins).
    A history row records it (the status does not change; `actor` says what happened).

    Raises InvalidPhone, LookupError (no dossier) or PhoneAlreadySet.
    """
    e164 = normalise_vn_mobile(phone)
    now = utcnow()
    changed = conn.execute(
        dossiers.update().where(dossiers.c.code == code, dossiers.c.phone.is_(None))
        .values(phone=e164, updated_at=now).returning(dossiers.c.id, dossiers.c.status)
    ).first()
    if changed is None:
        if find(conn, code) is None:
            raise LookupError(code)
        raise PhoneAlreadySet(code)
    conn.execute(dossier_history.insert().values(
        dossier_id=changed.id, from_status=changed.status, to_status=changed.status, via=via, actor=actor,
        changed_at=now))
    return e164


def set_status(conn: sa.Connection, code: str, status: str, *, via: str, actor: str | None = None) -> str:
    """A staff status update: the same path as ingest, so a change into a notifying status
    enqueues exactly one notice."""
    # The ingest path (and the SMS outbox behind it) is imported by the writers only: the print
    # worker reads dossiers through this module and stays without them.
    from kiosk.store.ingest import DossierEvent, apply_event

    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if find(conn, code) is None:
        raise LookupError(code)
    return apply_event(conn, DossierEvent(code=code, status=status), via=via, actor=actor, force=True)


__all__ = ["PublicDossier", "find", "public_view", "history", "set_phone", "add_phone_once", "PhoneAlreadySet",
           "set_status", "InvalidPhone"]
