"""Uncertain notices that settle themselves where the evidence allows (issue 15).

A notice is `uncertain` when the gateway lost track of it after the modem may have taken it (a
crash, a hang, an unplug mid-send). With delivery reports on, the network itself tells what went out:

- evidence: a delivery report that matched no sent notice (its reference was never recorded, because
  the gateway died before writing it) for the number of the one uncertain notice of that number,
  arriving after it became uncertain and within `[sms] resolve_window_s`: the notice is marked sent.
  A multipart notice needs one report per part; fewer is recorded as half-sent ("k of n parts") and
  left to an official, so a citizen with half a message is never silent.
- no evidence: an uncertain notice with no report after `[sms] resolve_wait_s`, while reports kept
  arriving for at least `resolve_min_reports` messages sent after it, never went out: it is sent again,
  once, automatically, with its recorded text, and the trail says so.
- everything else (several uncertain notices for one number, a second uncertainty after the
  automatic resend, no reports arriving at all) stays uncertain for an official.

With several gateways each settles only the notices it held, by its own modem's reports (message
references and delivery reports are per modem); a dead gateway's notices wait for it or an official.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from motcua.timeutil import utcnow
from sms_gateway.outbox import DeliveryStatus, NoticeState, log_event
from sms_gateway.schema import notice_events, notices, sms_reports

ACTOR = "gateway"
AUTO_RESEND = "uncertain: no delivery report while later messages were reported; sent again once automatically"
SLACK = timedelta(minutes=1)  # a report read just before the uncertain mark was written


@dataclass
class Resolution:
    marked_sent: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    half_sent: list[int] = field(default_factory=list)


def record_unmatched_report(conn: sa.Connection, *, phone_e164: str | None, message_ref: int, delivered: bool,
                            at: datetime | None = None, gateway: str | None = None) -> None:
    """Keep a delivery report no sent notice claimed: it may be the evidence for an uncertain one.
    `gateway`: whose modem received it."""
    conn.execute(sms_reports.insert().values(phone_e164=phone_e164, message_ref=message_ref,
                                             delivered=delivered, received_at=at or utcnow(), gateway=gateway))


def has_uncertain(conn: sa.Connection) -> bool:
    return conn.execute(sa.select(notices.c.id).where(notices.c.state == NoticeState.UNCERTAIN)
                        .limit(1)).first() is not None


def _uncertain_since(conn: sa.Connection, notice_id: int, fallback: datetime) -> datetime:
    at = conn.execute(sa.select(sa.func.max(notice_events.c.at)).where(
        notice_events.c.notice_id == notice_id, notice_events.c.to_state == NoticeState.UNCERTAIN)).scalar()
    return at or fallback


def _auto_resent_before(conn: sa.Connection, notice_id: int) -> bool:
    return conn.execute(sa.select(notice_events.c.id).where(
        notice_events.c.notice_id == notice_id, notice_events.c.detail == AUTO_RESEND).limit(1)).first() is not None


def _known_refs(conn: sa.Connection, phone: str, since: datetime, holder: str | None = None) -> set[int]:
    """References already recorded for sent notices to this number (a duplicate report is no evidence)."""
    refs: set[int] = set()
    query = sa.select(notices.c.message_refs, notices.c.message_ref).where(
        notices.c.phone_e164 == phone, notices.c.state == NoticeState.SENT, notices.c.sent_at >= since)
    if holder is not None:
        query = query.where(notices.c.holder == holder)
    rows = conn.execute(query).all()
    for many, last in rows:
        refs.update(int(r) for r in (many or "").split(",") if r.strip().isdigit())
        if last is not None:
            refs.add(last)
    return refs


def resolve_uncertain(conn: sa.Connection, *, window_s: float, wait_s: float, min_reports: int,
                      now: datetime | None = None, limit: int = 200, holder: str | None = None) -> Resolution:
    """Settle the uncertain notices the evidence allows (see the module docstring). `holder`: only the
    notices that gateway held (and those from before holders were recorded), by its own reports."""
    now = now or utcnow()
    out = Resolution()
    query = sa.select(notices).where(notices.c.state == NoticeState.UNCERTAIN)
    if holder is not None:
        query = query.where(sa.or_(notices.c.holder == holder, notices.c.holder.is_(None)))
    rows = conn.execute(query.order_by(notices.c.id).limit(limit)).all()
    per_phone: dict[str | None, int] = {}
    for row in rows:
        per_phone[row.phone_e164] = per_phone.get(row.phone_e164, 0) + 1
    for row in rows:
        if not row.phone_e164:
            continue
        since = _uncertain_since(conn, row.id, row.updated_at)
        reports = sa.select(sms_reports).where(
            sms_reports.c.phone_e164 == row.phone_e164, sms_reports.c.notice_id.is_(None),
            sms_reports.c.received_at >= since - SLACK,
            sms_reports.c.received_at <= since + timedelta(seconds=window_s),
        )
        if holder is not None:
            reports = reports.where(sms_reports.c.gateway == holder)
        evidence = conn.execute(reports.order_by(sms_reports.c.id)).all()
        known = _known_refs(conn, row.phone_e164, since - timedelta(seconds=window_s), holder)
        evidence = [e for e in evidence if e.message_ref not in known]
        if evidence:
            if per_phone[row.phone_e164] > 1:
                continue  # which of them went out? an official decides
            parts = row.parts or 1
            if len(evidence) >= parts:
                _mark_sent_by_reports(conn, row, evidence[:parts], now)
                out.marked_sent.append(row.id)
            elif not (row.last_error or "").startswith("half-sent"):
                detail = (f"half-sent: delivery reports for {len(evidence)} of {parts} parts; "
                          "the citizen may have only part of the message")
                conn.execute(notices.update().where(notices.c.id == row.id,
                                                    notices.c.state == NoticeState.UNCERTAIN)
                             .values(last_error=detail, updated_at=now))
                log_event(conn, row.id, NoticeState.UNCERTAIN, NoticeState.UNCERTAIN, ACTOR, detail, now)
                out.half_sent.append(row.id)
            continue
        if now - since < timedelta(seconds=wait_s) or _auto_resent_before(conn, row.id):
            continue
        later = sa.select(sa.func.count()).where(notices.c.delivered_at > since, notices.c.id != row.id)
        if holder is not None:  # silence on this modem is only telling if this modem's reports arrive
            later = later.where(notices.c.holder == holder)
        later_reported = conn.execute(later).scalar()
        if later_reported < min_reports:
            continue  # no reports arriving at all: silence proves nothing
        moved = conn.execute(notices.update().where(notices.c.id == row.id,
                                                    notices.c.state == NoticeState.UNCERTAIN)
                             .values(state=NoticeState.QUEUED, attempts=0, next_attempt_at=now,
                                     updated_at=now))
        if moved.rowcount == 1:
            log_event(conn, row.id, NoticeState.UNCERTAIN, NoticeState.QUEUED, ACTOR, AUTO_RESEND, now)
            out.resent.append(row.id)
    return out


def _mark_sent_by_reports(conn: sa.Connection, row: sa.Row, evidence: list[sa.Row], now: datetime) -> None:
    delivered = all(e.delivered for e in evidence)
    refs = [e.message_ref for e in evidence]
    conn.execute(notices.update().where(notices.c.id == row.id, notices.c.state == NoticeState.UNCERTAIN).values(
        state=NoticeState.SENT, sent_at=row.sent_at or evidence[0].received_at, updated_at=now,
        message_ref=refs[-1], message_refs=",".join(map(str, refs)), last_error=None,
        delivery_status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED,
        delivered_at=evidence[-1].received_at if delivered else None,
    ))
    conn.execute(sms_reports.update().where(sms_reports.c.id.in_([e.id for e in evidence]))
                 .values(notice_id=row.id))
    log_event(conn, row.id, NoticeState.UNCERTAIN, NoticeState.SENT, ACTOR,
              f"uncertain: resolved by {len(refs)} delivery report(s) for this number (ref {refs})", now)
