"""Staff accounts: argon2 password hashes, roles, sign-in with rate limit and lockout.

Plain functions on a connection, used by the pages and by `kiosk user ...` alike.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk.staff.models import staff_login_attempts, staff_users
from motcua.config import StaffConfig
from motcua.db import reading
from motcua.timeutil import utcnow

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


def list_users(conn: sa.Connection) -> list[Mapping[str, Any]]:
    return list(conn.execute(sa.select(staff_users).order_by(staff_users.c.username)).mappings())


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


def unlock(conn: sa.Connection, user_id: int) -> None:
    conn.execute(staff_users.update().where(staff_users.c.id == user_id).values(
        failed_logins=0, locked_until=None, updated_at=utcnow()))


def _recent_failures(conn: sa.Connection, since: datetime, *, address: str | None = None,
                     username: str | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(staff_login_attempts).where(
        staff_login_attempts.c.at >= since, staff_login_attempts.c.succeeded.is_(False))
    if address is not None:
        q = q.where(staff_login_attempts.c.address == address)
    if username is not None:
        q = q.where(staff_login_attempts.c.username == username)
    return conn.execute(q).scalar_one()


def authenticate(engine: sa.Engine, cfg: StaffConfig, username: str, password: str, address: str,
                 now: datetime | None = None) -> SignIn:
    """Check one sign-in attempt and record it.

    The argon2 verification (tens of ms, more on a Pi) runs outside any write transaction, so a
    sign-in never holds SQLite's write lock while it hashes; the counters are updated atomically
    after it.
    """
    now = now or utcnow()
    name = normalise_username(username)
    address = (address or "-")[:64]
    window = now - timedelta(minutes=cfg.lockout_minutes)
    with reading(engine) as conn:
        blocked = _recent_failures(conn, window, address=address) >= cfg.address_failures
        user = get_by_name(conn, name) if name and not blocked else None
        name_failures = _recent_failures(conn, window, username=name or "-") if not blocked else 0
    if blocked:
        result = SignIn("address_blocked")
    elif user is None or not user["active"]:
        verify_password(_hasher(cfg.password_time_cost, cfg.password_memory_kib)[1], password or "")
        # Unknown names lock like real ones, so the lock message does not tell which names exist.
        if name_failures + 1 >= cfg.lockout_failures:
            result = SignIn("locked", locked_until=now + timedelta(minutes=cfg.lockout_minutes))
        else:
            result = SignIn("bad")
    elif user["locked_until"] is not None and user["locked_until"] > now:
        result = SignIn("locked", user=user, locked_until=user["locked_until"])
    else:
        ok = verify_password(user["password_hash"], password or "")
        rehash = hash_password(password, cfg) if ok and hasher(cfg).check_needs_rehash(user["password_hash"]) else None
        result = None
    with engine.begin() as conn:
        if result is None:
            result = _record_verdict(conn, cfg, user, ok, rehash, now)
        conn.execute(staff_login_attempts.insert().values(
            at=now, username=name or "-", address=address, succeeded=result.ok))
        if result.ok:  # attempts only matter for the lockout window; the audit log keeps the history
            conn.execute(staff_login_attempts.delete().where(staff_login_attempts.c.at < now - ATTEMPTS_KEPT))
    return result


def _record_verdict(conn: sa.Connection, cfg: StaffConfig, user: Mapping[str, Any], ok: bool,
                    rehash: str | None, now: datetime) -> SignIn:
    where = staff_users.c.id == user["id"]
    if ok:
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if rehash:
            values["password_hash"] = rehash
        conn.execute(staff_users.update().where(where).values(**values))
        return SignIn("ok", user=get(conn, user["id"]))
    # Counted in the database (not from what we read before hashing): concurrent tries all count.
    conn.execute(staff_users.update().where(where).values(failed_logins=staff_users.c.failed_logins + 1))
    failures = conn.execute(sa.select(staff_users.c.failed_logins).where(where)).scalar_one()
    if failures >= cfg.lockout_failures:
        until = now + timedelta(minutes=cfg.lockout_minutes)
        conn.execute(staff_users.update().where(where).values(failed_logins=0, locked_until=until, updated_at=now))
        return SignIn("locked", user=user, locked_until=until)
    return SignIn("bad", user=user)


_VERIFIER = PasswordHasher()


def verify_password(stored: str, password: str) -> bool:
    try:
        # Any argon2 hash verifies whatever its parameters (they are part of the hash string).
        return _VERIFIER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
