"""Issue-15 figures (run by hand):

    PYTHONPATH=. .venv/bin/python bench/bench_sms_channels.py [--notices 60] [--round-trips 5]

- messages per minute per channel: the same notices drained through the AT-modem emulator (Gammu behind
  proxyat, delivery reports on, pace_s = 0), the ZNS emulator (also with delivery callbacks awaited) and
  the brandname emulator (both HTTP on localhost), rate between the first and the last `sent_at`;
- the text-in round trip on the emulator: a running gateway, a citizen's "HS <code> <secret>" put into
  the modem's memory, until the answer's PDU reaches the emulated network (median and max).
Figures are printed as JSON; nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from kiosk.sms_lookup import lookup
from kiosk.store.ingest import DossierEvent, apply_event
from motcua.config import load_config
from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.gateway import Gateway
from sms_gateway.schema import notices
from tests.emulators.esms import BrandnameEmulator
from tests.emulators.zns import ZnsEmulator
from tests.modem.harness import FAST_SMS, EmulatedModem


def _config(root: Path, modem: EmulatedModem, **sections):
    from tests.conftest import write_config_file

    path = write_config_file(root / "cfg.toml", {"paths": {"data_dir": str(root / "data")},
                                                 "sms": {**FAST_SMS}, "modem": modem.modem_section(), **sections})
    return load_config(path)


def _rate(root: Path, n: int, kind: str, **sections) -> float:
    modem = EmulatedModem(root / "modem")
    cfg = _config(root, modem, **sections)
    engine = make_engine(cfg)
    with engine.begin() as conn:
        for i in range(n):
            outbox.enqueue(conn, key=f"b{i}", phone=f"0912{i:06d}", kind=kind,
                           params={"code": f"H42-{i:04d}", "procedure": "Khai sinh", "text": f"Tin so {i}"})
    Gateway(cfg, engine).run(until_idle=True)
    with engine.connect() as conn:
        stamps = sorted(conn.execute(sa.select(notices.c.sent_at).where(notices.c.state == "sent")).scalars())
    engine.dispose()
    if len(stamps) < 2:
        return 0.0
    return round((len(stamps) - 1) / (stamps[-1] - stamps[0]).total_seconds() * 60, 1)


def _round_trips(root: Path, count: int) -> list[float]:
    modem = EmulatedModem(root / "modem")
    cfg = _config(root, modem)
    engine = make_engine(cfg)
    code = "000.00.21.H42-251125-0001"
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code=code, status="result_ready", secret="AB12CD",
                                       appointment_date=date(2025, 12, 2)), via="bench")
    gw = Gateway(cfg, engine, lookup=lookup)
    thread = threading.Thread(target=gw.run, daemon=True)
    thread.start()
    out = []
    try:
        for i in range(count):
            number = f"+8491300{i:04d}"
            before = len(modem.raw_sent())
            t0 = time.time()
            modem.deliver(number, f"HS {code} AB12CD")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                sent = modem.raw_sent()[before:]
                if sent:
                    out.append(round(sent[0]["t"] - t0, 2))
                    break
                time.sleep(0.05)
    finally:
        gw.stop()
        thread.join(60)
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=60)
    ap.add_argument("--round-trips", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        zalo, esms = ZnsEmulator().start(), BrandnameEmulator().start()
        zalo2 = ZnsEmulator().start()  # its own refresh-token chain (the first one has rotated "rt-0" away)
        try:
            rates = {
                "modem": _rate(root / "modem", args.notices, "text"),
                "zns": _rate(root / "zns", args.notices, "result_ready", zns={
                    "enabled": True, "api_url": zalo.url, "oauth_url": zalo.url, "app_id": "app-1",
                    "secret_key": "zalo-secret", "refresh_token": "rt-0",
                    "templates": {"result_ready": "tpl-ready"}}),
                # The same with Zalo's delivery callbacks awaited (each sent notice also marked pending).
                "zns_callbacks": _rate(root / "zns-callbacks", args.notices, "result_ready", zns={
                    "enabled": True, "api_url": zalo2.url, "oauth_url": zalo2.url, "app_id": "app-1",
                    "secret_key": "zalo-secret", "refresh_token": "rt-0", "templates": {"result_ready": "tpl-ready"},
                    "delivery_callbacks": True, "oa_secret_key": "oa-secret"}),
                "brandname": _rate(root / "brandname", args.notices, "text", brandname={
                    "enabled": True, "api_url": esms.url, "api_key": "esms-key", "secret_key": "esms-secret",
                    "brandname": "UBND YEN HOA"}),
            }
        finally:
            zalo.stop()
            zalo2.stop()
            esms.stop()
        trips = _round_trips(root / "text-in", args.round_trips)
    print(json.dumps({"notices": args.notices, "messages_per_minute": rates,
                      "text_in_round_trip_s": {"each": trips, "median": statistics.median(trips) if trips else None,
                                               "max": max(trips) if trips else None}}, indent=1))


if __name__ == "__main__":
    main()
