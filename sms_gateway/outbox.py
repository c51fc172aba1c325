"""The outbox: durable notices moving through named states.

`enqueue` is the one way in. It runs inside the caller's transaction, so a dossier's status change
and its notice commit together or not at all, and its idempotency key makes a repeated event a
no-op: the same change never makes two notices.

States (see docs/sms.md):

    queued -> sending -> sent                 (delivery_status: pending -> delivered | failed)
              sending -> retry -> sending ... (temporary error, exponential backoff)
              sending -> failed               (permanent: invalid number, operator refused, too many tries)
              sending -> uncertain            (timeout or crash after the modem may have taken it)
    queued | retry -> cancelled               (staff)
    failed | cancelled -> queued              (staff: retry)
    uncertain -> queued | cancelled           (staff: resolve_uncertain)

The gateway claims a notice (queued -> sending) in a committed transaction before handing it to the
modem (the same transaction records the previous message's outcome), so a crash can only leave
`sending` rows, which the next start turns into `uncertain`: never resent on its own, never lost.

Several gateways share one outbox (one per modem, see docs/sms.md). The claim is atomic: the due row
is read `FOR UPDATE SKIP LOCKED` on PostgreSQL (two gateways never wait on, or take, the same row) and
under BEGIN IMMEDIATE on SQLite (one writer at a time). The claim records the holder (`station/modem`);
only the holder finishes its notice, a gateway's start recovers only its own `sending` notices, and a
notice whose holder's heartbeat is stale is made `uncertain` by any live gateway (`sweep_abandoned`).
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from motcua.phones import InvalidPhone, normalise_vn_mobile
from motcua.timeutil import utcnow
from sms_gateway.health import DEFAULT_GATEWAY
from sms_gateway.schema import modem_health, notice_events, notices, opt_outs


class NoticeState(StrEnum):
    """States a notice moves through (the diagram above); stored as these strings."""
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"  # waiting to retry after a temporary error
    FAILED = "failed"  # permanent, with the reason in last_error
    UNCERTAIN = "uncertain"  # the modem may have taken it; an official decides
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    """What the operator's delivery report said about a sent notice."""
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


DUE_STATES = (NoticeState.QUEUED, NoticeState.RETRY)
# Staff actions and the states each applies to: one list, read by the staff pages for their buttons.
RETRYABLE = (NoticeState.FAILED, NoticeState.CANCELLED, NoticeState.RETRY)
CANCELLABLE = (NoticeState.QUEUED, NoticeState.RETRY, NoticeState.FAILED)
REPLY_PREFIX = "reply_"  # answers to the citizen's own text-in: sent even to an opted-out number
_BY_KEY = sa.select(notices.c.id).where(notices.c.idempotency_key == sa.bindparam("key"))


def enqueue(
    conn: sa.Connection,
    *,
    key: str,
    phone: str,
    kind: str,
    params: dict[str, Any] | None = None,
    dossier_code: str | None = None,
) -> int | None:
    """Queue one notice unless a notice with this idempotency key exists.

    Returns the new notice id, or None when the key was already used. A number that is not a
    Vietnamese mobile is stored as `failed` at once, with the reason, so it never loops in retries.
    """
    if not key or len(key) > 200:
        raise ValueError("idempotency key must be 1..200 characters")
    exists = conn.execute(_BY_KEY, {"key": key}).first()
    if exists:
        return None
    now = utcnow()
    state, e164, error = NoticeState.QUEUED, None, None
    try:
        e164 = normalise_vn_mobile(phone)
    except InvalidPhone as exc:
        state, error = NoticeState.FAILED, f"invalid phone number: {exc}"
    else:
        if not kind.startswith(REPLY_PREFIX) and is_opted_out(conn, e164):
            state, error = NoticeState.CANCELLED, "the citizen opted out of notices (HUY/STOP)"
    # A concurrent writer with the same key loses on the unique constraint; a savepoint keeps the
    # caller's transaction usable in that case.
    try:
        with conn.begin_nested():
            result = conn.execute(
                notices.insert(),
                dict(
                    idempotency_key=key,
                    dossier_code=dossier_code,
                    kind=kind,
                    phone_raw=str(phone or "")[:64],
                    phone_e164=e164,
                    params=json.dumps(params or {}, ensure_ascii=False, sort_keys=True, default=str),
                    state=state,
                    attempts=0,
                    next_attempt_at=now if state == NoticeState.QUEUED else None,
                    last_error=error,
                    created_at=now,
                    updated_at=now,
                ),
            )
    except sa.exc.IntegrityError:
        return None
    return result.inserted_primary_key[0]


def is_opted_out(conn: sa.Connection, e164: str) -> bool:
    """The number texted HUY/STOP (sms_gateway/incoming.py): notices to it are not sent."""
    return conn.execute(sa.select(opt_outs.c.phone_e164).where(opt_outs.c.phone_e164 == e164)).first() is not None


# --- staff actions ------------------------------------------------------------------------------

def _load(conn: sa.Connection, notice_id: int) -> sa.Row:
    row = conn.execute(sa.select(notices).where(notices.c.id == notice_id)).first()
    if row is None:
        raise ValueError(f"notice {notice_id} does not exist")
    return row


def _move(conn: sa.Connection, row: sa.Row, to_state: str, actor: str | None, detail: str | None,
          **values: Any) -> None:
    """Change state only if nobody (the gateway) moved the row since we read it."""
    now = utcnow()
    result = conn.execute(
        notices.update()
        .where(notices.c.id == row.id, notices.c.state == row.state)
        .values(state=to_state, updated_at=now, **values)
    )
    if result.rowcount != 1:
        raise ValueError(f"notice {row.id} changed state meanwhile; reload and try again")
    log_event(conn, row.id, row.state, to_state, actor, detail, now)


def log_event(conn: sa.Connection, notice_id: int, from_state: str | None, to_state: str,
              actor: str | None, detail: str | None, at: datetime | None = None) -> None:
    conn.execute(notice_events.insert().values(
        notice_id=notice_id, at=at or utcnow(), actor=actor, from_state=from_state, to_state=to_state,
        detail=detail,
    ))


def retry(conn: sa.Connection, notice_id: int, actor: str | None = None) -> None:
    """Send a failed, cancelled or waiting notice again as soon as the gateway can."""
    row = _load(conn, notice_id)
    if row.state not in RETRYABLE:
        raise ValueError(f"notice {notice_id} is {row.state}; only failed, cancelled or waiting notices can be retried")
    try:
        e164 = normalise_vn_mobile(row.phone_raw)
    except InvalidPhone as exc:
        raise ValueError(f"notice {notice_id} cannot be sent: invalid phone number: {exc}") from None
    _move(conn, row, NoticeState.QUEUED, actor, "retry requested", phone_e164=e164, attempts=0,
          next_attempt_at=utcnow(), last_error=None, cms_code=None)


def cancel(conn: sa.Connection, notice_id: int, actor: str | None = None) -> None:
    """Stop a notice that has not been sent yet, or close a failed one for good."""
    row = _load(conn, notice_id)
    if row.state not in CANCELLABLE:
        raise ValueError(f"notice {notice_id} is {row.state}; only queued, waiting or failed notices can be cancelled")
    _move(conn, row, NoticeState.CANCELLED, actor, "cancelled", next_attempt_at=None)


def resolve_uncertain(conn: sa.Connection, notice_id: int, resend: bool, actor: str | None = None) -> None:
    """An official decides an uncertain notice: send it again (the citizen may get two), or mark
    it sent (the citizen confirmed it arrived, or the official judges it did; it counts as used)."""
    row = _load(conn, notice_id)
    if row.state != NoticeState.UNCERTAIN:
        raise ValueError(f"notice {notice_id} is {row.state}, not uncertain")
    if resend:
        _move(conn, row, NoticeState.QUEUED, actor, "uncertain: resend decided", attempts=0, next_attempt_at=utcnow())
    else:
        _move(conn, row, NoticeState.SENT, actor, "uncertain: marked sent by an official", next_attempt_at=None,
              sent_at=row.sent_at or row.updated_at)


# --- reports ------------------------------------------------------------------------------------

def list_notices(conn: sa.Connection, *, state: str | None = None, dossier_code: str | None = None,
                 limit: int = 200) -> list[sa.RowMapping]:
    """Notices newest first, optionally only one state or one dossier's."""
    query = sa.select(notices).order_by(notices.c.id.desc()).limit(limit)
    if state:
        query = query.where(notices.c.state == state)
    if dossier_code is not None:
        query = query.where(notices.c.dossier_code == dossier_code)
    return list(conn.execute(query).mappings())


def counts_by_state(conn: sa.Connection) -> dict[str, int]:
    """Every state with its number of notices (zero included)."""
    rows = conn.execute(sa.select(notices.c.state, sa.func.count()).group_by(notices.c.state)).all()
    counts = dict.fromkeys(NoticeState, 0)
    counts.update({state: n for state, n in rows})
    return counts


def daily_usage(conn: sa.Connection, days: int = 14, tz: str = "Asia/Ho_Chi_Minh") -> list[dict[str, Any]]:
    """Messages and billed parts sent per local day, oldest first, every day present."""
    zone = ZoneInfo(tz)
    today = utcnow().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), zone)
    rows = conn.execute(
        sa.select(notices.c.sent_at, notices.c.parts)
        .where(notices.c.sent_at >= start, notices.c.state == NoticeState.SENT)
    ).all()
    out: dict[date, dict[str, Any]] = {
        first + timedelta(days=i): {"day": first + timedelta(days=i), "sent": 0, "parts": 0} for i in range(days)
    }
    for sent_at, parts in rows:
        bucket = out.get(sent_at.astimezone(zone).date())
        if bucket is not None:
            bucket["sent"] += 1
            bucket["parts"] += parts or 1
    return list(out.values())


# --- the gateway's side ----------------------------------------------------------------------
# The gateway runs these once or twice per message: the statements are built once, so SQLAlchemy
# neither rebuilds them nor recomputes their cache keys (a third of the gateway's CPU per message).

# `state IN (...)` with a tuple is an "expanding" parameter SQLAlchemy rewrites at every execution.
_IS_DUE = sa.or_(*(notices.c.state == state for state in DUE_STATES))
_DUE = (
    sa.select(notices)
    .where(_IS_DUE, notices.c.next_attempt_at <= sa.bindparam("now"))
    .order_by(notices.c.next_attempt_at, notices.c.id)
    .limit(sa.bindparam("limit"))
)
# The claim's read locks the row it returns until the claim commits; rows another gateway locked are
# skipped, not waited for (PostgreSQL; SQLite ignores the clause and serialises writers instead).
_DUE_TO_CLAIM = _DUE.with_for_update(skip_locked=True)
_CLAIM = (
    notices.update()
    .where(notices.c.id == sa.bindparam("nid"), _IS_DUE)
    .values(state=NoticeState.SENDING, phone_e164=sa.bindparam("b_phone"), text=sa.bindparam("b_text"),
            encoding=sa.bindparam("b_encoding"), parts=sa.bindparam("b_parts"),
            attempts=notices.c.attempts + 1, updated_at=sa.bindparam("b_now"), holder=sa.bindparam("b_holder"))
)
# Only the holder finishes a notice: one swept to uncertain (and perhaps queued again by staff and
# claimed by another gateway) is not overwritten by a gateway that comes back late.
_FINISH_WHERE = (notices.c.id == sa.bindparam("nid"), notices.c.state == NoticeState.SENDING,
                 notices.c.holder == sa.bindparam("b_holder"))
_MARK_SENT = notices.update().where(*_FINISH_WHERE).values(
    state=NoticeState.SENT, sent_at=sa.bindparam("b_now"), updated_at=sa.bindparam("b_now"), next_attempt_at=None,
    last_error=None, cms_code=None, message_ref=sa.bindparam("b_ref"), message_refs=sa.bindparam("b_refs"),
    delivery_status=sa.bindparam("b_delivery"),
)
_MARK_RETRY = notices.update().where(*_FINISH_WHERE).values(
    state=NoticeState.RETRY, last_error=sa.bindparam("b_error"), cms_code=sa.bindparam("b_cms"),
    next_attempt_at=sa.bindparam("b_at"), updated_at=sa.bindparam("b_now"),
)
_MARK_FAILED = notices.update().where(*_FINISH_WHERE).values(
    state=NoticeState.FAILED, last_error=sa.bindparam("b_error"), cms_code=sa.bindparam("b_cms"),
    next_attempt_at=None, updated_at=sa.bindparam("b_now"),
)
_MARK_UNCERTAIN = notices.update().where(*_FINISH_WHERE).values(
    state=NoticeState.UNCERTAIN, last_error=sa.bindparam("b_error"), next_attempt_at=None,
    updated_at=sa.bindparam("b_now"),
)


def due(conn: sa.Connection, now: datetime, limit: int = 50) -> Sequence[sa.Row]:
    """Notices whose time has come, oldest first."""
    return conn.execute(_DUE, {"now": now, "limit": limit}).all()


def due_to_claim(conn: sa.Connection, now: datetime, limit: int = 1) -> Sequence[sa.Row]:
    """Like `due`, inside a writing transaction: the rows returned are this gateway's to claim or fail,
    rows another gateway is claiming right now are skipped."""
    return conn.execute(_DUE_TO_CLAIM, {"now": now, "limit": limit}).all()


def claim(conn: sa.Connection, notice_id: int, *, phone_e164: str, text: str, encoding: str, parts: int,
          holder: str = DEFAULT_GATEWAY) -> bool:
    """queued/retry -> sending by `holder`, with the exact text about to go out. False if someone else
    moved it."""
    result = conn.execute(_CLAIM, {"nid": notice_id, "b_phone": phone_e164, "b_text": text,
                                   "b_encoding": encoding, "b_parts": parts, "b_now": utcnow(),
                                   "b_holder": holder})
    return result.rowcount == 1


def mark_sent(conn: sa.Connection, notice_id: int, refs: list[int], *, delivery_reports: bool,
              holder: str = DEFAULT_GATEWAY) -> bool:
    return conn.execute(_MARK_SENT, {
        "nid": notice_id, "b_now": utcnow(), "b_ref": refs[-1] if refs else None,
        "b_refs": ",".join(map(str, refs)) or None, "b_holder": holder,
        "b_delivery": DeliveryStatus.PENDING if delivery_reports and refs else None,
    }).rowcount == 1


def mark_retry(conn: sa.Connection, notice_id: int, error: str, cms_code: int | None, at: datetime,
               holder: str = DEFAULT_GATEWAY) -> bool:
    return conn.execute(_MARK_RETRY, {"nid": notice_id, "b_error": error, "b_cms": cms_code, "b_at": at,
                                      "b_now": utcnow(), "b_holder": holder}).rowcount == 1


def mark_failed(conn: sa.Connection, notice_id: int, error: str, cms_code: int | None = None,
                holder: str = DEFAULT_GATEWAY) -> bool:
    now = utcnow()
    done = conn.execute(_MARK_FAILED, {"nid": notice_id, "b_error": error, "b_cms": cms_code, "b_now": now,
                                       "b_holder": holder}).rowcount == 1
    if done:
        log_event(conn, notice_id, NoticeState.SENDING, NoticeState.FAILED, f"gateway {holder}", error, now)
    return done


def mark_uncertain(conn: sa.Connection, notice_id: int, reason: str, holder: str = DEFAULT_GATEWAY,
                   actor: str | None = None) -> bool:
    """sending -> uncertain for the notice `holder` holds; `actor` (default: the holder) is who decided."""
    now = utcnow()
    done = conn.execute(_MARK_UNCERTAIN, {"nid": notice_id, "b_error": reason, "b_now": now,
                                          "b_holder": holder}).rowcount == 1
    if done:
        log_event(conn, notice_id, NoticeState.SENDING, NoticeState.UNCERTAIN, actor or f"gateway {holder}", reason,
                  now)
    return done


def fail_unsendable(conn: sa.Connection, notice_id: int, error: str) -> None:
    """A due notice that cannot be sent at all (bad number, no template): failed before any claim."""
    result = conn.execute(
        notices.update().where(notices.c.id == notice_id, notices.c.state.in_(DUE_STATES))
        .values(state=NoticeState.FAILED, last_error=error, next_attempt_at=None, updated_at=utcnow())
    )
    if result.rowcount:
        log_event(conn, notice_id, None, NoticeState.FAILED, "gateway", error)


def recover_interrupted(conn: sa.Connection, holder: str = DEFAULT_GATEWAY) -> list[int]:
    """At a gateway's start: a notice it left `sending` was handed to its modem before it died. It may
    have gone out, so it becomes `uncertain` (an official decides), never resent on its own. Notices
    other gateways hold are theirs: they may be sending them right now."""
    ids = list(conn.execute(sa.select(notices.c.id).where(
        notices.c.state == NoticeState.SENDING, notices.c.holder == holder)).scalars())
    for notice_id in ids:
        mark_uncertain(conn, notice_id, "gateway stopped while sending; the message may have gone out", holder)
    return ids


def find_abandoned(conn: sa.Connection, *, me: str, stale_s: float,
                   now: datetime | None = None) -> list[tuple[int, str | None, datetime | None]]:
    """(notice id, holder, its last heartbeat) for every notice `sweep_abandoned` would take; reads only."""
    now = now or utcnow()
    rows = conn.execute(
        sa.select(notices.c.id, notices.c.holder, modem_health.c.last_seen_at)
        .select_from(notices.outerjoin(modem_health, modem_health.c.gateway == notices.c.holder))
        .where(notices.c.state == NoticeState.SENDING, sa.or_(notices.c.holder.is_(None), notices.c.holder != me))
        .order_by(notices.c.id)
    ).all()
    return [(n, holder, seen) for n, holder, seen in rows
            if seen is None or now - seen > timedelta(seconds=stale_s)]


def sweep_abandoned(conn: sa.Connection, *, me: str, stale_s: float, now: datetime | None = None) -> list[int]:
    """Notices held by another gateway whose heartbeat is older than `stale_s` (or that has none: a
    notice claimed before holders were recorded) become `uncertain`, so none waits for a gateway that
    never returns. A live gateway refreshes its heartbeat in every claim's transaction."""
    rows = find_abandoned(conn, me=me, stale_s=stale_s, now=now)
    swept = []
    for notice_id, holder, seen in rows:
        reason = (f"gateway {holder or '(unknown)'} silent since {seen.isoformat() if seen else 'ever'} "
                  f"while sending; the message may have gone out")
        result = conn.execute(notices.update().where(
            notices.c.id == notice_id, notices.c.state == NoticeState.SENDING,
            notices.c.holder.is_(None) if holder is None else notices.c.holder == holder,
        ).values(state=NoticeState.UNCERTAIN, last_error=reason, next_attempt_at=None, updated_at=utcnow()))
        if result.rowcount == 1:
            log_event(conn, notice_id, NoticeState.SENDING, NoticeState.UNCERTAIN, f"gateway {me}", reason)
            swept.append(notice_id)
    return swept


def record_delivery(conn: sa.Connection, *, phone_e164: str | None, message_ref: int, delivered: bool,
                    at: datetime | None = None, window_days: int = 7, holder: str | None = None) -> int | None:
    """Match a status report to the newest sent notice with this reference (TP-MR wraps at 255, so the
    newest pending one for the same number wins). Returns the notice id or None when nothing matches.
    `holder`: only notices that gateway sent (references are per modem: another modem's ref 5 is not ours)."""
    since = utcnow() - timedelta(days=window_days)
    query = (
        sa.select(notices.c.id)
        .where(notices.c.state == NoticeState.SENT, notices.c.message_ref == message_ref,
               notices.c.delivery_status == DeliveryStatus.PENDING, notices.c.sent_at >= since)
        .order_by(notices.c.sent_at.desc(), notices.c.id.desc()).limit(1)
    )
    if holder is not None:
        query = query.where(notices.c.holder == holder)
    if phone_e164:
        query = query.where(notices.c.phone_e164 == phone_e164)
    notice_id = conn.execute(query).scalar()
    if notice_id is None:
        return None
    conn.execute(notices.update().where(notices.c.id == notice_id).values(
        delivery_status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED,
        delivered_at=(at or utcnow()) if delivered else None, updated_at=utcnow(),
    ))
    return notice_id
