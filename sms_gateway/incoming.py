"""Text-in: what a citizen texts to the hall's number, and the answer through the same outbox.

    HS 000.00.21.H42-251125-0001 AB12CD      lookup: code, then the receipt's secret (optional)
    TRACUU 000.00.21.H42-251125-0001         same keyword in words ("Tra cứu", any case, marks or not)
    HUY | STOP                               no more notices to this number (recorded)

The answer never carries a name: with the right secret, the status and the appointment date; without
it, the status only; an unknown code or an unreadable message gets a short help text. A sender gets
at most `[sms] text_in_replies_per_hour` answers an hour (the rest are stored, unanswered), so a loop
with another automatic number, or someone probing codes, costs a few SMS, not a thousand. Every
message is stored (`incoming_messages`) and shown on the staff pages.

Dossiers belong to kiosk, which sms_gateway never imports: the process that runs the gateway passes
a `DossierLookup` (kiosk's is kiosk/sms_lookup.py, run by `kiosk sms-gateway`); without one, lookups
are stored and answered with the help text's "not available" form.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa

from motcua.phones import InvalidPhone, normalise_vn_mobile
from motcua.timeutil import utcnow
from sms_gateway import outbox
from sms_gateway.schema import incoming_messages, opt_outs
from sms_gateway.text import fold

INCOMPLETE_AFTER = timedelta(minutes=10)  # a long message whose other parts never came is stored as is
TEXT_MAX = 2000  # characters kept of one message (6 parts of UCS-2 is 402)


@dataclass(frozen=True)
class IncomingPart:
    """One received SMS-DELIVER as the modem holds it (a part, for a long message). It stays in the
    modem's memory until the gateway has stored it (`delete_stored`), so a crash loses nothing."""
    number: str
    text: str
    sent_at: str  # the service centre's time stamp, as Gammu gives it (part of the dedupe key)
    concat: tuple[int, int, int] | None  # (reference, parts, this part's number)
    location: tuple[int, int]  # (folder, location) in the modem's memory


class IncomingCommand(StrEnum):
    """What an incoming message asked for; stored in incoming_messages.command."""
    LOOKUP = "lookup"
    STOP = "stop"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LookupAnswer:
    """What may be told by SMS about a dossier: never a name or a phone number."""
    code: str
    status_label: str  # Vietnamese, as the kiosk shows it
    appointment_date: date | None
    secret_ok: bool


class DossierLookup(Protocol):
    def __call__(self, conn: sa.Connection, code: str, secret: str | None) -> LookupAnswer | None: ...


@dataclass(frozen=True)
class Parsed:
    command: IncomingCommand
    code: str | None = None
    secret: str | None = None


_LOOKUP = re.compile(r"^(?:HS|HOSO|HO SO|TRACUU|TRA CUU|TC)\s*[:\-]?\s+(\S+)(?:\s+(\S+))?", re.IGNORECASE)
_STOP = re.compile(r"^(?:HUY|STOP|DUNG|TU CHOI)\b", re.IGNORECASE)


def parse(text: str) -> Parsed:
    """The command in a message, whatever its case and marks ("Tra cứu", "tracuu", "HỦY")."""
    plain = " ".join(fold(text or "").upper().split())
    if _STOP.match(plain):
        return Parsed(IncomingCommand.STOP)
    match = _LOOKUP.match(plain)
    if match:
        return Parsed(IncomingCommand.LOOKUP, match.group(1).strip(".,;"), (match.group(2) or "").strip(".,;") or None)
    return Parsed(IncomingCommand.UNKNOWN)


@dataclass
class Message:
    """A whole incoming message: one part, or a long message's parts joined in order."""
    number: str
    text: str
    parts: list[IncomingPart]

    @property
    def dedupe_key(self) -> str:
        """The same memory slots read twice (announced, then swept) are one message."""
        raw = "|".join(f"{p.number}|{p.sent_at}|{p.concat}|{p.text}" for p in self.parts)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class Assembler:
    """Joins the parts of long messages; single ones pass straight through. Parts wait in memory
    (and in the modem's memory) at most INCOMPLETE_AFTER for their siblings."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, int, int], tuple[datetime, dict[int, IncomingPart]]] = {}

    def add(self, parts: list[IncomingPart], now: datetime | None = None) -> list[Message]:
        now = now or utcnow()
        out: list[Message] = []
        for part in parts:
            if part.concat is None:
                out.append(Message(part.number, part.text, [part]))
                continue
            ref, total, seq = part.concat
            key = (part.number, ref, total)
            first_seen, got = self._waiting.setdefault(key, (now, {}))
            got[seq] = part
            if len(got) == total:
                del self._waiting[key]
                ordered = [got[i] for i in sorted(got)]
                out.append(Message(part.number, "".join(p.text for p in ordered), ordered))
        for key, (first_seen, got) in list(self._waiting.items()):
            if now - first_seen >= INCOMPLETE_AFTER:
                del self._waiting[key]
                ordered = [got[i] for i in sorted(got)]
                out.append(Message(key[0], "".join(p.text for p in ordered), ordered))
        return out


def _replies_in_last_hour(conn: sa.Connection, phone_e164: str, now: datetime) -> int:
    return conn.execute(sa.select(sa.func.count()).where(
        incoming_messages.c.phone_e164 == phone_e164, incoming_messages.c.reply_notice_id.is_not(None),
        incoming_messages.c.received_at >= now - timedelta(hours=1))).scalar()


def handle(conn: sa.Connection, message: Message, *, lookup: DossierLookup | None, replies_per_hour: int,
           now: datetime | None = None) -> int | None:
    """Store one incoming message and queue its answer (same transaction). Returns the stored id,
    or None when this message was stored before (read again from the modem's memory)."""
    now = now or utcnow()
    try:
        phone = normalise_vn_mobile(message.number)
    except InvalidPhone:
        phone = None  # an operator's short code or an alphanumeric sender: stored, never answered
    parsed = parse(message.text)
    try:
        with conn.begin_nested():
            incoming_id = conn.execute(incoming_messages.insert().values(
                dedupe_key=message.dedupe_key, phone_e164=phone, sender=message.number[:64],
                text=message.text[:TEXT_MAX], parts=len(message.parts), received_at=now,
                command=parsed.command, dossier_code=(parsed.code or "")[:100] or None,
            )).inserted_primary_key[0]
    except sa.exc.IntegrityError:
        return None
    note = None
    kind, params = None, {}
    if phone is None:
        note = "sender is not a Vietnamese mobile number: not answered"
    elif parsed.command == IncomingCommand.STOP:
        if outbox.is_opted_out(conn, phone):
            note = "already opted out: not answered again"
        else:
            keyword = fold(message.text).split()[0].upper()[:16]
            conn.execute(opt_outs.insert().values(phone_e164=phone, at=now, keyword=keyword, incoming_id=incoming_id))
            kind = "reply_opted_out"
    elif _replies_in_last_hour(conn, phone, now) >= replies_per_hour:
        note = f"more than {replies_per_hour} answers to this number in an hour: not answered"
    elif parsed.command == IncomingCommand.LOOKUP and lookup is not None:
        answer = lookup(conn, parsed.code or "", parsed.secret)
        if answer is None:
            kind, params = "reply_help", {"code": parsed.code}
        else:
            kind = "reply_status_secret" if answer.secret_ok else "reply_status"
            params = {"code": answer.code, "status": answer.status_label,
                      "appointment_date": answer.appointment_date.isoformat() if answer.appointment_date else ""}
    else:
        kind = "reply_help"
        if parsed.command == IncomingCommand.LOOKUP:
            note = "no dossier lookup in this gateway process (run it with `kiosk sms-gateway`)"
    reply_id = None
    if kind:
        reply_id = outbox.enqueue(conn, key=f"reply:{incoming_id}", phone=phone, kind=kind, params=params,
                                  dossier_code=parsed.code if kind.startswith("reply_status") else None)
    conn.execute(incoming_messages.update().where(incoming_messages.c.id == incoming_id)
                 .values(reply_notice_id=reply_id, note=note))
    return incoming_id


def list_incoming(conn: sa.Connection, limit: int = 200) -> list[sa.RowMapping]:
    """Incoming messages, newest first (staff pages)."""
    return list(conn.execute(sa.select(incoming_messages).order_by(incoming_messages.c.id.desc())
                             .limit(limit)).mappings())


def list_opt_outs(conn: sa.Connection, limit: int = 500) -> list[sa.RowMapping]:
    """Numbers that opted out of notices, newest first (staff pages)."""
    return list(conn.execute(sa.select(opt_outs).order_by(opt_outs.c.at.desc()).limit(limit)).mappings())
