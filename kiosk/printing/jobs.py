"""Durable print jobs: the web app and the CLI submit them, the print worker prints them.

Submitting is a row insert inside the caller's transaction (a ticket and its print job commit
together). The print worker claims jobs one at a time: pending -> printing -> done. A job still
"printing" when a worker starts is marked "uncertain" and never re-sent by itself, so no job
prints twice; staff can reprint it.

Every job is addressed to a station (docs/stations.md): the web app that submits it puts its own
`[station] id` on it, since each kiosk's web app runs on that kiosk's Pi; each station's print worker
claims, and recovers at start, only its own station's jobs, and writes its own printer_status row.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from kiosk.printing.content import slip_content, ticket_content
from kiosk.printing.schema import print_jobs, printer_status
from kiosk.printing.states import JobState, PrinterState, printer_messages
from kiosk.store.dossiers import find
from motcua.config import DEFAULT_STATION_ID, Config
from motcua.timeutil import utcnow

HEARTBEAT_STALE = timedelta(seconds=30)  # the worker writes its heartbeat every few seconds

# A second tap on "In phiếu" (or on the confirmation) for the same dossier within this window is the
# same request. Kept small and separate from any per-dossier abuse limit: it only merges duplicates.
DEDUP_WINDOW = timedelta(seconds=15)


def _insert(conn: sa.Connection, kind: str, ref: str, payload: dict[str, Any], source: str, station: str,
            request_key: str | None = None) -> int:
    now = utcnow()
    return int(conn.execute(
        sa.insert(print_jobs).values(
            kind=kind, ref=ref, payload=json.dumps(payload, ensure_ascii=False), state=JobState.PENDING,
            source=source, station=station, created_at=now, updated_at=now, request_key=request_key,
        ).returning(print_jobs.c.id)
    ).scalar_one())


def job_for_key(conn: sa.Connection, request_key: str | None) -> dict[str, Any] | None:
    """The job a page's idempotency key already created, if any."""
    if not request_key:
        return None
    row = conn.execute(sa.select(print_jobs).where(print_jobs.c.request_key == request_key)).mappings().first()
    return dict(row) if row else None


def _recent_duplicate(conn: sa.Connection, kind: str, ref: str, station: str, now: datetime) -> int | None:
    return conn.execute(
        sa.select(print_jobs.c.id).where(print_jobs.c.kind == kind, print_jobs.c.ref == ref,
                                         print_jobs.c.station == station,
                                         print_jobs.c.created_at >= now - DEDUP_WINDOW,
                                         print_jobs.c.state.in_((JobState.PENDING, JobState.PRINTING, JobState.DONE)))
        .order_by(print_jobs.c.id.desc()).limit(1)
    ).scalar()


def one_at_a_time(conn: sa.Connection, name: str) -> None:
    """Hold a lock on `name` until `conn`'s transaction ends, so that two taps at the same instant (a
    double tap) cannot both read "not printed yet" before either wrote its job: the second waits for
    the first to commit, then finds its job. On PostgreSQL a transaction-level advisory lock; SQLite's
    writers already queue at BEGIN IMMEDIATE (motcua.db)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": name})


def _insert_once(conn: sa.Connection, kind: str, ref: str, payload: dict[str, Any], source: str, station: str,
                 request_key: str | None) -> int:
    try:
        with conn.begin_nested():  # two workers racing with one key: the unique index keeps one job
            return _insert(conn, kind, ref, payload, source, station, request_key)
    except sa.exc.IntegrityError:
        existing = job_for_key(conn, request_key)
        if existing is None:
            raise
        return int(existing["id"])


def submit_ticket(conn: sa.Connection, cfg: Config, ticket: Any, *, source: str = "kiosk",
                  request_key: str | None = None) -> int:
    """Queue a ticket for this station's printer ([station] id); `ticket` is a kiosk.queue.core.Ticket (or its
    dict). Returns the job id."""
    content = ticket_content(cfg, ticket)
    return _insert_once(conn, "ticket", content["label"], content, source, cfg.station.id, request_key)


def submit_slip(conn: sa.Connection, cfg: Config, dossier_code: str, *, source: str = "kiosk",
                request_key: str | None = None, now: datetime | None = None) -> int:
    """Queue a status slip for a dossier on this station's printer; returns the job id. A request key
    already used, or a slip of the same dossier queued here within DEDUP_WINDOW (a kiosk double tap),
    gives the existing job.
    Raises LookupError if there is no such dossier."""
    row = find(conn, dossier_code)
    if row is None:
        raise LookupError(f"no dossier {dossier_code!r}")
    existing = job_for_key(conn, request_key)
    if existing:
        return int(existing["id"])
    if source == "kiosk":  # staff and the CLI print what they ask for
        one_at_a_time(conn, f"slip:{cfg.station.id}:{row['code']}")  # one slip per dossier, two keys or not
        recent = _recent_duplicate(conn, "slip", row["code"], cfg.station.id, now or utcnow())
        if recent is not None:
            return int(recent)
    content = slip_content(cfg, row)
    return _insert_once(conn, "slip", row["code"], content, source, cfg.station.id, request_key)


def reprint(conn: sa.Connection, job_id: int, *, source: str = "staff") -> int:
    """A new job with the same content, at the same station (for staff, e.g. after an "uncertain" job)."""
    row = conn.execute(sa.select(print_jobs).where(print_jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise LookupError(f"no print job {job_id}")
    return _insert(conn, row["kind"], row["ref"], json.loads(row["payload"]), source, row["station"])


def get_job(conn: sa.Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(print_jobs).where(print_jobs.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def recent_jobs(conn: sa.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(print_jobs).order_by(print_jobs.c.id.desc()).limit(limit)).mappings()
    return [{k: v for k, v in r.items() if k != "payload"} for r in rows]


def printer_state(conn: sa.Connection, station: str = DEFAULT_STATION_ID, *,
                  now: datetime | None = None) -> dict[str, Any]:
    """A station's printer as last seen by its print worker: state ok | paper_out | offline | unknown
    (paper_low is reported as ok with that detail), detail, updated_at, plus messages to show.
    Callers pass their own `cfg.station.id`; the default is the single box's station."""
    now = now or utcnow()
    row = conn.execute(sa.select(printer_status).where(printer_status.c.station == station)).mappings().first()
    pending = int(conn.execute(
        sa.select(sa.func.count()).select_from(print_jobs)
        .where(print_jobs.c.station == station, print_jobs.c.state == JobState.PENDING)).scalar_one())
    if row is None:
        state, detail, updated, alive = PrinterState.UNKNOWN, "the print worker has not reported yet", None, False
    else:
        state, detail, updated = row["state"], row["detail"] or "", row["heartbeat_at"]
        alive = now - row["heartbeat_at"] <= HEARTBEAT_STALE
        if not alive:
            # Nothing will print while the worker is down, whatever the printer last said.
            state, detail = PrinterState.OFFLINE, ("the print worker has not reported since "
                                        f"{row['heartbeat_at']:%Y-%m-%d %H:%M:%S} UTC")
    shown = state
    if state == PrinterState.PAPER_LOW:
        state = PrinterState.OK
    msg_vi, msg_en = printer_messages(shown)
    return {
        "station": station,
        "state": str(state),
        "detail": detail,
        "updated_at": updated.isoformat() if updated else None,
        "paper_low": shown == PrinterState.PAPER_LOW,
        "worker_alive": alive,
        "pending_jobs": pending,
        "message_vi": msg_vi,
        "message_en": msg_en,
    }


# --- used by the print worker only -------------------------------------------------------------

def record_state(conn: sa.Connection, state: str, detail: str = "", *, station: str = DEFAULT_STATION_ID,
                 now: datetime | None = None) -> bool:
    """Write a station's printer state and its worker's heartbeat; True if the state changed."""
    now = now or utcnow()
    row = conn.execute(sa.select(printer_status).where(printer_status.c.station == station)).mappings().first()
    if row is None:
        conn.execute(sa.insert(printer_status).values(station=station, state=state, detail=detail, changed_at=now,
                                                      heartbeat_at=now))
        return True
    changed = row["state"] != state
    values: dict[str, Any] = {"state": state, "detail": detail, "heartbeat_at": now}
    if changed:
        values["changed_at"] = now
    conn.execute(sa.update(printer_status).where(printer_status.c.station == station).values(**values))
    return changed


def mark_interrupted(conn: sa.Connection, station: str = DEFAULT_STATION_ID) -> list[int]:
    """At worker start: this station's jobs left "printing" by its dead worker may have printed; never
    re-send them. Other stations' jobs in "printing" are being printed by their own workers right now."""
    ids = list(conn.execute(sa.select(print_jobs.c.id).where(
        print_jobs.c.station == station, print_jobs.c.state == JobState.PRINTING)).scalars())
    if ids:
        conn.execute(sa.update(print_jobs).where(print_jobs.c.id.in_(ids)).values(
            state=JobState.UNCERTAIN, last_error="the print worker stopped while sending this job",
            updated_at=utcnow()))
    return ids


def expire_old_tickets(conn: sa.Connection, max_age_s: int, *, station: str = DEFAULT_STATION_ID,
                       now: datetime | None = None) -> int:
    """Tickets that waited out a long paper-out are not printed late (their holder got help or left)."""
    if max_age_s <= 0:
        return 0
    now = now or utcnow()
    return conn.execute(sa.update(print_jobs).where(
        print_jobs.c.station == station, print_jobs.c.state == JobState.PENDING, print_jobs.c.kind == "ticket",
        print_jobs.c.created_at < now - timedelta(seconds=max_age_s),
    ).values(state=JobState.EXPIRED, updated_at=now, last_error="waited too long for the printer")).rowcount


def claim_next(conn: sa.Connection, station: str = DEFAULT_STATION_ID) -> dict[str, Any] | None:
    """Take this station's oldest pending job: it becomes "printing" (committed before any byte is sent)."""
    row = conn.execute(
        sa.select(print_jobs).where(print_jobs.c.station == station, print_jobs.c.state == JobState.PENDING)
        .order_by(print_jobs.c.id).limit(1)
    ).mappings().first()
    if row is None:
        return None
    taken = conn.execute(
        sa.update(print_jobs).where(print_jobs.c.id == row["id"], print_jobs.c.state == JobState.PENDING)
        .values(state=JobState.PRINTING, attempts=print_jobs.c.attempts + 1, updated_at=utcnow())).rowcount
    if not taken:
        return None
    job = dict(row)
    job["payload"] = json.loads(row["payload"])
    return job


def finish_job(conn: sa.Connection, job_id: int) -> None:
    now = utcnow()
    conn.execute(sa.update(print_jobs).where(print_jobs.c.id == job_id)
                 .values(state=JobState.DONE, printed_at=now, updated_at=now, last_error=None))


def release_job(conn: sa.Connection, job_id: int, error: str, *, failed: bool = False) -> None:
    """Nothing reached the printer: the job waits again (or fails for good when it cannot be drawn)."""
    conn.execute(sa.update(print_jobs).where(print_jobs.c.id == job_id)
                 .values(state=JobState.FAILED if failed else "pending", last_error=error[:500], updated_at=utcnow()))
