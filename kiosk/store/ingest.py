"""The one code path by which dossier data gets in: REST ingest, file import and staff updates.

Every path turns its input into `DossierEvent`s with `parse_event`, then `apply_event` writes one
event inside the caller's transaction:
- events are idempotent: the same event twice changes nothing the second time;
- the source's own version (or, failing that, its update timestamp) decides order, so repeated and
  out-of-order events never move a dossier backwards;
- every status change writes a history row;
- a change into a notifying status (result ready, more documents needed, denied) enqueues exactly
  one SMS notice through `sms_gateway.api.enqueue`, keyed by code + status + source version.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from kiosk.store.schema import dossier_history, dossiers, ingest_runs
from motcua.config import Config
from motcua.hours import site_zone
from motcua.statuses import STATUSES, UnknownStatus, canonical_status
from motcua.textnorm import clean_text, has_format_chars, is_code
from motcua.timeutil import utcnow
from sms_gateway import api as sms

CREATED, UPDATED, UNCHANGED, STALE = "created", "updated", "unchanged", "stale"
TEXT_LIMITS = {"procedure": 500, "field": 200, "applicant_name": 200, "phone": 32, "secret": 64}
# Dates outside these years are typing or export errors (0001-01-01 is a common "empty" value), and
# the extremes overflow when moved between time zones.
YEARS = (1900, 2200)
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EVENT_FIELDS = (
    "code", "status", "secret", "procedure", "field", "applicant_name", "phone",
    "appointment_date", "received_at", "source_version", "source_updated_at",
)


class EventError(ValueError):
    """One field of one incoming record is wrong; `field` names it for the error report."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class DossierEvent:
    code: str
    status: str
    source_status: str | None = None
    # None means "not given": the stored value is kept.
    secret: str | None = None
    procedure: str | None = None
    field: str | None = None
    applicant_name: str | None = None
    phone: str | None = None
    appointment_date: date | None = None
    received_at: datetime | None = None
    source_version: int | None = None
    source_updated_at: datetime | None = None


@dataclass
class Parser:
    """Turns raw records (JSON objects or spreadsheet rows) into validated events."""

    status_map: dict[str, str]
    tz: ZoneInfo
    date_formats: list[str] = field(default_factory=lambda: ["%Y-%m-%d"])
    datetime_formats: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: Config) -> "Parser":
        return cls(
            status_map=cfg.statuses.source_map,
            tz=site_zone(cfg.site),
            date_formats=cfg.import_.date_formats,
            datetime_formats=cfg.import_.datetime_formats,
        )

    def parse(self, raw: Mapping[str, Any]) -> DossierEvent:
        if not isinstance(raw, Mapping):
            raise EventError("(record)", "must be an object")
        unknown = set(raw) - set(EVENT_FIELDS)
        if unknown:
            raise EventError(sorted(unknown)[0], "unknown field")
        code = self._text(raw, "code", required=True)
        if not is_code(code):
            raise EventError("code", "not a dossier code: 1-100 ASCII letters and digits joined by . _ / -")
        source_status = self._text(raw, "status", required=True)
        try:
            status = canonical_status(source_status, self.status_map)
        except UnknownStatus:
            raise EventError("status", f"unknown status {source_status[:40]!r}") from None
        ev = DossierEvent(code=code, status=status, source_status=source_status[:64])
        for name in ("secret", "procedure", "field", "applicant_name", "phone"):
            setattr(ev, name, self._text(raw, name))
        ev.appointment_date = self._date(raw.get("appointment_date"))
        ev.received_at = self._datetime(raw.get("received_at"), "received_at")
        ev.source_updated_at = self._datetime(raw.get("source_updated_at"), "source_updated_at")
        ev.source_version = self._version(raw.get("source_version"))
        return ev

    @staticmethod
    def _text(raw: Mapping[str, Any], name: str, required: bool = False) -> str | None:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise EventError(name, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise EventError(name, "must be text")
        value = str(value).strip()
        if CONTROL_RE.search(value):
            raise EventError(name, "contains control characters")
        if name == "code" and has_format_chars(value):  # refused, not cleaned: a code is a key
            raise EventError(name, "contains invisible characters (bidi or zero-width)")
        value = clean_text(value).strip()
        limit = TEXT_LIMITS.get(name, 100)
        if len(value) > limit:
            raise EventError(name, f"longer than {limit} characters")
        return value

    def _date(self, value: Any) -> date | None:
        if value is None or value == "":
            return None
        parsed: date | None = None
        if isinstance(value, datetime):
            parsed = value.date()
        elif isinstance(value, date):
            parsed = value
        elif isinstance(value, str):
            text = value.strip()
            for fmt in self.date_formats:
                try:
                    parsed = datetime.strptime(text, fmt).date()
                    break
                except ValueError:
                    continue
            if parsed is None:
                try:
                    parsed = datetime.fromisoformat(text).date()
                except ValueError:
                    pass
        if parsed is None:
            raise EventError("appointment_date", f"not a date: {str(value)[:40]!r}")
        _check_year(parsed, "appointment_date")
        return parsed

    def _datetime(self, value: Any, name: str) -> datetime | None:
        if value is None or value == "":
            return None
        parsed: datetime | None = None
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            text = value.strip()
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                for fmt in self.datetime_formats + self.date_formats:
                    try:
                        parsed = datetime.strptime(text, fmt)
                        break
                    except ValueError:
                        continue
        if parsed is None:
            raise EventError(name, f"not a date and time: {str(value)[:40]!r}")
        _check_year(parsed, name)
        if parsed.tzinfo is None:  # the provincial system speaks local time
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed.astimezone(timezone.utc)

    @staticmethod
    def _version(value: Any) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise EventError("source_version", "must be a whole number")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 19:
            value = int(value.strip())
        if not isinstance(value, int) or value < 0 or value > 2**62:
            raise EventError("source_version", "must be a whole number >= 0")
        return value


def _check_year(value: date, name: str) -> None:
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise EventError(name, f"year {value.year} is outside {YEARS[0]}-{YEARS[1]}")


def _order(ev: DossierEvent, row: Mapping[str, Any]) -> int:
    """1 if the event is newer than the stored dossier, 0 if the same point, -1 if older."""
    if ev.source_version is not None and row["source_version"] is not None:
        return (ev.source_version > row["source_version"]) - (ev.source_version < row["source_version"])
    if ev.source_updated_at is not None and row["source_updated_at"] is not None:
        a, b = ev.source_updated_at, row["source_updated_at"]
        return (a > b) - (a < b)
    has_event = ev.source_version is not None or ev.source_updated_at is not None
    has_row = row["source_version"] is not None or row["source_updated_at"] is not None
    if has_row and not has_event:
        return -1  # an unversioned record never overrides a versioned one
    return 1  # neither side versioned, or only the event is: the later arrival wins


_BY_CODE = sa.select(dossiers).where(dossiers.c.code == sa.bindparam("code"))
_BY_CODE_FOR_UPDATE = _BY_CODE.with_for_update()
_INSERT_DOSSIERS = dossiers.insert().returning(dossiers.c.id, sort_by_parameter_order=True)
_INSERT_HISTORY = dossier_history.insert().returning(dossier_history.c.id, sort_by_parameter_order=True)
_CONTENT = ("secret", "procedure", "field", "applicant_name", "phone", "appointment_date", "received_at")


def apply_event(
    conn: sa.Connection,
    ev: DossierEvent,
    *,
    via: str,
    actor: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> str:
    """Write one event in the caller's transaction; return created/updated/unchanged/stale.

    `force` is for staff updates: they apply whatever the source's version, and keep it.
    """
    now = now or utcnow()
    query = _BY_CODE_FOR_UPDATE if conn.dialect.name == "postgresql" else _BY_CODE
    row = conn.execute(query, {"code": ev.code}).mappings().first()
    if row is None:
        _create(conn, [ev], via, actor, now)
        return CREATED
    return _update(conn, ev, row, via, actor, force, now)


def apply_events(
    conn: sa.Connection, events: list[DossierEvent], *, via: str, now: datetime | None = None, chunk: int = 500
) -> list[str]:
    """`apply_event` for many events with the same result, a chunk of rows per statement.

    Existing dossiers are read with one query per chunk and new ones inserted with one
    multi-row statement; a chunk that names a code twice is applied one event at a time so
    that the second event sees the first.
    """
    now = now or utcnow()
    outcomes: list[str] = []
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        codes = [ev.code for ev in part]
        if len(set(codes)) < len(codes):
            outcomes.extend(apply_event(conn, ev, via=via, now=now) for ev in part)
            continue
        query = sa.select(dossiers).where(dossiers.c.code.in_(codes))
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        existing = {row["code"]: row for row in conn.execute(query).mappings()}
        _create(conn, [ev for ev in part if ev.code not in existing], via, None, now)
        for ev in part:
            row = existing.get(ev.code)
            outcomes.append(CREATED if row is None else _update(conn, ev, row, via, None, False, now))
    return outcomes


def _create(conn: sa.Connection, evs: list[DossierEvent], via: str, actor: str | None, now: datetime) -> None:
    if not evs:
        return
    rows = []
    for ev in evs:
        values = {f: getattr(ev, f) for f in _CONTENT}
        values.update(
            code=ev.code, status=ev.status, source_status=ev.source_status,
            source_version=ev.source_version, source_updated_at=ev.source_updated_at,
            created_at=now, updated_at=now,
        )
        for f in ("procedure", "field", "applicant_name"):
            values[f] = values[f] or ""
        rows.append(values)
    ids = conn.execute(_INSERT_DOSSIERS, rows).scalars().all()
    _record_changes(conn, [(dossier_id, None, ev, values)
                           for dossier_id, ev, values in zip(ids, evs, rows, strict=True)],
                    via, actor, now)


def _update(
    conn: sa.Connection, ev: DossierEvent, row: Mapping[str, Any], via: str, actor: str | None, force: bool,
    now: datetime,
) -> str:
    order = 1 if force else _order(ev, row)
    if order < 0:
        return STALE
    changes = {f: getattr(ev, f) for f in _CONTENT if getattr(ev, f) is not None and getattr(ev, f) != row[f]}
    if ev.status != row["status"]:
        changes["status"] = ev.status
    if order == 0 and changes:
        # Same source version with different content: the first one recorded stands.
        return UNCHANGED
    if not force:
        for f in ("source_version", "source_updated_at"):
            if getattr(ev, f) is not None and getattr(ev, f) != row[f]:
                changes[f] = getattr(ev, f)
    if ev.source_status and ev.source_status != row["source_status"]:
        # Kept current even when it maps to the same kiosk status ("new" -> "receiving"): the sync
        # compares it with the provincial system's list to decide what to read again.
        changes["source_status"] = ev.source_status
    if not changes:
        return UNCHANGED
    changes["updated_at"] = now
    conn.execute(dossiers.update().where(dossiers.c.id == row["id"]), changes)
    if "status" in changes:
        _record_changes(conn, [(row["id"], row["status"], ev, dict(row) | changes)], via, actor, now)
    return UPDATED


def _record_changes(
    conn: sa.Connection,
    changes: list[tuple[int, str | None, DossierEvent, Mapping[str, Any]]],
    via: str,
    actor: str | None,
    now: datetime,
) -> None:
    """History rows for status changes, and one notice for each change into a notifying status."""
    history_ids = conn.execute(
        _INSERT_HISTORY,
        [
            dict(
                dossier_id=dossier_id, from_status=from_status, to_status=ev.status,
                source_status=ev.source_status, source_version=ev.source_version,
                source_updated_at=ev.source_updated_at, via=via, actor=actor, changed_at=now,
            )
            for dossier_id, from_status, ev, _ in changes
        ],
    ).scalars().all()
    for history_id, (_, _, ev, dossier) in zip(history_ids, changes, strict=True):
        if not STATUSES[ev.status].notify or not dossier.get("phone"):
            continue
        if ev.source_version is not None:
            point = f"v{ev.source_version}"
        elif ev.source_updated_at is not None:
            point = f"t{int(ev.source_updated_at.timestamp())}"
        else:
            point = f"h{history_id}"
        appointment = dossier.get("appointment_date")
        sms.enqueue(
            conn,
            key=f"{ev.code}:{ev.status}:{point}",
            phone=dossier["phone"],
            kind=ev.status,
            dossier_code=ev.code,
            params={
                "code": ev.code,
                "procedure": dossier.get("procedure") or "",
                "field": dossier.get("field") or "",
                "appointment_date": appointment.isoformat() if appointment else None,
            },
        )


@dataclass
class IngestReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def record_run(conn: sa.Connection, via: str, source: str | None, report: IngestReport, started: datetime, *,
               errors: int | None = None, stopped_at_row: int | None = None, failure: str | None = None) -> None:
    """One ingest_runs row; `errors` when the report keeps only the first errors, `stopped_at_row` and
    `failure` for a run that did not reach the end."""
    conn.execute(
        ingest_runs.insert().values(
            via=via, source=source, started_at=started, finished_at=utcnow(),
            created=report.created, updated=report.updated, unchanged=report.unchanged,
            stale=report.stale, errors=len(report.errors) if errors is None else errors,
            stopped_at_row=stopped_at_row, failure=failure,
        )
    )


def ingest_batch(engine: sa.Engine, parser: Parser, records: Iterable[Any], *, via: str,
                 source: str | None = None) -> IngestReport:
    """All-or-nothing: every record is validated first; one bad record writes nothing."""
    report = IngestReport()
    events: list[DossierEvent] = []
    for index, raw in enumerate(records):
        try:
            events.append(parser.parse(raw))
        except EventError as exc:
            code = raw.get("code") if isinstance(raw, Mapping) else None
            report.errors.append({"index": index, "code": str(code)[:100] if code else None,
                                  "field": exc.field, "error": exc.message})
    if report.errors:
        return report
    started = utcnow()
    with engine.begin() as conn:
        for outcome in apply_events(conn, events, via=via, now=started):
            report.count(outcome)
        record_run(conn, via, source, report, started)
    return report
