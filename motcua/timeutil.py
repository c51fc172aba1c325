"""Time helpers: the database holds UTC; people see the site's local time (Asia/Ho_Chi_Minh)."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
