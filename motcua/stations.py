"""The stations of one hall: which box is which, and whether each of its services is alive.

A hall shares one database; each box (Pi) in it is a station with its own `[station]` section. Every
service that runs on a box (web app, scanner, print worker, SMS gateway) writes one row here, keyed by
(station id, service): its role, software version, pid and host, the state of the device it owns (printer,
camera, modem) and a heartbeat. The staff health page lists every row it finds, stale ones marked, never
hidden: a box that stopped writing is exactly what staff need to see.

`heartbeat` is an upsert, so a service calls it at start and then every `[station] heartbeat_s`; it needs
no registration step and works the same on SQLite and PostgreSQL. A single Pi without a `[station]`
section is the station "main" and nothing else changes.

SQLAlchemy is imported only by the functions that use it: the scanner's supervisor writes nothing but its
heartbeat, and SQLAlchemy would be half of its memory. It writes through a `DirectDatabase` (sqlite3 or
psycopg alone); the statement and its values are the same ones `heartbeat` sends through an engine.
"""
from __future__ import annotations

import os
import re
import socket
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Protocol

from motcua.timeutil import db_time, utcnow

if TYPE_CHECKING:
    import sqlalchemy as sa


class StationIdentity(Protocol):
    """What `heartbeat` reads of this box: motcua.config.StationConfig (not imported: config imports us)."""
    id: str
    role: str

    @property
    def label(self) -> str: ...


class StationRole(StrEnum):
    """What a box is for ([station] role)."""
    KIOSK = "kiosk"  # touchscreen, scanner, printer
    COUNTER = "counter"  # an official's counter page
    DISPLAY = "display"  # the hall display
    GATEWAY = "gateway"  # SMS modem(s) only


class Service(StrEnum):
    """The processes that write a heartbeat. A gateway with several modems writes `sms-gateway/<modem>`."""
    WEB = "web"
    SCANNER = "scanner"
    PRINT_WORKER = "print-worker"
    SMS_GATEWAY = "sms-gateway"


class Device(StrEnum):
    """The hardware a service owns (at most one each; motcua/devicelock.py enforces it)."""
    PRINTER = "printer"
    CAMERA = "camera"
    MODEM = "modem"


# The columns of the stations table, in the order of the upsert below.
COLUMNS = ("station_id", "service", "name", "role", "version", "host", "pid", "device", "device_state", "detail",
           "started_at", "heartbeat_at")


@cache
def table() -> sa.Table:
    """The `stations` table (migration h0002), for the SQLAlchemy readers below."""
    import sqlalchemy as sa

    from motcua.timeutil import UtcDateTime

    return sa.Table(
        "stations",
        sa.MetaData(),
        sa.Column("station_id", sa.String(32), primary_key=True),
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),  # a StationRole
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("device", sa.String(16)),  # a Device, or none (web app)
        sa.Column("device_state", sa.String(32)),  # the owner's own state word (PrinterState, ModemState, ...)
        sa.Column("detail", sa.Text),
        sa.Column("started_at", UtcDateTime, nullable=False),
        sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    )


@cache
def software_version() -> str:
    try:
        return importlib_metadata.version("motcua-kiosk")
    except importlib_metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def heartbeat(engine: sa.Engine | DirectDatabase, station: StationIdentity, service: str, *,
              device: str | None = None, device_state: str | None = None, detail: str | None = None,
              started_at: datetime | None = None, now: datetime | None = None) -> None:
    """Write this service's row for this station (insert or update), with its device's state.

    Call it when the service starts (pass `started_at`) and then every `station.heartbeat_s`. The gateway
    calls it as `heartbeat(engine, cfg.station, f"sms-gateway/{name}", device="modem", device_state=...)`.
    `engine` is a SQLAlchemy engine or a `DirectDatabase`: the same statement goes through either.
    """
    now = now or utcnow()
    dialect = engine.dialect if isinstance(engine, DirectDatabase) else engine.dialect.name
    row = {
        "station_id": station.id, "service": service, "name": station.label, "role": str(station.role),
        "version": software_version()[:32], "host": socket.gethostname()[:64], "pid": os.getpid(),
        "device": device, "device_state": device_state, "detail": detail,
        "started_at": db_time(started_at or now, dialect), "heartbeat_at": db_time(now, dialect),
    }
    sql = _upsert(dialect, keep_started_at=started_at is None)
    if isinstance(engine, DirectDatabase):
        engine.execute(sql, row)
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, row)


@cache
def _upsert(dialect: str, keep_started_at: bool) -> str:
    """INSERT ... ON CONFLICT DO UPDATE, which SQLite (3.24+) and PostgreSQL both read, in the driver's
    placeholder style; a row kept keeps its `started_at` unless the service (re)started."""
    mark = "%({})s" if dialect == "postgresql" else ":{}"
    updated = [c for c in COLUMNS[2:] if not (keep_started_at and c == "started_at")]
    return (f"INSERT INTO stations ({', '.join(COLUMNS)}) VALUES ({', '.join(mark.format(c) for c in COLUMNS)}) "
            f"ON CONFLICT (station_id, service) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in updated)}")


class DirectDatabase:
    """The database of `[database] url` through its driver alone (sqlite3, psycopg), for `heartbeat` from a
    process that needs nothing else of it. One connection per call: a heartbeat comes every half minute,
    and a database that went away and came back needs no reconnect logic."""

    def __init__(self, dialect: str, target: str, busy_timeout_ms: int):
        self.dialect, self._target, self._busy_ms = dialect, target, busy_timeout_ms

    @classmethod
    def from_url(cls, url: str, busy_timeout_ms: int) -> DirectDatabase | None:
        """For an SQLite file or a PostgreSQL (psycopg) URL; None for anything else (use an engine)."""
        if url.startswith("sqlite:///") and "?" not in url:
            path = url[len("sqlite:///"):]
            return cls("sqlite", path, busy_timeout_ms) if path and path != ":memory:" else None
        for scheme in ("postgresql://", "postgresql+psycopg://"):
            if url.startswith(scheme):  # libpq reads SQLAlchemy's URL form once the driver name is gone
                return cls("postgresql", "postgresql://" + url[len(scheme):], busy_timeout_ms)
        return None

    def execute(self, sql: str, params: dict[str, Any]) -> None:
        """Run one statement in its own transaction, as motcua.db's engine would (busy timeout, FULL sync)."""
        if self.dialect == "sqlite":
            import sqlite3

            with closing(sqlite3.connect(self._target, timeout=self._busy_ms / 1000, isolation_level=None)) as conn:
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(sql, params)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        else:
            import psycopg

            with psycopg.connect(self._target, connect_timeout=10) as conn:  # commits on leaving
                conn.execute(sql, params)


@dataclass(frozen=True)
class ServiceBeat:
    """One service of a station as last heard from."""
    service: str
    version: str
    host: str
    pid: int
    device: str | None
    device_state: str | None
    detail: str | None
    started_at: datetime
    heartbeat_at: datetime
    age_s: float
    stale: bool


@dataclass(frozen=True)
class Station:
    """A box of the hall, with every service that wrote a heartbeat for it."""
    id: str
    name: str
    role: str
    services: list[ServiceBeat] = field(default_factory=list)

    @property
    def age_s(self) -> float:
        """Seconds since the freshest heartbeat of any of its services."""
        return min(s.age_s for s in self.services)

    @property
    def stale(self) -> bool:
        return all(s.stale for s in self.services)

    @property
    def versions(self) -> list[str]:
        return sorted({s.version for s in self.services})

    def device(self, kind: str) -> ServiceBeat | None:
        """The service that owns this kind of device here (freshest first), if any."""
        owners = [s for s in self.services if s.device == kind]
        return min(owners, key=lambda s: s.age_s) if owners else None


def list_stations(engine: sa.Engine, *, stale_after_s: float, now: datetime | None = None) -> list[Station]:
    """Every station with its services, stale ones included (marked), ordered by station id."""
    now = now or utcnow()
    import sqlalchemy as sa

    stations = table()
    limit = timedelta(seconds=stale_after_s)
    # A read on SQLite must not take the write lock (motcua.db.reading does this; not imported: a cycle).
    with engine.connect() as conn:
        rows = conn.execution_options(readonly=True).execute(
            sa.select(stations).order_by(stations.c.station_id, stations.c.service)).all()
    out: dict[str, Station] = {}
    for r in rows:
        st = out.get(r.station_id)
        if st is None:
            st = out[r.station_id] = Station(id=r.station_id, name=r.name, role=r.role)
        age = now - r.heartbeat_at
        st.services.append(ServiceBeat(
            service=r.service, version=r.version, host=r.host, pid=r.pid, device=r.device,
            device_state=r.device_state, detail=r.detail, started_at=r.started_at, heartbeat_at=r.heartbeat_at,
            age_s=max(age.total_seconds(), 0.0), stale=age > limit))
    return list(out.values())


def get_station(engine: sa.Engine, station_id: str, *, stale_after_s: float,
                now: datetime | None = None) -> Station | None:
    """One station as `list_stations` shows it, or None when none of its services ever wrote."""
    return next((s for s in list_stations(engine, stale_after_s=stale_after_s, now=now) if s.id == station_id), None)


def forget(engine: sa.Engine, station_id: str, service: str | None = None) -> int:
    """Remove a retired station (or one of its services) from the hall list; returns rows removed."""
    import sqlalchemy as sa

    stations = table()
    stmt = sa.delete(stations).where(stations.c.station_id == station_id)
    if service is not None:
        stmt = stmt.where(stations.c.service == service)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount


_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"-]+)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^(\s*)(id|role)(\s*=\s*)("[^"]*"|'[^']*')(.*)$""", re.DOTALL)


def write_station_section(text: str, *, station_id: str | None = None, role: str | None = None) -> str:
    """`text` (a config.toml) with `[station] id` / `role` set, everything else kept as written (comments
    too). Used by hardware/setup.sh --station-id/--station-role; the caller validates the result."""
    wanted = {k: v for k, v in (("id", station_id), ("role", role)) if v is not None}
    if not wanted:
        return text
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if (m := _TABLE.match(ln)) and m.group(1) == "station"), None)
    if start is None:
        body = "".join(f'{k} = "{v}"\n' for k, v in wanted.items())
        return f"[station]\n{body}\n" + text
    end = next((i for i in range(start + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        m = _KEY.match(lines[i])
        if m and m.group(2) in wanted:  # the value replaced; its comment and line end kept
            lines[i] = f'{m.group(1)}{m.group(2)}{m.group(3)}"{wanted.pop(m.group(2))}"{m.group(5)}'
    insert = [f'{k} = "{v}"\n' for k, v in wanted.items()]
    lines[start + 1:start + 1] = insert
    return "".join(lines)
