"""Rate limits for lookups from the LAN (Flask-Limiter), counted in one SQLite file.

Lookups from the kiosk's own screen (`[kiosk] kiosk_addresses`) are never limited; any other client
gets `[kiosk] public_lookup_rate`, so the app cannot be used to walk through dossier codes.
The counters live in `data_dir/ratelimit.sqlite` (a `limits` storage registered as
`motcua-sqlite://`) so that every gunicorn worker on the machine shares them; per-worker memory
would multiply the allowance by the number of workers.

The storage implements the interface of limits 5.x (setup.cfg requires it). The app swallows storage
errors so that a broken counter file does not stop lookups, but every failure is logged as an error
saying that lookups are not limited, so it cannot go unnoticed.
"""
from __future__ import annotations

import fcntl
import functools
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits import parse
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from kiosk.security import is_kiosk_screen

SCHEME = "motcua-sqlite"
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _loud(method: F) -> F:
    """Log a failing storage call (any error, also a call the installed `limits` makes differently)."""

    @functools.wraps(method)
    def wrapper(self: SqliteStorage, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            log.error("rate-limit counters %s failed in %s (%s: %s): lookups from the LAN are NOT limited "
                      "until this is fixed", self.path, method.__name__, type(exc).__name__, exc)
            raise

    return cast(F, wrapper)


class SqliteStorage(Storage):
    """Fixed-window counters in a SQLite file (WAL; one connection per thread)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(uri.split("://", 1)[1])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Every gunicorn worker runs this at boot. On a fresh data folder two of them switching a new
        # file to WAL at once get "database is locked", a worker fails to boot and gunicorn exits
        # (issue 17): so the set-up is done by one process at a time, under a file lock.
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._conn() as conn:
                    conn.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, "
                                 "count INTEGER NOT NULL, expires_at REAL NOT NULL)")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # counters may lose the last second on power loss
            self._local.conn = conn
        return _Tx(conn)

    @_loud
    def incr(self, key: str, expiry: int | float, amount: int = 1) -> int:
        now = time.time()
        with self._conn() as conn:
            # Expired windows go (every client's, so the file stays as small as the LAN's clients).
            conn.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO counters (key, count, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET count = count + excluded.count",
                (key, amount, now + expiry),
            )
            return conn.execute("SELECT count FROM counters WHERE key = ?", (key,)).fetchone()[0]

    @_loud
    def get(self, key: str) -> int:
        with self._conn() as conn:
            row = conn.execute("SELECT count FROM counters WHERE key = ? AND expires_at > ?",
                               (key, time.time())).fetchone()
        return row[0] if row else 0

    @_loud
    def get_expiry(self, key: str) -> float:
        with self._conn() as conn:
            row = conn.execute("SELECT expires_at FROM counters WHERE key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            with self._conn() as conn:
                conn.execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    @_loud
    def reset(self) -> int | None:
        with self._conn() as conn:
            return conn.execute("DELETE FROM counters").rowcount

    @_loud
    def clear(self, key: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))


class _Tx:
    """`with` block = one IMMEDIATE transaction, so concurrent workers never lose an increment."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def make_limiter(app: Flask) -> Limiter:
    cfg = app.config["MOTCUA"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", f"{SCHEME}://{Path(cfg.paths.data_dir) / 'ratelimit.sqlite'}")
    app.config.setdefault("RATELIMIT_STRATEGY", "fixed-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(key_func=lambda: request.remote_addr or "?", app=app, default_limits=[])
    limiter.request_filter(is_kiosk_screen)
    return limiter


# --- limits on the kiosk screen itself -----------------------------------------------------------
# The screen's own address is exempt from the LAN limit above, but a child at the screen or a USB HID
# gadget can take 1,000 tickets in seconds (issue 17). These limits count per station (the screen's
# address) or per dossier in the same shared storage, and every refusal is counted per local day for
# the staff health page.

REFUSALS = ("lookup", "ticket", "slip", "waiting", "numbers")
_REFUSAL_TTL_S = 2 * 86400


def _storage() -> Storage:
    return current_app.extensions["motcua.limiter"].storage


def allow(kind: str, rate: str, *key: str) -> bool:
    """Count one `kind` action for `key` (a station address, a dossier code) against `rate`; False
    (and the refusal counted) when over it. A broken counter file allows, loudly (see `_loud`)."""
    try:
        ok = FixedWindowRateLimiter(_storage()).hit(parse(rate), f"station-{kind}", *key)
    except Exception:
        return True
    if not ok:
        count_refusal(kind)
    return ok


def count_refusal(kind: str) -> None:
    """One more refusal of `kind` today (also for refusals decided elsewhere: queue full)."""
    from kiosk.context import get_config
    from motcua.hours import local_now

    day = local_now(get_config().site).date().isoformat()
    try:
        _storage().incr(f"refused/{kind}/{day}", _REFUSAL_TTL_S)
    except Exception:  # the citizen's answer does not depend on the counter
        log.warning("could not count a %s refusal", kind)


def refusals_today(data_dir: Path, day: str) -> dict[str, int]:
    """Refusals per kind on a local day (YYYY-MM-DD), read from data_dir/ratelimit.sqlite."""
    path = Path(data_dir) / "ratelimit.sqlite"
    if not path.exists():
        return dict.fromkeys(REFUSALS, 0)
    storage = SqliteStorage(f"{SCHEME}://{path}")
    return {kind: storage.get(f"refused/{kind}/{day}") for kind in REFUSALS}
