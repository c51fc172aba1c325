"""The background sync service (`kiosk sync`, unit motcua-sync.service): follows the provincial system.

One pass, by what the source can do:
- a change listing (OpenCPS, an HTTP JSON feed): pages of changes since the stored cursor, each page
  written through ingest and the cursor saved after it, so a restart resumes at that page;
- lookups only (the portal adapter, an HTTP JSON source without a feed): the open dossiers the store
  knows, those confirmed longest ago first, `[source] refresh_batch` of them per pass;
- a drop folder: the files waiting there.

OpenCPS's lists show open dossiers in full but finished ones only by finishDate, which a denied or
cancelled dossier may lack. So after its listing the pass also reads, the same way, the stored open
dossiers it did not see (up to `refresh_batch`, longest unchecked first: every one is reached over a
few passes). Everything found goes through ingest: history, and at most one SMS.

Errors back off (poll_s, doubling up to backoff_max_s) and are recorded with the cursor and the times
of the last success in `source_sync`, read by the staff health page and `kiosk doctor`.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import sqlalchemy as sa

from kiosk.sources.base import ErrorKind, Source, SourceDossier, SourceError
from kiosk.sources.dropfolder import DropFolderSource
from kiosk.sources.store import (
    SyncState,
    apply_many,
    known,
    load_state,
    oldest_open_check,
    parser_for,
    save_state,
    unchecked_open,
)
from motcua.config import Config
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    pages: int = 0
    listed: int = 0
    written: int = 0
    refused: int = 0
    refreshed: int = 0  # stored open dossiers read again one by one (no feed, or unseen by the lists)
    complete: bool = False


class SyncService:
    def __init__(self, cfg: Config, engine: sa.Engine, source: Source,
                 notify: Callable[[str], None] | None = None, after_pass: Callable[[], object] | None = None):
        self.cfg, self.engine, self.source = cfg, engine, source
        self.after_pass = after_pass  # e.g. ratings to the provincial system (kiosk/ratings/push.py)
        self.parser = parser_for(cfg, source)
        self.notify = notify or (lambda _msg: None)  # sd_notify: READY=1, WATCHDOG=1
        self.stop = threading.Event()

    # --- one pass ---------------------------------------------------------------------------

    def run_pass(self, max_pages: int | None = None) -> PassReport:
        """One pass (or `max_pages` pages of it); raises SourceError when the source fails."""
        state = load_state(self.engine, self.source.kind)
        now = utcnow()
        state.last_attempt_at = now
        if state.pass_started_at is None:
            state.pass_started_at = now
        started = state.pass_started_at
        report = PassReport()
        if isinstance(self.source, DropFolderSource):
            imported = self.source.import_pending(self.engine)
            report.listed = len(imported)
            report.written = sum(i.created + i.updated for i in imported)
            report.complete = True
        elif self.source.supports_changes:
            self._list(state, report, max_pages)
        else:
            # Lookups only: each pass reads a bounded batch; the store is confirmed as of its open
            # dossier checked longest ago.
            report.complete = True
            self._refresh(state, report, unseen_since=None)
            any_open, oldest = oldest_open_check(self.engine)
            state.confirmed_at = oldest if any_open else started
        if report.complete:
            if self.source.supports_changes or isinstance(self.source, DropFolderSource):
                state.confirmed_at = started
            state.pass_started_at = None
        self._succeeded(state)
        if report.complete and self.source.supports_changes and not self.source.complete_feed:
            # After the listing's state is saved: a failure here is this pass's error, the listing stays done.
            self._refresh(state, report, unseen_since=started)
            self._succeeded(state)
        return report

    def _succeeded(self, state: SyncState) -> None:
        state.last_success_at = utcnow()
        state.errors_in_row = 0
        state.heartbeat_at = state.last_success_at
        save_state(self.engine, state)

    def _list(self, state: SyncState, report: PassReport, max_pages: int | None) -> None:
        """Page after page of the change listing, each written and its cursor saved."""
        while not self.stop.is_set():
            page = self.source.changes(state.cursor, lambda codes: known(self.engine, codes))
            written, refused = apply_many(self.engine, self.parser, self.source, page.dossiers, page.unchanged)
            for line in page.skipped:
                log.warning("%s: skipped: %s", self.source.kind, line)
            report.pages += 1
            report.listed += page.listed
            report.written += written
            report.refused += refused + len(page.skipped)
            state.cursor = page.cursor
            state.applied += written
            state.heartbeat_at = utcnow()
            if page.done:
                report.complete = True
                return
            save_state(self.engine, state)  # a restart resumes after this page
            self.notify("WATCHDOG=1")
            if max_pages is not None and report.pages >= max_pages:
                return

    def _refresh(self, state: SyncState, report: PassReport, unseen_since: datetime | None) -> None:
        """Ask again, one by one, about stored open dossiers confirmed longest ago (with `unseen_since`:
        only those the pass's listing did not show), at most `refresh_batch` of them."""
        codes = unchecked_open(self.engine, self.cfg.source_.refresh_batch, before=unseen_since)
        found: list[SourceDossier] = []
        unknown: list[str] = []
        for code in codes:
            if self.stop.is_set():
                break
            report.refreshed += 1
            try:
                sd = self.source.fetch(code, None)
            except SourceError as exc:
                if exc.kind != ErrorKind.BAD_ANSWER:
                    raise
                log.warning("%s: skipped %r: %s", self.source.kind, code, exc.message)
                report.refused += 1
                continue
            if sd is None:
                unknown.append(code)  # the source answered that it does not know it: checked all the same
            else:
                found.append(sd)
        written, refused = apply_many(self.engine, self.parser, self.source, found, unknown)
        report.written += written
        report.refused += refused
        state.applied += written
        if unseen_since is not None and codes:
            log.info("%s: %d stored open dossier(s) the lists did not show read in detail, %d written",
                     self.source.kind, len(codes), written)

    # --- the service loop ---------------------------------------------------------------------

    def record_error(self, exc: Exception) -> int:
        state = load_state(self.engine, self.source.kind)
        state.errors_in_row += 1
        state.last_error = str(exc)[:500]
        state.last_error_at = state.last_attempt_at = state.heartbeat_at = utcnow()
        save_state(self.engine, state)
        return state.errors_in_row

    def delay_after(self, errors_in_row: int) -> float:
        if errors_in_row == 0:
            return self.cfg.source_.poll_s
        return min(self.cfg.source_.backoff_max_s, self.cfg.source_.poll_s * 2 ** (errors_in_row - 1))

    def run(self, passes: int | None = None) -> None:
        """Pass after pass until `stop` is set (or `passes` passes, for tests)."""
        self.notify("READY=1")
        done = 0
        while not self.stop.is_set():
            errors = 0
            try:
                report = self.run_pass()
                log.info("%s: pass %s: %d listed, %d read again, %d written, %d refused", self.source.kind,
                         "complete" if report.complete else "in part", report.listed, report.refreshed,
                         report.written, report.refused)
            except SourceError as exc:
                errors = self.record_error(exc)
                log.warning("%s: sync failed (%d in a row): %s", self.source.kind, errors, exc)
            except sa.exc.SQLAlchemyError as exc:
                errors = self.record_error(RuntimeError(f"database: {type(exc).__name__}"))
                log.exception("%s: sync could not write to the database", self.source.kind)
            if self.after_pass is not None:
                try:
                    self.after_pass()
                except sa.exc.SQLAlchemyError:  # the pass's own database errors are recorded above
                    log.exception("%s: the after-pass job could not use the database", self.source.kind)
            self.notify("WATCHDOG=1")
            done += 1
            if passes is not None and done >= passes:
                break
            self.stop.wait(self.delay_after(errors))
