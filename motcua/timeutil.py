"""Time helpers: the database holds UTC; people see the site's local time (Asia/Ho_Chi_Minh).

SQLAlchemy is imported only when `UtcDateTime` is first used (by a table definition): the scanner's
supervisor uses `utcnow` and `db_time` and must not pay for it (see motcua/stations.py).
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from typing import Any

# How SQLAlchemy's SQLite DateTime stores a value (its default storage format): text that sorts as time.
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_db_utc(value: datetime, dialect: str) -> datetime:
    """An aware datetime as the database keeps it: UTC, and naive on SQLite (which has no time zones)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware one")
    value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None) if dialect == "sqlite" else value


def db_time(value: datetime, dialect: str) -> datetime | str:
    """`value` ready for a DB-API driver without SQLAlchemy: on SQLite the text UtcDateTime would store."""
    value = to_db_utc(value, dialect)
    return value.strftime(SQLITE_FORMAT) if dialect == "sqlite" else value


@cache
def _utc_datetime() -> type:
    import sqlalchemy as sa

    class UtcDateTime(sa.types.TypeDecorator):
        """Timezone-aware UTC datetimes on every backend (SQLite has no time zones of its own)."""

        impl = sa.DateTime(timezone=True)
        cache_ok = True

        def process_bind_param(self, value, dialect):
            return None if value is None else to_db_utc(value, dialect.name)

        def process_result_value(self, value, dialect):
            if value is None:
                return None
            if value.tzinfo is None:
                return value.replace(tzinfo=timezone.utc)
            return value.astimezone(timezone.utc)

    UtcDateTime.__module__, UtcDateTime.__qualname__ = __name__, "UtcDateTime"
    return UtcDateTime


def __getattr__(name: str) -> Any:
    # `from motcua.timeutil import UtcDateTime` works as before; the class is made on that first import.
    if name == "UtcDateTime":
        return _utc_datetime()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
