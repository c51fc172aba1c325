"""What the rest of the appliance may use of the SMS gateway; kiosk imports this module only.

- queue a notice: `enqueue` (inside the caller's transaction, idempotent by key)
- staff actions on a notice: `retry`, `cancel`, `resolve_uncertain`; the states each applies to
- reports: `list_notices`, `counts_by_state`, `daily_usage`
- the modems: `list_modem_health` (every gateway's heartbeat, one per modem), `read_modem_health`,
  `probe_modem` (a brief look for `kiosk doctor`, refused while the gateway holds `modem_lock`)
- the states: `NoticeState`, `DeliveryStatus`, `ModemState` (worded once in `MODEM_STATE_LABELS`)
- Zalo's ZNS delivery webhook: `zns_callback` (the kiosk web app is its HTTP door), `ZNS_CALLBACK_MAX_BODY`

Phone numbers are `motcua.phones`: both sides use them.
"""
from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa

from motcua.config import Config
from sms_gateway.channels import Channel
from sms_gateway.health import MODEM_STATE_LABELS, ModemState, list_modem_health, read_modem_health
from sms_gateway.incoming import DossierLookup, IncomingCommand, LookupAnswer, list_incoming, list_opt_outs
from sms_gateway.outbox import (
    CANCELLABLE,
    RETRYABLE,
    DeliveryStatus,
    NoticeState,
    cancel,
    counts_by_state,
    daily_usage,
    enqueue,
    list_notices,
    resolve_uncertain,
    retry,
)
from sms_gateway.probe import ModemProbe, modem_lock, probe_modem
from sms_gateway.reminders import APPOINTMENT, UNCOLLECTED, Reminder, ReminderSource
from sms_gateway.zns_delivery import MAX_BODY as ZNS_CALLBACK_MAX_BODY
from sms_gateway.zns_delivery import CallbackRefused, parse_verified, record_callback


def run_gateway(cfg: Config, engine: sa.Engine, *, lookup: DossierLookup | None = None,
                reminders: ReminderSource | None = None, until_idle: bool = False, **kw: Any) -> int:
    """Run the gateway daemon in this process (the CLI's way); the exit code. Takes the modem's
    lock first (raises motcua.devicelock.DeviceBusy when another process owns the modem)."""
    from sms_gateway.gateway import Gateway  # python-gammu is loaded only by the process that sends

    # One owner per modem: held until this process exits (the kernel drops it if it dies).
    modem_lock(cfg.modem, cfg.paths.data_dir).acquire()
    # This process runs the gateway alone: its only children are the modem proxies Gammu starts.
    gateway = Gateway(cfg, engine, reap_children=True, lookup=lookup, reminders=reminders)
    return gateway.run(until_idle=until_idle, handle_signals=True, **kw)


def zns_callback(cfg: Config, engine: sa.Engine, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict]:
    """One request to Zalo's ZNS webhook: (HTTP status, JSON answer). A wrong signature or a body that
    is not a callback is refused (401/403/400/413) and writes nothing; a replay answers 200 again."""
    try:
        data = parse_verified(cfg.zns, body, headers)  # first: a forged request opens no write transaction
        with engine.begin() as conn:
            done = record_callback(conn, data)
    except CallbackRefused as exc:
        return exc.status, {"error": str(exc)}
    return 200, {"event": done.event, "msg_id": done.msg_id, "notice": done.notice_id, "new": done.new}


# An uncertain notice is settled by an official: sent again, or marked sent.
RESOLVABLE = (NoticeState.UNCERTAIN,)

__all__ = [
    "enqueue", "retry", "cancel", "resolve_uncertain", "RETRYABLE", "CANCELLABLE", "RESOLVABLE",
    "list_notices", "counts_by_state", "daily_usage", "read_modem_health", "list_modem_health", "probe_modem",
    "ModemProbe", "modem_lock",
    "NoticeState", "DeliveryStatus", "ModemState", "MODEM_STATE_LABELS", "IncomingCommand", "Channel",
    "Reminder", "ReminderSource", "APPOINTMENT", "UNCOLLECTED",
    "run_gateway", "DossierLookup", "LookupAnswer", "list_incoming", "list_opt_outs",
    "zns_callback", "ZNS_CALLBACK_MAX_BODY",
]
