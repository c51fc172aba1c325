"""On-demand lookup for the kiosk screen: ask the source when the store does not know a code, knows
it only from longer ago than `lookup_max_age_s`, or cannot check the secret the citizen gave; answer
within `lookup_deadline_s` whatever the source does.

The fetch runs on a small per-process pool. When the deadline passes the screen answers from the
store; the fetch goes on in the background (bounded by the source's own timeouts) and still writes
through ingest when it ends, so the next lookup is fresh. When every slot is busy (the source hangs
for everyone) the store answers at once rather than queueing citizens behind a dead link.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa

from kiosk.sources.base import Source, SourceError
from kiosk.sources.store import apply_one, confirmed_at, mark_checked
from kiosk.store import dossiers
from motcua.config import Config
from motcua.db import reading
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LookupResult:
    row: Mapping[str, Any] | None
    confirmed_at: datetime | None  # when the source last confirmed what is shown; None: never
    source_failed: bool  # the source was asked and did not answer in time (or failed)


class _Pool:
    """Threads and slots per process, created on first use (gunicorn forks before any request)."""

    def __init__(self, slots: int):
        self.executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="source-lookup")
        self.slots = threading.BoundedSemaphore(slots)


_pools: dict[int, _Pool] = {}
_pools_lock = threading.Lock()


def _pool(slots: int) -> _Pool:
    with _pools_lock:
        pool = _pools.get(slots)
        if pool is None:
            pool = _pools[slots] = _Pool(slots)
        return pool


def _read(engine: sa.Engine, source: Source | None, code: str) -> tuple[Mapping[str, Any] | None, datetime | None]:
    with reading(engine) as conn:
        row = dossiers.find(conn, code)
        return row, confirmed_at(conn, source, code, row["status"] if row is not None else None)


def _fetch_and_store(engine: sa.Engine, cfg: Config, source: Source, code: str, secret: str | None) -> bool:
    """Runs on the pool. True when the source answered (found or not)."""
    limit = cfg.source_.read_timeout_s + cfg.source_.connect_timeout_s
    try:
        found = source.fetch(code, secret, total_s=limit)
    except SourceError as exc:
        log.warning("%s: lookup of %r failed: %s", source.kind, code, exc)
        return False
    if found is None:
        log.info("%s: %r not known to the source (or the secret is wrong)", source.kind, code)
        if secret is None:
            mark_checked(engine, code)
        return True
    apply_one(engine, cfg, source, found)
    return True


def needs_source(row: Mapping[str, Any] | None, confirmed: datetime | None, secret: str | None, max_age_s: int,
                 now: datetime) -> bool:
    if row is None or confirmed is None:
        return True
    if secret and not dossiers.secret_matches(row, secret):
        return True  # only the source can say whether this secret is right
    return (now - confirmed).total_seconds() > max_age_s


def lookup(cfg: Config, engine: sa.Engine, source: Source | None, code: str, secret: str | None) -> LookupResult:
    """The dossier to show for a code, asking the source within the deadline when needed."""
    started = time.monotonic()
    kind = source.kind if source else "none"
    row, confirmed = _read(engine, source, code)
    if source is None or not source.supports_fetch:
        return LookupResult(row, confirmed, False)
    if not needs_source(row, confirmed, secret, cfg.source_.lookup_max_age_s, utcnow()):
        return LookupResult(row, confirmed, False)
    pool = _pool(cfg.source_.lookup_slots)
    if not pool.slots.acquire(blocking=False):
        log.warning("%s: every lookup slot is busy (source slow?); %r answered from the store", kind, code)
        return LookupResult(row, confirmed, True)

    def job() -> bool:
        try:
            return _fetch_and_store(engine, cfg, source, code, secret)
        finally:
            pool.slots.release()

    future = pool.executor.submit(job)
    remaining = cfg.source_.lookup_deadline_s - (time.monotonic() - started)
    try:
        answered = future.result(timeout=max(0.0, remaining))
    except FutureTimeout:
        log.warning("%s: no answer for %r within %.1f s; answered from the store", kind, code,
                    cfg.source_.lookup_deadline_s)
        return LookupResult(row, confirmed, True)
    except Exception:  # a bug in a connector must not reach the screen
        log.exception("%s: lookup of %r crashed", kind, code)
        return LookupResult(row, confirmed, True)
    row, confirmed = _read(engine, source, code)
    return LookupResult(row, confirmed, not answered)
