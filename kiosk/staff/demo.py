"""`kiosk demo`: one admin account with a fresh random password, so the staff pages can be tried."""
from __future__ import annotations

import secrets

import sqlalchemy as sa

from kiosk.staff import audit, users
from motcua.config import Config

DEMO_ADMIN = "admin"


def seed_demo_account(engine: sa.Engine, cfg: Config) -> tuple[str, str] | None:
    """Create `admin` with a random password if there is no account yet; return (name, password)."""
    with engine.begin() as conn:
        if users.list_users(conn):
            return None
        password = secrets.token_urlsafe(9)
        users.create_user(conn, cfg.staff, DEMO_ADMIN, password, role=users.ADMIN, display_name="Quản trị (demo)")
        audit.record(conn, actor="demo", action=audit.USER_ADD, target=DEMO_ADMIN, detail={"role": users.ADMIN})
    return DEMO_ADMIN, password
