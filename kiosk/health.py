"""Device health: camera, printer, modem, disk, database, last ingest, outbox.

The gathering functions are plain (config, engine) functions, importable without Flask, so that
`kiosk doctor` reuses them. The blueprint `bp` adds `GET /healthz` for monitoring: it answers without
sign-in, so it carries states and numbers only, never free text (which could hold a phone number
or a name); signed-in staff see the details on /staff/health.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa
from flask import Blueprint, jsonify

from kiosk.context import get_config, get_engine
from kiosk.printing.jobs import printer_state
from kiosk.printing.states import PrinterState
from kiosk.scanner.status import read_status
from kiosk.sources.api import sync_health
from kiosk.store.schema import ingest_runs
from motcua.config import Config
from motcua.db import is_sqlite, reading
from motcua.timeutil import utcnow
from sms_gateway import api as sms

log = logging.getLogger(__name__)

OK, WARNING, ERROR, UNKNOWN = "ok", "warning", "error", "unknown"
_RANK = {OK: 0, UNKNOWN: 0, WARNING: 1, ERROR: 2}

_quick_check_lock = threading.Lock()
_quick_check_cache: dict[str, tuple[float, str]] = {}


def _check(name: str, state: str, detail: str = "", **data: Any) -> dict[str, Any]:
    return {"name": name, "state": state, "detail": detail, "data": data}


def check_database(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    """A trivial query, and on SQLite `PRAGMA quick_check` (cached: it reads the whole file)."""
    backend = engine.dialect.name
    try:
        with reading(engine) as conn:
            conn.execute(sa.text("SELECT 1")).scalar_one()
    except Exception as exc:  # any driver error is the finding itself
        return _check("database", ERROR, f"cannot query the database: {exc}", backend=backend)
    if not is_sqlite(engine):
        return _check("database", OK, "answers", backend=backend)
    result = _quick_check(engine, cfg.staff.quick_check_interval_s)
    if result != "ok":
        return _check("database", ERROR, f"PRAGMA quick_check: {result[:500]}", backend=backend, quick_check=False)
    return _check("database", OK, "answers; quick_check ok", backend=backend, quick_check=True)


def _quick_check(engine: sa.Engine, interval_s: int) -> str:
    key = str(engine.url)
    with _quick_check_lock:
        cached = _quick_check_cache.get(key)
        if cached and time.monotonic() - cached[0] < interval_s:
            return cached[1]
        try:
            with reading(engine) as conn:
                rows = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
            result = "ok" if rows == ["ok"] else "; ".join(str(r) for r in rows[:10])
        except Exception as exc:  # a damaged file raises instead of reporting
            result = f"failed: {exc}"
        _quick_check_cache[key] = (time.monotonic(), result)
        return result


def check_disk(cfg: Config, engine: sa.Engine | None = None) -> dict[str, Any]:
    path = cfg.paths.data_dir
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return _check("disk", ERROR, f"cannot read free space of {path}: {exc.strerror}")
    free_mb, total_mb = usage.free // 2**20, usage.total // 2**20
    state = ERROR if free_mb < cfg.staff.disk_error_mb else WARNING if free_mb < cfg.staff.disk_warn_mb else OK
    return _check("disk", state, f"{free_mb} MB free of {total_mb} MB in {path}", free_mb=free_mb, total_mb=total_mb)


def check_last_ingest(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    try:
        with reading(engine) as conn:
            last = conn.execute(sa.select(sa.func.max(ingest_runs.c.finished_at))
                                .where(ingest_runs.c.failure.is_(None))).scalar_one()
    except Exception as exc:
        return _check("last_ingest", ERROR, f"cannot read ingest runs: {exc}")
    if last is None:
        return _check("last_ingest", WARNING, "no dossier data received yet", finished_at=None, age_hours=None)
    if last.tzinfo is None:  # SQLite aggregate results skip the column's type decorator
        last = last.replace(tzinfo=utcnow().tzinfo)
    age_h = round((utcnow() - last).total_seconds() / 3600, 1)
    state = WARNING if age_h > cfg.staff.ingest_stale_hours else OK
    return _check("last_ingest", state, f"last ingest finished {age_h} h ago",
                  finished_at=last.isoformat(), age_hours=age_h)


def check_camera(cfg: Config, engine: sa.Engine | None = None) -> dict[str, Any]:
    try:
        st = read_status(cfg)
    except Exception as exc:
        return _check("camera", ERROR, f"cannot read scanner status: {exc}")
    raw = str(st.get("state") or "unknown")
    state = {"ok": OK, "starting": WARNING}.get(raw, ERROR)
    return _check("camera", state, str(st.get("detail") or ""), status=raw, updated_at=_iso(st.get("updated_at")))


def check_printer(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    try:
        with reading(engine) as conn:
            st = printer_state(conn, cfg.station.id) or {}
    except Exception as exc:
        return _check("printer", ERROR, f"cannot read printer state: {exc}")
    # printer_state() reports ok (paper_low as a flag), paper_out, offline (also: worker down) or unknown.
    raw = str(st.get("state") or PrinterState.UNKNOWN)
    if raw == PrinterState.OK:
        state = WARNING if st.get("paper_low") else OK
    elif raw == PrinterState.UNKNOWN:
        state = UNKNOWN
    else:
        state = ERROR
    return _check("printer", state, str(st.get("detail") or ""), status=raw, updated_at=_iso(st.get("updated_at")),
                  paper_low=bool(st.get("paper_low")), worker_alive=st.get("worker_alive"),
                  pending_jobs=st.get("pending_jobs"))


def _one_modem(st: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(state, detail, data) for one gateway's heartbeat."""
    raw = str(st.get("state") or "unknown")
    data = {
        "gateway": st.get("gateway"), "status": raw, "sim": st.get("sim"), "registered": st.get("registered"),
        "network": st.get("network"), "signal_percent": st.get("signal_percent"),
        "balance_low": bool(st.get("balance_low")), "balance_checked_at": _iso(st.get("balance_checked_at")),
        "last_seen_at": _iso(st.get("last_seen_at")), "gateway_running": not st.get("stale", False),
        "capped": bool(st.get("capped")), "capped_until": _iso(st.get("capped_until")),
        "daily_cap": st.get("daily_cap"), "sent_today": st.get("sent_today"),
    }
    detail = str(st.get("detail") or "")
    if st.get("balance_text"):
        detail = f"{detail}; balance: {st['balance_text']}".strip("; ")
    if st.get("stale"):
        return ERROR, f"SMS gateway not running (last seen {data['last_seen_at']}); {detail}".strip("; "), data
    if raw != sms.ModemState.OK:
        return ERROR, detail, data
    if st.get("capped"):
        detail = (f"the SIM reached its daily cap ({st.get('daily_cap')} parts): no sending until "
                  f"{data['capped_until']}; {detail}").strip("; ")
        return WARNING, detail, data
    if st.get("balance_low") or (st.get("signal_percent") is not None and st["signal_percent"] < 15):
        return WARNING, detail, data
    return OK, detail, data


def check_modem(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    """Every gateway's modem. With several, one down is a warning while another still sends. Free text
    (details may name a number) stays in the check's detail, which /healthz leaves out."""
    try:
        with reading(engine) as conn:
            rows = sms.list_modem_health(conn)
    except Exception as exc:
        return _check("modem", ERROR, f"cannot read modem health: {exc}")
    if not rows:
        return _check("modem", UNKNOWN, "the SMS gateway has never run", status=None)
    modems = [_one_modem(st) for st in rows]
    if len(modems) == 1:
        state, detail, data = modems[0]
        return _check("modem", state, detail, **data, modems=[{"state": state, **data}])
    working = [m for m in modems if m[0] != ERROR and not m[2]["capped"]]
    state = max((m[0] for m in modems), key=lambda s: _RANK.get(s, 2))
    if working and state == ERROR:
        state = WARNING  # the hall still sends through the others (a SIM at its cap does not count)
    first = working[0] if working else modems[0]
    detail = "; ".join(f"{m[2]['gateway']}: {m[1] or m[2]['status']}" for m in modems)
    return _check("modem", state, f"{len(working)} of {len(modems)} modems sending. {detail}", **first[2],
                  modems=[{"state": st, **data} for st, _d, data in modems])


def check_outbox(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    try:
        with reading(engine) as conn:
            counts = sms.counts_by_state(conn)
    except Exception as exc:
        return _check("outbox", ERROR, f"cannot read the outbox: {exc}")
    waiting = counts[sms.NoticeState.FAILED] + counts[sms.NoticeState.UNCERTAIN]
    state = WARNING if waiting else OK
    return _check("outbox", state, f"{waiting} notice(s) need an official", counts=counts)


def check_source(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    """The sync service's record: last success, lag, last error (a log line, free of credentials)."""
    report = sync_health(cfg, engine)
    return _check("source", report["state"], report["detail"], **report["data"])


def check_limits(cfg: Config, engine: sa.Engine | None = None) -> dict[str, Any]:
    """Today's refusals at the kiosk screen (kiosk/web/ratelimit.py): a few lookups or tickets over the
    station limits is a child or a gadget; numbers used up or a full queue needs an official."""
    from kiosk.web.ratelimit import refusals_today
    from motcua.hours import local_now

    counts = refusals_today(cfg.paths.data_dir, local_now(cfg.site).date().isoformat())
    detail = (f"today: {counts['ticket']} ticket(s), {counts['lookup']} lookup(s), {counts['slip']} slip(s) "
              f"over the station limits; {counts['numbers']} refused as numbers ran out, "
              f"{counts['waiting']} as the queue was full")
    return _check("limits", WARNING if counts["numbers"] or counts["waiting"] else OK, detail, **counts)


GATHERERS: tuple[Callable[[Config, sa.Engine], dict[str, Any]], ...] = (
    check_database, check_disk, check_last_ingest, check_source, check_camera, check_printer, check_modem,
    check_outbox, check_limits,
)


def gather(cfg: Config, engine: sa.Engine) -> dict[str, Any]:
    """Every check; `status` is the worst of them. One check failing never stops the others."""
    checks = []
    for fn in GATHERERS:
        try:
            checks.append(fn(cfg, engine))
        except Exception as exc:  # a bug in one check must not hide the rest
            log.exception("health check %s failed", fn.__name__)
            checks.append(_check(fn.__name__.removeprefix("check_"), ERROR, f"check failed: {exc}"))
    worst = max((c["state"] for c in checks), key=lambda s: _RANK.get(s, 2), default=OK)
    return {"status": OK if worst == UNKNOWN else worst, "checked_at": utcnow().isoformat(), "checks": checks}


def public_view(report: dict[str, Any]) -> dict[str, Any]:
    """What /healthz tells anyone: states and numbers, no free text (it may name a person)."""
    return {
        "status": report["status"],
        "checked_at": report["checked_at"],
        "checks": {c["name"]: {"state": c["state"], **c["data"]} for c in report["checks"]},
    }


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return None if value is None else str(value)


bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    report = gather(get_config(), get_engine())
    resp = jsonify(public_view(report))
    resp.status_code = 503 if report["status"] == ERROR else 200
    resp.headers["Cache-Control"] = "no-store"
    return resp


__all__ = ["gather", "public_view", "check_database", "check_disk", "check_last_ingest", "check_camera",
           "check_printer", "check_modem", "check_outbox", "OK", "WARNING", "ERROR", "UNKNOWN"]
