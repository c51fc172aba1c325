"""The print worker: the one process that opens the printer.

Loop: ask the printer for its state (where the connection can tell), record it with a heartbeat,
and while it can print, take the oldest pending job, draw it, send it, mark it done. Paper-out or
offline: jobs stay pending and print, in order, once the printer is back. The printer's device lock
(motcua/devicelock.py) makes sure only one worker (or one `kiosk print ...` run without a worker) owns
it. A worker prints only its own station's jobs ([station] id) and writes its station's heartbeat.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa

from kiosk.printing import jobs
from kiosk.printing.connections import Connection, PrinterOffline, SendFailed, make_connection
from kiosk.printing.encode import encode_image
from kiosk.printing.render import render_slip, render_ticket
from kiosk.printing.states import CANNOT_PRINT, JobState, PrinterState
from motcua import stations
from motcua.config import Config
from motcua.db import reading
from motcua.devicelock import DeviceLock, for_device
from motcua.memory import release_free_memory
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)
RENDERERS: dict[str, Callable[[dict[str, Any], int], Any]] = {"ticket": render_ticket, "slip": render_slip}


def printer_lock(cfg: Config) -> DeviceLock:
    """The lock that makes a process the printer's owner (raises DeviceBusy on acquire if taken)."""
    return for_device(cfg.paths.data_dir, stations.Device.PRINTER, stations.Service.PRINT_WORKER)


def job_bytes(cfg: Config, job: dict[str, Any]) -> bytes:
    """Draw a job and encode it for the configured paper."""
    renderer = RENDERERS.get(job["kind"])
    if renderer is None:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    image = renderer(job["payload"], cfg.printer.paper_dots)
    return encode_image(image, cfg.printer.paper_dots, profile=cfg.printer.profile, cut=cfg.printer.cut,
                        feed_lines=cfg.printer.feed_lines)


class PrintWorker:
    def __init__(self, cfg: Config, engine: sa.Engine, connection: Connection | None = None,
                 notify: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.engine = engine
        self.connection = connection or make_connection(cfg)
        self.notify = notify or (lambda _msg: None)
        self.state: str = PrinterState.UNKNOWN
        self._last_status = -1e9
        self._last_beat = -1e9
        self.started_at: datetime | None = None
        self.printed = 0
        self.station = cfg.station.id

    def start(self) -> list[int]:
        """Call once before the loop: jobs a dead worker left half-sent become "uncertain"."""
        self.started_at = utcnow()
        with self.engine.begin() as conn:
            ids = jobs.mark_interrupted(conn, self.station)
        if ids:
            log.warning("jobs %s were being printed when the previous worker stopped; marked uncertain "
                        "(not re-sent; staff can reprint)", ids)
        return ids

    def _has_pending(self) -> bool:
        with reading(self.engine) as conn:
            return conn.execute(sa.select(jobs.print_jobs.c.id).where(
                jobs.print_jobs.c.station == self.station, jobs.print_jobs.c.state == JobState.PENDING)
                .limit(1)).first() is not None

    def check_status(self) -> str:
        try:
            state, detail = self.connection.status()
        except PrinterOffline as exc:
            state, detail = PrinterState.OFFLINE, str(exc)
        except Exception as exc:  # any driver error means we cannot print now
            self.connection.close()
            state, detail = PrinterState.OFFLINE, f"{type(exc).__name__}: {exc}"
        self._record(state, detail)
        return state

    def _record(self, state: str, detail: str) -> None:
        with self.engine.begin() as conn:
            changed = jobs.record_state(conn, state, detail, station=self.station)
        if changed:
            log.log(logging.INFO if state in (PrinterState.OK, PrinterState.UNKNOWN) else logging.WARNING,
                    "printer %s: %s %s", self.connection.describe(), state, detail)
        self.state = state
        self._last_status = time.monotonic()
        if changed or self._last_status - self._last_beat >= self.cfg.station.heartbeat_s:
            self.beat(detail)

    def beat(self, detail: str = "") -> None:
        """This station's print-worker row in the hall list (motcua/stations.py)."""
        stations.heartbeat(self.engine, self.cfg.station, stations.Service.PRINT_WORKER,
                           device=stations.Device.PRINTER, device_state=str(self.state), detail=detail or None,
                           started_at=self.started_at)
        self._last_beat = time.monotonic()

    def step(self) -> bool:
        """One turn of the loop; True if a job was printed.

        The printer is asked for its state before every job and every `status_every_s` when idle
        (which is also the worker's heartbeat), not on every poll: on an SD card each heartbeat is
        a database write.
        """
        pending = self._has_pending()
        if pending or time.monotonic() - self._last_status >= self.cfg.printer.status_every_s:
            self.check_status()
        if self.state in CANNOT_PRINT or not pending:
            return False
        with self.engine.begin() as conn:
            expired = jobs.expire_old_tickets(conn, self.cfg.printer.ticket_max_age_s, station=self.station)
            if expired:
                log.warning("%d queue ticket(s) waited too long for the printer and were not printed", expired)
            job = jobs.claim_next(conn, self.station)
        if job is None:
            return False
        try:
            data = job_bytes(self.cfg, job)
        except Exception as exc:  # a job that cannot be drawn must not block the rest
            log.exception("job %s (%s %s) cannot be drawn", job["id"], job["kind"], job["ref"])
            with self.engine.begin() as conn:
                jobs.release_job(conn, job["id"], f"cannot be drawn: {exc}", failed=True)
            return False
        try:
            self.connection.send(data)
        except (PrinterOffline, SendFailed) as exc:
            # Back to pending: a broken-off ticket is no ticket; it prints whole when the printer is back.
            log.warning("job %s not printed: %s", job["id"], exc)
            with self.engine.begin() as conn:
                jobs.release_job(conn, job["id"], str(exc))
            self._record(PrinterState.OFFLINE, str(exc))
            return False
        with self.engine.begin() as conn:
            jobs.finish_job(conn, job["id"])
        self.printed += 1
        log.info("printed job %s (%s %s, %d bytes)", job["id"], job["kind"], job["ref"], len(data))
        return True

    def drain(self) -> int:
        """Print every pending job now (used by `kiosk print ...` when no worker runs)."""
        count = 0
        while self.step():
            count += 1
        return count

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        self.start()
        release_free_memory()  # start-up's garbage back to the system before hours of idling
        self.notify("READY=1")
        while not stop.is_set():
            try:
                printed = self.step()
            except sa.exc.OperationalError:
                log.exception("database unavailable; retrying")
                printed = False
            self.notify("WATCHDOG=1")
            self.notify(f"STATUS=printer {self.state}, {self.printed} printed")
            if not printed:
                wait = self.cfg.printer.poll_s if self.state not in CANNOT_PRINT else \
                    min(self.cfg.printer.status_every_s, 5.0)
                stop.wait(wait)
        self.connection.close()
