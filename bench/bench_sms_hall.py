"""Messages per minute through one SMS gateway and through two, measured in one run (run by hand):

    .venv/bin/python bench/bench_sms_hall.py                    # 120 notices each way, SQLite file
    .venv/bin/python bench/bench_sms_hall.py --notices 300 --db-url postgresql+psycopg://...

Each gateway is a real `sms-gateway run` process on its own AT-modem emulator (tests/modem/, Gammu's
proxyat), all on one outbox; pacing is 0 ([sms] pace_s and pace_jitter_s) so the figure is what the
gateway and Gammu can do, not the pace set to keep SIMs from looking like spammers. The gateways are
started and connected before the notices are queued, so start-up is not counted.

Two figures per case: the steady rate from the first to the last PDU the emulators received
(their own timestamps), and the rate from queueing the batch to the last notice recorded.

Gammu sleeps 0.7 s per part inside SendSMS (its AT driver waits before sending the PDU), so one
modem tops out near 60 / 0.7 = 85 single-part messages a minute whatever the gateway does; a
second modem is what raises the hall's rate. With production pacing (6 s + 0..4 s jitter) one
modem sends about 7 a minute.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motcua.config import load_config
from motcua.db import make_engine
from tests.modem.hall import HallGateway, enqueue_batch, open_count, ready, tally, wait_until


def run_case(root: Path, db_url: str, gateways: int, notices: int) -> dict:
    """Start `gateways` gateways, wait until each has its modem, queue the batch, wait until it is done."""
    hall = [HallGateway(root, f"bench-{chr(ord('a') + i)}", db_url) for i in range(gateways)]
    engine = make_engine(load_config(hall[0].config))
    try:
        for g in hall:
            g.start()
        wait_until(lambda: ready(engine, hall), lambda: "the gateways to connect")
        queued_at = time.time()
        enqueue_batch(engine, notices, prefix=f"bench{gateways}")
        wait_until(lambda: open_count(engine) == 0, lambda: f"{open_count(engine)} notices still open",
                   timeout_s=notices * 3 + 120)
        done_at = time.time()
        result = tally(engine, hall)
    finally:
        for g in hall:
            g.stop()
        engine.dispose()
    stamps = sorted(p["t"] for g in hall for p in g.modem.raw_sent())
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) * 60 if len(stamps) > 1 else 0.0
    return {
        "gateways": gateways, "notices": notices, "sent": result["states"].get("sent", 0),
        "sent_twice": len(result["twice"]), "per_gateway": result["per_gateway"],
        "msgs_per_min_steady": round(steady, 1),
        "msgs_per_min_queue_to_done": round(notices / (done_at - queued_at) * 60, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=120)
    ap.add_argument("--db-url", default="", help="shared database (default: a new SQLite file per case)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "sms_hall.json")
    args = ap.parse_args()
    cases = []
    for gateways in (1, 2):
        root = Path(tempfile.mkdtemp(prefix=f"bench-sms-hall-{gateways}-"))
        if args.db_url:
            url = args.db_url
            engine = make_engine(load_config(None, {"database": {"url": url}}))
            with engine.begin() as conn:  # each case starts from an empty outbox
                conn.exec_driver_sql("DELETE FROM notice_events")
                conn.exec_driver_sql("DELETE FROM notices")
                conn.exec_driver_sql("DELETE FROM modem_health")
            engine.dispose()
        else:
            url = f"sqlite:///{root / 'hall.db'}"
        case = run_case(root, url, gateways, args.notices)
        print(json.dumps(case))
        cases.append(case)
    one, two = cases
    report = {"cases": cases, "database": "postgresql" if args.db_url else "sqlite",
              "speedup_steady": round(two["msgs_per_min_steady"] / one["msgs_per_min_steady"], 2),
              "note": "pacing 0; Gammu sleeps 0.7 s per part inside SendSMS: one modem tops out near 85/min"}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
