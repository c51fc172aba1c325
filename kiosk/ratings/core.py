"""Citizen satisfaction ratings: record one tap, report by day / month / counter, export CSV.

Anonymous by design (Decree 13/2023: collect the least): a rating keeps its score, the reasons the
citizen chose, where it was given (kiosk or a counter's citizen-facing screen), and the counter,
service and procedure it is about. No dossier code, ticket, phone or name.

Ratings reach the provincial system through kiosk/ratings/push.py, where the configured source has a
voting API (OpenCPS with `[source.opencps] voting_id`); otherwise they stay on the kiosk.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any, Iterable

import sqlalchemy as sa

from kiosk.ratings.schema import ratings
from motcua.config import Config
from motcua.hours import local_now
from motcua.i18n import N_
from motcua.timeutil import utcnow

# 1..5 as VNPT iQMS counters ask (DOMAIN.md): a face and words, reasons asked at 3 and below.
SCORES: dict[int, str] = {
    5: N_("Rất hài lòng"), 4: N_("Hài lòng"), 3: N_("Bình thường"), 2: N_("Không hài lòng"),
    1: N_("Rất không hài lòng"),
}
ASK_REASONS_AT = 3
REASONS: dict[str, str] = {
    "wait": N_("Chờ lâu"),
    "attitude": N_("Thái độ cán bộ"),
    "guidance": N_("Hướng dẫn chưa rõ"),
    "documents": N_("Phải đi lại nhiều lần"),
    "late": N_("Trả kết quả trễ hẹn"),
    "other": N_("Lý do khác"),
}
CHANNELS = ("kiosk", "counter")
GROUPS = ("day", "month", "counter")


class InvalidRating(ValueError):
    pass


def record(conn: sa.Connection, cfg: Config, score: int, reasons: Iterable[str] = (), *, channel: str,
           counter: str | None = None, service_code: str | None = None, procedure: str | None = None,
           now: datetime | None = None) -> int:
    """Store one rating; unknown scores, reasons or channels raise InvalidRating (nothing is stored)."""
    if score not in SCORES:
        raise InvalidRating(f"score {score!r} is not 1..5")
    if channel not in CHANNELS:
        raise InvalidRating(f"unknown channel {channel!r}")
    chosen = sorted(set(reasons))
    if any(r not in REASONS for r in chosen):
        raise InvalidRating("unknown reason")
    now = now or utcnow()
    return int(conn.execute(sa.insert(ratings).values(
        created_at=now, day=now.astimezone(local_now(cfg.site).tzinfo).date(), score=score,
        reasons=",".join(chosen if score <= ASK_REASONS_AT else []), channel=channel,
        counter=(counter or None) and counter[:16], service_code=(service_code or None) and service_code[:8],
        procedure=(procedure or None) and procedure[:300],
    ).returning(ratings.c.id)).scalar_one())


def report(conn: sa.Connection, group: str, start: date, end: date) -> list[dict[str, Any]]:
    """Per day, month or counter between `start` and `end` (local days, inclusive): count, mean score,
    share satisfied (4-5), count per score and per reason."""
    if group not in GROUPS:
        raise ValueError(f"unknown grouping {group!r}")
    rows = conn.execute(sa.select(ratings.c.day, ratings.c.counter, ratings.c.score, ratings.c.reasons)
                        .where(ratings.c.day >= start, ratings.c.day <= end)).all()
    out: dict[str, dict[str, Any]] = {}
    for day, counter, score, reasons in rows:
        key = {"day": day.isoformat(), "month": f"{day:%Y-%m}", "counter": counter or "kiosk"}[group]
        g = out.setdefault(key, {"key": key, "count": 0, "total": 0, "satisfied": 0,
                                 "scores": dict.fromkeys(SCORES, 0), "reasons": dict.fromkeys(REASONS, 0)})
        g["count"] += 1
        g["total"] += score
        g["satisfied"] += score >= 4
        g["scores"][score] += 1
        for r in filter(None, (reasons or "").split(",")):
            if r in g["reasons"]:
                g["reasons"][r] += 1
    result = []
    for key in sorted(out):
        g = out[key]
        result.append({**g, "mean": round(g["total"] / g["count"], 2),
                       "satisfied_pct": round(100 * g["satisfied"] / g["count"], 1)})
    return result


def to_csv(lines: list[dict[str, Any]], group: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([group, "count", "mean", "satisfied_pct", *(f"score_{s}" for s in sorted(SCORES)),
                *(f"reason_{r}" for r in REASONS)])
    for g in lines:
        w.writerow([g["key"], g["count"], g["mean"], g["satisfied_pct"], *(g["scores"][s] for s in sorted(SCORES)),
                    *(g["reasons"][r] for r in REASONS)])
    return buf.getvalue()
