"""Ratings to the provincial system, where the configured source has a voting API (OpenCPS).

Run after every pass of the sync service (`kiosk sync`), and by `kiosk ratings push`. In id order, one
rating at a time:
- before its request the rating is marked SENDING with a random marker that goes in the comment;
- a clear answer makes it PUSHED, with the system's id for it;
- any failure leaves it SENDING and holds every unsent rating back (poll_s, doubling up to
  backoff_max_s). The next try first asks the system for the marker: a push whose answer was lost
  (a timeout, a dropped connection) is found there and is never sent a second time.
OpenCPS keeps one answer per account per voting: when a push comes back with the id an earlier one
got, the earlier one is marked REPLACED, so staff see how many the province kept.
Sources without a voting API keep every rating on the kiosk (PENDING); the staff page says so.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from kiosk.ratings.core import REASONS
from kiosk.ratings.schema import ratings
from kiosk.sources.api import Source, SourceError, takes_ratings
from motcua.config import Config
from motcua.db import reading
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)


class PushState(StrEnum):
    PENDING = "pending"  # not sent yet (or kept on the kiosk: no voting API configured)
    SENDING = "sending"  # a push was started and no answer confirmed it: looked up before any resend
    PUSHED = "pushed"
    REPLACED = "replaced"  # pushed, then replaced on the system by a later push from the same account


UNSENT = (PushState.PENDING, PushState.SENDING)

# The comment is read by provincial officials, in Vietnamese; the reasons are the kiosk's own words.
COMMENT_REASONS = "Lý do"
COMMENT_COUNTER = "Quầy"
COMMENT_KIOSK = "Ki-ốt"
MARKER_PREFIX = "motcua-"


@dataclass
class PushReport:
    pushed: int = 0
    replaced: int = 0
    found: int = 0  # pushes whose answer had been lost, found on the system instead of sent again
    error: str | None = None
    held_until: datetime | None = None  # nothing tried: the back-off after an error runs until then
    local: bool = False  # the source takes no ratings: all stay on the kiosk


def comment_for(row: Any, marker: str) -> str:
    """What the provincial officials read with the score: reasons, where, and the push's marker."""
    parts = []
    reasons = [REASONS[r] for r in (row.reasons or "").split(",") if r in REASONS]
    if reasons:
        parts.append(f"{COMMENT_REASONS}: {', '.join(reasons)}")
    parts.append(f"{COMMENT_COUNTER} {row.counter}" if row.counter else COMMENT_KIOSK)
    if row.procedure:
        parts.append(row.procedure)
    parts.append(f"[{marker}]")
    return " · ".join(parts)


def _delay(cfg: Config, attempts: int) -> float:
    return min(cfg.source_.backoff_max_s, cfg.source_.poll_s * 2 ** max(0, attempts - 1))


def push_due(cfg: Config, engine: sa.Engine, source: Source | None, *, limit: int = 50,
             now: datetime | None = None) -> PushReport:
    """Push the unsent ratings that are due (at most `limit`). Never raises on the source's errors:
    they are kept on the rating and in the report."""
    if source is None or not source.takes_ratings(cfg):
        return PushReport(local=True)
    now = now or utcnow()
    report = PushReport()
    with reading(engine) as conn:
        held = conn.execute(sa.select(ratings.c.push_next_at)
                            .where(ratings.c.push_state.in_(UNSENT), ratings.c.push_next_at > now)
                            .order_by(ratings.c.push_next_at.desc()).limit(1)).scalar()
        if held is not None:
            report.held_until = held
            return report
        rows = conn.execute(sa.select(ratings).where(ratings.c.push_state.in_(UNSENT))
                            .order_by(ratings.c.id).limit(limit)).all()
    for row in rows:
        key = row.push_key or secrets.token_hex(12)
        marker = MARKER_PREFIX + key
        try:
            ref = source.find_rating(marker) if row.push_state == PushState.SENDING else None
            if ref is not None:
                report.found += 1
            else:
                with engine.begin() as conn:  # claimed: a second pusher running at once skips it
                    claimed = conn.execute(sa.update(ratings).where(
                        ratings.c.id == row.id, ratings.c.push_attempts == row.push_attempts,
                        ratings.c.push_state.in_(UNSENT),
                    ).values(push_state=PushState.SENDING, push_key=key, push_attempts=row.push_attempts + 1)).rowcount
                if not claimed:
                    break
                ref = source.push_rating(row.score, comment_for(row, marker))
        except SourceError as exc:
            report.error = str(exc)
            until = now + timedelta(seconds=_delay(cfg, row.push_attempts + 1))
            with engine.begin() as conn:
                conn.execute(sa.update(ratings).where(ratings.c.id == row.id)
                             .values(push_error=str(exc)[:500], push_attempts=row.push_attempts + 1))
                conn.execute(sa.update(ratings).where(ratings.c.push_state.in_(UNSENT))
                             .values(push_next_at=until))
            log.warning("ratings: push of rating %d failed (try %d), next try after %s: %s", row.id,
                        row.push_attempts + 1, until.isoformat(timespec="seconds"), exc)
            report.held_until = until
            break
        with engine.begin() as conn:
            conn.execute(sa.update(ratings).where(ratings.c.id == row.id).values(
                push_state=PushState.PUSHED, push_ref=ref, pushed_at=utcnow(), push_error=None, push_next_at=None))
            replaced = conn.execute(sa.update(ratings).where(
                ratings.c.push_ref == ref, ratings.c.id != row.id, ratings.c.push_state == PushState.PUSHED,
            ).values(push_state=PushState.REPLACED)).rowcount
        report.pushed += 1
        report.replaced += replaced
    if report.pushed or report.found:
        log.info("ratings: %d pushed, %d found already there, %d replaced on the system", report.pushed,
                 report.found, report.replaced)
    return report


def push_status(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    """For the staff page: counts per state, the last error, when the next try may run, and whether the
    configured source takes ratings at all (`local`: they stay on the kiosk)."""
    with reading(engine) as conn:
        counts = dict.fromkeys(PushState, 0)
        for state, n in conn.execute(sa.select(ratings.c.push_state, sa.func.count())
                                     .group_by(ratings.c.push_state)).all():
            if state in counts:
                counts[PushState(state)] = n
        head = conn.execute(sa.select(ratings.c.push_error, ratings.c.push_next_at, ratings.c.push_attempts)
                            .where(ratings.c.push_state.in_(UNSENT)).order_by(ratings.c.id).limit(1)).first()
        last_pushed = conn.execute(sa.select(ratings.c.pushed_at).where(ratings.c.pushed_at.is_not(None))
                                   .order_by(ratings.c.pushed_at.desc()).limit(1)).scalar()
    return {
        "local": not takes_ratings(cfg), "kind": cfg.source_.kind, "counts": {str(k): v for k, v in counts.items()},
        "unsent": counts[PushState.PENDING] + counts[PushState.SENDING],
        "error": head.push_error if head else None, "attempts": head.push_attempts if head else 0,
        "next_at": head.push_next_at if head else None, "last_pushed_at": last_pushed,
    }


def release_backoff(engine: sa.Engine) -> None:
    """End the back-off now (`kiosk ratings push --force`, after IT staff fixed the cause)."""
    with engine.begin() as conn:
        conn.execute(sa.update(ratings).where(ratings.c.push_state.in_(UNSENT)).values(push_next_at=None))
