"""Staff accounts: argon2 password hashes, roles, sign-in with rate limit and lockout.

Plain functions on a connection, used by the pages and by `kiosk user ...` alike.
"""
from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk.staff.models import staff_lockouts, staff_login_attempts, staff_users
from motcua.config import StaffConfig
from motcua.timeutil import UtcDateTime, utcnow

OFFICIAL, ADMIN = "official", "admin"
ROLES = (OFFICIAL, ADMIN)
ATTEMPTS_KEPT = timedelta(days=30)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")



@functools.lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    """argon2id with the configured cost, and a hash to verify when the account does not exist (so a
    wrong name takes as long as a wrong password)."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    return hasher, hasher.hash("motcua-no-such-user")


def hasher(cfg: StaffConfig) -> PasswordHasher:
    return _hasher(cfg.password_time_cost, cfg.password_memory_kib)[0]


class UserError(ValueError):
    """A bad username, role or password; the message is for the person typing."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of one sign-in attempt. `reason`: ok, bad, locked, address_blocked."""

    reason: str
    user: Mapping[str, Any] | None = None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def normalise_username(raw: str) -> str:
    return (raw or "").strip().lower()[:64]


def check_password_rules(password: str, cfg: StaffConfig) -> None:
    if len(password) < cfg.min_password_length:
        raise UserError(f"password must have at least {cfg.min_password_length} characters")
    if len(password) > 1024:
        raise UserError("password longer than 1024 characters")


def hash_password(password: str, cfg: StaffConfig) -> str:
    return hasher(cfg).hash(password)


def get(conn: sa.Connection, user_id: int) -> Mapping[str, Any] | None:
    return conn.execute(sa.select(staff_users).where(staff_users.c.id == user_id)).mappings().first()


def get_by_name(conn: sa.Connection, username: str) -> Mapping[str, Any] | None:
    return conn.execute(
        sa.select(staff_users).where(staff_users.c.username == normalise_username(username))
    ).mappings().first()


def list_users(conn: sa.Connection, now: datetime | None = None) -> list[Mapping[str, Any]]:
    """Every account; `locked_until` is the latest lockout of the account from any address."""
    t = staff_lockouts.c
    lock = (sa.select(sa.func.max(t.locked_until)).where(t.username == staff_users.c.username,
                                                          t.locked_until > (now or utcnow()))
            .scalar_subquery())
    cols = [c for c in staff_users.c if c.name != "locked_until"]
    return list(conn.execute(sa.select(*cols, sa.type_coerce(lock, UtcDateTime).label("locked_until"))
                             .order_by(staff_users.c.username)).mappings())


def create_user(conn: sa.Connection, cfg: StaffConfig, username: str, password: str, *, role: str = OFFICIAL,
                display_name: str = "") -> int:
    """Add an account; raises UserError for a bad name, role, password or a name already taken."""
    name = normalise_username(username)
    if not USERNAME_RE.match(name):
        raise UserError("username: 2-64 characters, letters a-z, digits, dot, dash, underscore")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    check_password_rules(password, cfg)
    if get_by_name(conn, name) is not None:
        raise UserError(f"username {name!r} is already taken")
    now = utcnow()
    return conn.execute(staff_users.insert().values(
        username=name, display_name=display_name.strip()[:200], password_hash=hash_password(password, cfg),
        role=role, active=True, failed_logins=0, session_epoch=0, created_at=now, updated_at=now,
    )).inserted_primary_key[0]


def set_password(conn: sa.Connection, cfg: StaffConfig, user_id: int, password: str) -> None:
    check_password_rules(password, cfg)
    conn.execute(staff_users.update().where(staff_users.c.id == user_id).values(
        password_hash=hash_password(password, cfg), session_epoch=staff_users.c.session_epoch + 1,
        failed_logins=0, locked_until=None, updated_at=utcnow(),
    ))


def set_active(conn: sa.Connection, user_id: int, active: bool) -> None:
    values: dict[str, Any] = {"active": active, "updated_at": utcnow()}
    if not active:
        values["session_epoch"] = staff_users.c.session_epoch + 1  # sign the person out everywhere
    conn.execute(staff_users.update().where(staff_users.c.id == user_id).values(**values))


def unlock(conn: sa.Connection, user_id: int, address: str | None = None) -> int:
    """End the account's sign-in lockouts (from every address, or one); returns how many ended."""
    row = get(conn, user_id)
    if row is None:
        return 0
    conn.execute(staff_users.update().where(staff_users.c.id == user_id).values(
        failed_logins=0, locked_until=None, updated_at=utcnow()))
    where = staff_lockouts.c.username == row["username"]
    if address is not None:
        where &= staff_lockouts.c.address == address
    return conn.execute(staff_lockouts.delete().where(where)).rowcount


def _recent_failures(conn: sa.Connection, since: datetime, *, address: str | None = None,
                     username: str | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(staff_login_attempts).where(
        staff_login_attempts.c.at >= since, staff_login_attempts.c.succeeded.is_(False))
    if address is not None:
        q = q.where(staff_login_attempts.c.address == address)
    if username is not None:
        q = q.where(staff_login_attempts.c.username == username)
    return conn.execute(q).scalar_one()


# argon2id takes 64 MiB and most of a core per check: 16 sign-ins at once in a worker would take 1 GiB
# of a Pi's memory and starve the thread that holds SQLite's write lock past its busy timeout.
_HASH_SLOTS = threading.BoundedSemaphore(2)


def _count_attempt(conn: sa.Connection, cfg: StaffConfig, name: str, address: str, now: datetime) -> tuple[int, Any]:
    """Count this attempt for (name, address) in one statement and return (attempts, locked_until).

    An upsert with RETURNING is atomic on SQLite (under BEGIN IMMEDIATE) and PostgreSQL (row lock),
    so parallel attempts each see their own number: only the first `lockout_failures` of them get
    to the password check. A window that ran out (or an expired lock) starts again at 1.
    """
    t = staff_lockouts.c
    window = now - timedelta(minutes=cfg.lockout_minutes)
    if conn.dialect.name == "postgresql":  # imported here: a kiosk on SQLite never loads this dialect
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    ins = insert(staff_lockouts)
    fresh = sa.or_(sa.and_(t.locked_until.is_not(None), t.locked_until <= now),
                   sa.and_(t.locked_until.is_(None), t.window_start < window))
    stmt = ins.values(username=name, address=address, attempts=1, window_start=now).on_conflict_do_update(
        index_elements=[t.username, t.address],
        set_={"attempts": sa.case((fresh, 1), else_=t.attempts + 1),
              "window_start": sa.case((fresh, now), else_=t.window_start),
              "locked_until": sa.case((fresh, None), else_=t.locked_until)},
    ).returning(t.attempts, t.locked_until)
    attempts, locked_until = conn.execute(stmt).one()
    return attempts, locked_until


def _lock(conn: sa.Connection, name: str, address: str, until: datetime) -> None:
    conn.execute(staff_lockouts.update().where(staff_lockouts.c.username == name,
                                                staff_lockouts.c.address == address).values(locked_until=until))


def authenticate(engine: sa.Engine, cfg: StaffConfig, username: str, password: str, address: str,
                 now: datetime | None = None) -> SignIn:
    """Check one sign-in attempt and record it.

    The attempt is counted first, atomically, per account name and client address; an attempt
    over `lockout_failures` in the window is refused without checking the password, so parallel
    guesses cannot get more than that many checked, and a right password after the lock does not
    sign in. Only that address is locked out: a LAN client guessing cannot lock the official out of
    their own PC. The argon2 verification (tens of ms, more on a Pi) runs outside any write
    transaction, so a sign-in never holds SQLite's write lock while it hashes.
    """
    now = now or utcnow()
    name = normalise_username(username) or "-"
    address = (address or "-")[:64]
    window = now - timedelta(minutes=cfg.lockout_minutes)
    lock_until = now + timedelta(minutes=cfg.lockout_minutes)
    result: SignIn | None = None
    with engine.begin() as conn:
        if _recent_failures(conn, window, address=address) >= cfg.address_failures:
            result = SignIn("address_blocked")
        else:
            attempts, locked_until = _count_attempt(conn, cfg, name, address, now)
            if locked_until is not None and locked_until > now:
                result = SignIn("locked", locked_until=locked_until)
            elif attempts > cfg.lockout_failures:
                _lock(conn, name, address, lock_until)
                result = SignIn("locked", locked_until=lock_until)
            else:
                user = get_by_name(conn, name) if name != "-" else None
        if result is not None:
            _record_attempt(conn, name, address, False, now)
    if result is not None:
        return result
    with _HASH_SLOTS:
        if user is None or not user["active"]:
            verify_password(_hasher(cfg.password_time_cost, cfg.password_memory_kib)[1], password or "")
            ok, rehash = False, None  # unknown names lock like real ones: the message tells nothing
        else:
            ok = verify_password(user["password_hash"], password or "")
            rehash = (hash_password(password, cfg) if ok and hasher(cfg).check_needs_rehash(user["password_hash"])
                      else None)
    with engine.begin() as conn:
        where = (staff_lockouts.c.username == name) & (staff_lockouts.c.address == address)
        if ok:
            values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
            if rehash:
                values["password_hash"] = rehash
            conn.execute(staff_users.update().where(staff_users.c.id == user["id"]).values(**values))
            conn.execute(staff_lockouts.delete().where(where))
            result = SignIn("ok", user=get(conn, user["id"]))
        elif attempts >= cfg.lockout_failures:
            _lock(conn, name, address, lock_until)
            result = SignIn("locked", user=user, locked_until=lock_until)
        else:
            result = SignIn("bad", user=user)
        _record_attempt(conn, name, address, result.ok, now)
        if result.ok:  # attempts only matter for the lockout window; the audit log keeps the history
            conn.execute(staff_login_attempts.delete().where(staff_login_attempts.c.at < now - ATTEMPTS_KEPT))
            conn.execute(staff_lockouts.delete().where(staff_lockouts.c.window_start < now - ATTEMPTS_KEPT))
    return result


def _record_attempt(conn: sa.Connection, name: str, address: str, ok: bool, now: datetime) -> None:
    conn.execute(staff_login_attempts.insert().values(at=now, username=name, address=address, succeeded=ok))


def locked_addresses(conn: sa.Connection, username: str, now: datetime | None = None) -> list[Mapping[str, Any]]:
    """The addresses from which this account is locked out now (address, locked_until)."""
    t = staff_lockouts.c
    return list(conn.execute(
        sa.select(t.address, t.locked_until).where(t.username == normalise_username(username),
                                                   t.locked_until > (now or utcnow())).order_by(t.address)
    ).mappings())


_VERIFIER = PasswordHasher()


def verify_password(stored: str, password: str) -> bool:
    try:
        # Any argon2 hash verifies whatever its parameters (they are part of the hash string).
        return _VERIFIER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
