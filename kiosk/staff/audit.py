"""The audit log: who did what to which thing, when, from where. Written in the same transaction
as the action itself, so an action without its audit row cannot exist."""
from __future__ import annotations

import json
from typing import Any, Mapping

import sqlalchemy as sa

from kiosk.staff.models import staff_audit
from motcua.timeutil import utcnow

# Action codes; the audit page shows a translated label for each.
LOGIN, LOGIN_FAILED, LOGIN_LOCKED, LOGOUT = "login", "login_failed", "login_locked", "logout"
SESSION_EXPIRED = "session_expired"
DOSSIER_STATUS, DOSSIER_PHONE, DOSSIER_SLIP = "dossier_status", "dossier_phone", "dossier_slip"
NOTICE_RETRY, NOTICE_CANCEL, NOTICE_RESEND, NOTICE_MARK_SENT = (
    "notice_retry", "notice_cancel", "notice_resend", "notice_mark_sent")
PRINT_REPRINT = "print_reprint"
COUNTER, PAGE_ACTION = "counter", "page_action"  # recorded by the guard for other areas' pages
USER_ADD, USER_DISABLE, USER_ENABLE, USER_PASSWORD, USER_UNLOCK = (
    "user_add", "user_disable", "user_enable", "user_password", "user_unlock")


def record(conn: sa.Connection, *, actor: str, action: str, target: str | None = None,
           detail: Mapping[str, Any] | None = None, address: str | None = None) -> None:
    conn.execute(staff_audit.insert().values(
        at=utcnow(), actor=actor[:100], action=action[:32], target=(target or None) and target[:200],
        detail=json.dumps(dict(detail), ensure_ascii=False, default=str) if detail else None,
        address=(address or None) and address[:64],
    ))


def recent(conn: sa.Connection, *, limit: int = 100, before_id: int | None = None,
           actor: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Newest first; `before_id` pages backwards."""
    q = sa.select(staff_audit).order_by(staff_audit.c.id.desc()).limit(limit)
    if before_id:
        q = q.where(staff_audit.c.id < before_id)
    if actor:
        q = q.where(staff_audit.c.actor == actor)
    if action:
        q = q.where(staff_audit.c.action == action)
    out = []
    for row in conn.execute(q).mappings():
        item = dict(row)
        try:
            item["detail"] = json.loads(row["detail"]) if row["detail"] else {}
        except ValueError:
            item["detail"] = {"text": row["detail"]}
        out.append(item)
    return out
