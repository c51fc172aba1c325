"""The modem's heartbeat row: what the running gateway last saw (SIM, network, signal, balance).

The gateway writes it as it runs; staff pages and `sms-gateway status` read it. A row whose
`last_seen_at` is old means the gateway itself is not running.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from motcua.timeutil import utcnow
from sms_gateway.schema import modem_health

MODEM_ID = 1


class ModemState(StrEnum):
    """What the gateway last found the modem in; stored in the heartbeat row as these strings."""
    OK = "ok"
    NO_SIM = "no_sim"
    PIN_REQUIRED = "pin_required"
    NO_NETWORK = "no_network"
    UNPLUGGED = "unplugged"
    ERROR = "error"


def N_(msgid: str) -> str:
    """Mark a message id for extraction (pybabel's default keywords include N_); no translation here."""
    return msgid


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
           "balance_amount", "balance_low", "balance_checked_at", "last_seen_at", "detail", "pid")


def read_modem_health(conn: sa.Connection, stale_after_s: float = 300) -> dict[str, Any] | None:
    """The last heartbeat, or None if the gateway never ran. `stale` is True when it stopped writing."""
    row = conn.execute(sa.select(modem_health).where(modem_health.c.id == MODEM_ID)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["balance_low"] = bool(out["balance_low"])
    seen = out.get("last_seen_at")
    out["stale"] = seen is None or utcnow() - seen > timedelta(seconds=stale_after_s)
    out["label_vi"] = MODEM_STATE_LABELS.get(out["state"], out["state"])
    return out


def write_modem_health(conn: sa.Connection, **fields: Any) -> None:
    """Upsert the heartbeat row with the given fields (others keep their values)."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown modem health fields {sorted(unknown)}")
    if "state" in fields and fields["state"] not in tuple(ModemState):
        raise ValueError(f"unknown modem state {fields['state']!r}")
    now = utcnow()
    fields = {**fields, "updated_at": now, "pid": fields.get("pid", os.getpid())}
    updated = conn.execute(modem_health.update().where(modem_health.c.id == MODEM_ID).values(**fields))
    if updated.rowcount == 0:
        conn.execute(modem_health.insert().values(id=MODEM_ID, **{"state": ModemState.ERROR, **fields}))


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
