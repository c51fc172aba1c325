"""One heartbeat row per gateway: what it last saw of its modem (SIM, network, signal, balance), the
parts its SIM sent today against the daily cap, and when it was last alive.

A gateway is one process driving one modem, named `<[station] id>/<[modem] name>` ("main/modem" on a
single box). It writes its own row as it runs (and in every claim's transaction); staff pages and
`sms-gateway status` read them all. A row whose `last_seen_at` is old means that gateway is not
running, and the notices it holds become uncertain (outbox.sweep_abandoned).
"""
from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from motcua.config import DEFAULT_STATION_ID, Config, ModemConfig
from motcua.i18n import N_
from motcua.timeutil import utcnow
from sms_gateway.schema import modem_health


def gateway_id(cfg: Config) -> str:
    """This gateway's name in the hall: the station it runs on and the modem it drives."""
    return f"{cfg.station.id}/{cfg.modem.name}"


DEFAULT_MODEM = ModemConfig().name
DEFAULT_GATEWAY = f"{DEFAULT_STATION_ID}/{DEFAULT_MODEM}"  # a box with no [station] or [modem] name


class ModemState(StrEnum):
    """What the gateway last found the modem in; stored in the heartbeat row as these strings."""
    OK = "ok"
    NO_SIM = "no_sim"
    PIN_REQUIRED = "pin_required"
    NO_NETWORK = "no_network"
    UNPLUGGED = "unplugged"
    ERROR = "error"



# The one wording per modem state: `sms-gateway status` prints it; the staff pages show it through
# their catalogue (these Vietnamese texts are its message ids, English in staff.po).
MODEM_STATE_LABELS: dict[ModemState, str] = {
    ModemState.OK: N_("Hoạt động bình thường"),
    ModemState.NO_SIM: N_("Không có SIM"),
    ModemState.PIN_REQUIRED: N_("SIM yêu cầu mã PIN"),
    ModemState.NO_NETWORK: N_("Không có sóng / chưa đăng ký mạng"),
    ModemState.UNPLUGGED: N_("Mất kết nối modem"),
    ModemState.ERROR: N_("Lỗi modem"),
}

_FIELDS = ("state", "sim", "registered", "network", "signal_percent", "model", "imei", "balance_text",
           "balance_amount", "balance_low", "balance_checked_at", "last_seen_at", "detail", "pid", "daily_cap",
           "capped_until")


def _reading(row: sa.Row, stale_after_s: float) -> dict[str, Any]:
    out = dict(row._mapping)
    now = utcnow()
    out["balance_low"] = bool(out["balance_low"])
    seen = out.get("last_seen_at")
    out["stale"] = seen is None or now - seen > timedelta(seconds=stale_after_s)
    out["label_vi"] = MODEM_STATE_LABELS.get(out["state"], out["state"])
    out["capped"] = out["capped_until"] is not None and out["capped_until"] > now
    return out


def read_modem_health(conn: sa.Connection, stale_after_s: float = 300,
                      gateway: str | None = None) -> dict[str, Any] | None:
    """One gateway's last heartbeat (None: the most recently seen gateway, the only one on a single box),
    or None if it never ran. `stale`: it stopped writing; `capped`: its SIM waits for midnight."""
    query = sa.select(modem_health)
    if gateway is None:
        query = query.order_by(modem_health.c.last_seen_at.desc().nulls_last(), modem_health.c.gateway).limit(1)
    else:
        query = query.where(modem_health.c.gateway == gateway)
    row = conn.execute(query).first()
    return None if row is None else _reading(row, stale_after_s)


def list_modem_health(conn: sa.Connection, stale_after_s: float = 300) -> list[dict[str, Any]]:
    """Every gateway's last heartbeat, by name; stale ones included (a dead gateway is shown, not hidden)."""
    rows = conn.execute(sa.select(modem_health).order_by(modem_health.c.gateway)).all()
    return [_reading(row, stale_after_s) for row in rows]


def write_modem_health(conn: sa.Connection, gateway: str = DEFAULT_GATEWAY, **fields: Any) -> None:
    """Upsert a gateway's heartbeat row with the given fields (others keep their values)."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown modem health fields {sorted(unknown)}")
    if "state" in fields and fields["state"] not in tuple(ModemState):
        raise ValueError(f"unknown modem state {fields['state']!r}")
    now = utcnow()
    fields = {**fields, "updated_at": now, "pid": fields.get("pid", os.getpid())}
    updated = conn.execute(modem_health.update().where(modem_health.c.gateway == gateway).values(**fields))
    if updated.rowcount == 0:
        conn.execute(modem_health.insert().values(gateway=gateway, **{"state": ModemState.ERROR, **fields}))


# --- the SIM's daily cap ------------------------------------------------------------------------

def parts_sent_on(conn: sa.Connection, gateway: str, day: date) -> int:
    """SMS parts this gateway's SIM was handed on this local day."""
    row = conn.execute(sa.select(modem_health.c.sent_day, modem_health.c.sent_today)
                       .where(modem_health.c.gateway == gateway)).first()
    return row.sent_today if row is not None and row.sent_day == day else 0


def count_parts(conn: sa.Connection, gateway: str, day: date, parts: int) -> None:
    """Add a claimed notice's parts to the day's count; also the gateway's heartbeat (it is alive)."""
    now = utcnow()
    updated = conn.execute(modem_health.update().where(modem_health.c.gateway == gateway).values(
        sent_today=sa.case((modem_health.c.sent_day == day, modem_health.c.sent_today + parts), else_=parts),
        sent_day=day, last_seen_at=now, updated_at=now,
    ))
    if updated.rowcount == 0:
        conn.execute(modem_health.insert().values(gateway=gateway, state=ModemState.OK, sent_day=day,
                                                  sent_today=parts, last_seen_at=now, updated_at=now,
                                                  pid=os.getpid()))


def parse_balance(text: str, pattern: str) -> float | None:
    """The main balance in a USSD answer ("TKC: 12.345 d ..." -> 12345.0), or None if not found."""
    match = re.search(pattern, text or "", re.IGNORECASE)
    if not match:
        return None
    raw = match.group(1).strip(".,")
    # Vietnamese operators group thousands with "." (sometimes ","); decimals are not used for VND.
    digits = re.sub(r"[.,]", "", raw)
    return float(digits) if digits.isdigit() else None


def balance_is_low(amount: float | None, threshold: float) -> bool:
    return amount is not None and amount < threshold


def format_age(then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = int((utcnow() - then).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
