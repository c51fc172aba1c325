"""Where sources meet the store: every answer goes through `kiosk.store.ingest` (validated again by its
`Parser`, then `apply_event`/`apply_events`), so history and the one SMS notice work as for REST
and imports. Also the sync service's cursor and health row, and per-dossier confirmation times.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import sqlalchemy as sa

from kiosk.sources.base import Source, SourceDossier
from kiosk.sources.schema import source_checks, source_sync
from kiosk.store.ingest import DossierEvent, EventError, Parser, apply_event, apply_events
from kiosk.store.schema import dossiers
from motcua.config import Config
from motcua.db import reading
from motcua.hours import site_zone
from motcua.statuses import STATUSES
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)
VIA = "source"  # dossier_history.via for everything a source wrote
OPEN = [code for code, s in STATUSES.items() if not s.final]  # kiosk statuses that can still change


def parser_for(cfg: Config, source: Source) -> Parser:
    """The ingest parser with this source's status codes (OpenCPS's through [statuses], the portal's own)."""
    base = Parser.from_config(cfg)
    return Parser(status_map=dict(source.status_map), tz=site_zone(cfg.site),
                  date_formats=base.date_formats, datetime_formats=base.datetime_formats)


def to_event(parser: Parser, sd: SourceDossier, kind: str) -> DossierEvent | None:
    """The validated event, or None with a log line naming the field (nothing is written)."""
    try:
        return parser.parse({k: v for k, v in sd.record.items() if v is not None})
    except EventError as exc:
        log.warning("%s: dossier %r refused: %s", kind, str(sd.record.get("code"))[:100], exc)
        return None


def _touch(conn: sa.Connection, codes: list[str], now: datetime) -> None:
    if not codes:
        return
    known = set(conn.execute(sa.select(source_checks.c.code).where(source_checks.c.code.in_(codes))).scalars())
    if known:
        conn.execute(source_checks.update().where(source_checks.c.code.in_(known)).values(checked_at=now))
    new = [{"code": c, "checked_at": now} for c in dict.fromkeys(codes) if c not in known]
    if new:
        conn.execute(source_checks.insert(), new)


def apply_one(engine: sa.Engine, cfg: Config, source: Source, sd: SourceDossier) -> str | None:
    """Write one fetched dossier; returns the ingest outcome, or None when it was refused."""
    ev = to_event(parser_for(cfg, source), sd, source.kind)
    if ev is None:
        return None
    now = utcnow()
    with engine.begin() as conn:
        outcome = apply_event(conn, ev, via=VIA, now=now)
        _touch(conn, [ev.code], now)
    return outcome


def apply_many(engine: sa.Engine, parser: Parser, source: Source, found: list[SourceDossier],
               confirmed: Iterable[str] = ()) -> tuple[int, int]:
    """Write a page of changes in one transaction; returns (written, refused). `confirmed`: codes the
    source has just shown as the store holds them (or said it does not know), marked checked with them."""
    events = [ev for ev in (to_event(parser, sd, source.kind) for sd in found) if ev is not None]
    checked = [ev.code for ev in events] + list(confirmed)
    now = utcnow()
    written = 0
    if checked:
        with engine.begin() as conn:
            if events:
                outcomes = apply_events(conn, events, via=VIA, now=now)
                written = sum(o in ("created", "updated") for o in outcomes)
            _touch(conn, checked, now)
    return written, len(found) - len(events)


def mark_checked(engine: sa.Engine, code: str) -> None:
    with engine.begin() as conn:
        _touch(conn, [code], utcnow())


def known(engine: sa.Engine, codes: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """What the store holds for these codes: (source status, appointment date ISO), for the sync's diff."""
    if not codes:
        return {}
    with reading(engine) as conn:
        rows = conn.execute(sa.select(dossiers.c.code, dossiers.c.source_status, dossiers.c.appointment_date)
                            .where(dossiers.c.code.in_(codes)))
        return {r.code: ((r.source_status or "").lower() or None, r.appointment_date.isoformat()
                         if r.appointment_date else None) for r in rows}


def confirmed_at(conn: sa.Connection, source: Source | None, code: str, status: str | None) -> datetime | None:
    """When the source last confirmed this dossier (kiosk `status`, None: not stored): its own check, or
    the start of the last complete sync pass. Only a complete change feed's pass confirms an open
    dossier it did not show; elsewhere (OpenCPS's lists, a refresh of a few per pass) an open
    dossier is confirmed by its own check alone."""
    checked = conn.execute(sa.select(source_checks.c.checked_at).where(source_checks.c.code == code)).scalar()
    if source is None:
        return checked
    if status in OPEN and not source.complete_feed:
        return checked
    passed = conn.execute(sa.select(source_sync.c.confirmed_at).where(source_sync.c.kind == source.kind)).scalar()
    times = [t for t in (checked, passed) if t is not None]
    return max(times) if times else None


def unchecked_open(engine: sa.Engine, limit: int, before: datetime | None = None) -> list[str]:
    """Codes of stored open dossiers, those the source confirmed longest ago (or never) first; with
    `before`, only those not confirmed since then."""
    query = (sa.select(dossiers.c.code)
             .select_from(dossiers.outerjoin(source_checks, source_checks.c.code == dossiers.c.code))
             .where(dossiers.c.status.in_(OPEN)))
    if before is not None:
        query = query.where(sa.or_(source_checks.c.checked_at.is_(None), source_checks.c.checked_at < before))
    query = query.order_by(source_checks.c.checked_at.is_not(None), source_checks.c.checked_at, dossiers.c.id)
    with reading(engine) as conn:
        return list(conn.execute(query.limit(limit)).scalars())


def oldest_open_check(engine: sa.Engine) -> tuple[bool, datetime | None]:
    """(any open dossier stored, the oldest confirmation among them; None when one was never confirmed)."""
    with reading(engine) as conn:
        checked = source_checks.c.checked_at
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.count(checked), sa.func.min(checked))
            .select_from(dossiers.outerjoin(source_checks, source_checks.c.code == dossiers.c.code))
            .where(dossiers.c.status.in_(OPEN))).one()
    stored, confirmed, oldest = row
    return stored > 0, (oldest if stored == confirmed else None)


# --- the sync service's row ------------------------------------------------------------------------

@dataclass
class SyncState:
    kind: str
    cursor: str | None = None
    pass_started_at: datetime | None = None
    confirmed_at: datetime | None = None
    last_success_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    errors_in_row: int = 0
    applied: int = 0
    heartbeat_at: datetime | None = None


def load_state(engine: sa.Engine, kind: str) -> SyncState:
    with reading(engine) as conn:
        row = conn.execute(sa.select(source_sync).where(source_sync.c.kind == kind)).mappings().first()
    return SyncState(**row) if row else SyncState(kind=kind)


def save_state(engine: sa.Engine, state: SyncState) -> None:
    values = dict(state.__dict__)
    with engine.begin() as conn:
        done = conn.execute(source_sync.update().where(source_sync.c.kind == state.kind), values).rowcount
        if not done:
            conn.execute(source_sync.insert(), values)


def sync_health(cfg: Config, engine: sa.Engine, now: datetime | None = None) -> dict[str, Any]:
    """For the staff health page and `kiosk doctor`: state ok/warning/error/unknown, a sentence, numbers.

    The sentence holds the kind, times and the last error's log line (already free of credentials).
    """
    kind = cfg.source_.kind
    now = now or utcnow()
    if kind == "none":
        return {"state": "unknown", "detail": "no source configured ([source] kind = \"none\")", "data": {}}
    with reading(engine) as conn:
        row: Mapping[str, Any] | None = conn.execute(
            sa.select(source_sync).where(source_sync.c.kind == kind)).mappings().first()
    if row is None:
        return {"state": "warning", "detail": f"{kind}: the sync service has not run yet (`kiosk sync`)",
                "data": {"kind": kind}}
    lag = (now - row["confirmed_at"]).total_seconds() if row["confirmed_at"] else None
    data = {"kind": kind, "lag_s": int(lag) if lag is not None else None, "errors_in_row": row["errors_in_row"],
            "applied": row["applied"],
            "last_success_at": row["last_success_at"].isoformat() if row["last_success_at"] else None}
    limit = max(3 * cfg.source_.poll_s, 600)
    if row["errors_in_row"] and (lag is None or lag > limit):
        return {"state": "error", "detail": f"{kind}: {row['errors_in_row']} failed pass(es) in a row; last error: "
                                            f"{row['last_error']}", "data": data}
    if lag is None:
        return {"state": "warning", "detail": f"{kind}: first pass not complete yet", "data": data}
    if lag > limit:
        return {"state": "warning", "detail": f"{kind}: store confirmed {int(lag // 60)} min ago (lag)",
                "data": data}
    extra = f"; last error: {row['last_error']}" if row["errors_in_row"] else ""
    return {"state": "ok", "detail": f"{kind}: in step, lag {int(lag)} s{extra}", "data": data}
