"""The outbox: durable notices moving through named states.

`enqueue` is the one way in. It runs inside the caller's transaction, so a dossier's status change
and its notice commit together or not at all, and its idempotency key makes a repeated event a
no-op: the same change never makes two notices.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from motcua.timeutil import utcnow
from sms_gateway.schema import notices

# States a notice moves through (see docs/sms.md).
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
RETRY = "retry"  # waiting to retry after a temporary error
FAILED = "failed"  # permanent, with the reason in last_error
UNCERTAIN = "uncertain"  # the modem may have taken it; an official decides
CANCELLED = "cancelled"
STATES = (QUEUED, SENDING, SENT, RETRY, FAILED, UNCERTAIN, CANCELLED)


def enqueue(
    conn: sa.Connection,
    *,
    key: str,
    phone: str,
    kind: str,
    params: dict[str, Any] | None = None,
    dossier_code: str | None = None,
) -> int | None:
    """Queue one notice unless a notice with this idempotency key exists.

    Returns the new notice id, or None when the key was already used.
    """
    if not key or len(key) > 200:
        raise ValueError("idempotency key must be 1..200 characters")
    exists = conn.execute(sa.select(notices.c.id).where(notices.c.idempotency_key == key)).first()
    if exists:
        return None
    now = utcnow()
    # A concurrent writer with the same key loses on the unique constraint; a savepoint keeps the
    # caller's transaction usable in that case.
    try:
        with conn.begin_nested():
            result = conn.execute(
                notices.insert().values(
                    idempotency_key=key,
                    dossier_code=dossier_code,
                    kind=kind,
                    phone_raw=phone,
                    params=json.dumps(params or {}, ensure_ascii=False, sort_keys=True, default=str),
                    state=QUEUED,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    except sa.exc.IntegrityError:
        return None
    return result.inserted_primary_key[0]
