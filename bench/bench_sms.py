"""SMS gateway benchmarks (run by hand):

    .venv/bin/python bench/bench_sms.py                 # drain 10,000 through the dummy driver
    .venv/bin/python bench/bench_sms.py --crash 300     # plus the SIGKILL crash run (about 5 minutes)
    .venv/bin/python bench/bench_sms.py --code DIR      # the same bench on another checkout's code
                                                        # (e.g. `git archive OLD | tar -x -C DIR`)

Reports: the gateway's own time per message with modem time excluded (target <= 5 ms), messages
per second draining 10,000 queued notices through Gammu's dummy driver, memory along the way (must
stay flat), and the crash run's counts (sent, lost, duplicated, uncertain).

Modem time is measured outside the gateway, around every python-gammu call that talks to the device
(a timing subclass of gammu.StateMachine), so the gateway's own time is everything else: database
transactions and their fsyncs, rendering, encoding, logging, the loop. The same measurement applies
to any checkout given with --code, for before/after comparisons in the same run conditions.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

_ap = argparse.ArgumentParser()
_ap.add_argument("--notices", type=int, default=10_000)
_ap.add_argument("--crash", type=int, default=0, help="notices for the SIGKILL crash run (0: skip)")
_ap.add_argument("--kills", type=int, default=0, help="SIGKILLs in the crash run (0: notices / 5)")
_ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1],
                 help="checkout whose motcua/ and sms_gateway/ are measured (default: this one)")
ARGS = _ap.parse_args()
sys.path.insert(0, str(ARGS.code.resolve()))

import gammu
import sqlalchemy as sa

from motcua.config import load_config
from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.gateway import Gateway

DEVICE_S = [0.0]  # seconds spent inside python-gammu calls that talk to the modem


class TimedStateMachine(gammu.StateMachine):
    """gammu.StateMachine with every device call timed (Abort excluded: the watchdog thread's)."""


def _timed(name: str):
    call = getattr(gammu.StateMachine, name)

    def wrapper(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return call(self, *args, **kwargs)
        finally:
            DEVICE_S[0] += time.perf_counter() - t
    return wrapper


for _name in dir(gammu.StateMachine):
    if _name[0].isupper() and _name not in ("Abort", "ReadConfig", "SetConfig", "SetIncomingCallback",
                                            "SetDebugFile", "SetDebugLevel"):
        setattr(TimedStateMachine, _name, _timed(_name))
gammu.StateMachine = TimedStateMachine


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def commit_ms(directory: Path, n: int = 200) -> float:
    """Median time of one tiny committed SQLite transaction (WAL, synchronous=FULL) in `directory`:
    the fsync floor under every message's own time on this disk, right now."""
    import sqlite3
    import statistics

    db = sqlite3.connect(directory / "fsync-probe.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    times = []
    for i in range(n):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
        times.append(time.perf_counter() - t)
    db.close()
    return 1000 * statistics.median(times)


def drain(n: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-sms-"))
    device = root / "modem"
    for sub in ("inbox", "outbox", "sent", "error"):
        (device / sub).mkdir(parents=True)
    cfg_path = root / "config.toml"
    cfg_path.write_text("")
    cfg = load_config(cfg_path, {
        "paths": {"data_dir": str(root / "data")},
        "sms": {"pace_s": 0, "pace_jitter_s": 0, "quiet_start": "00:00:00", "quiet_end": "00:00:00",
                "balance_ussd": "", "poll_s": 0.1},
        "modem": {"model": "dummy", "connection": "none", "device": str(device)},
    })
    engine = make_engine(cfg)
    t = time.perf_counter()
    with engine.begin() as conn:
        for i in range(n):
            outbox.enqueue(conn, key=f"b{i}", phone=f"09{i % 100000000:08d}", kind="result_ready",
                           dossier_code=f"H{i}", params={"code": f"000.00.21.H42-251125-{i:04d}",
                                                         "procedure": "Đăng ký khai sinh có yếu tố nước ngoài"})
    print(f"code: {ARGS.code}")
    print(f"enqueue {n}: {time.perf_counter() - t:.1f} s")
    print(f"this disk now: one synchronous=FULL commit = {commit_ms(root):.2f} ms (median of 200, before)")
    commits = [0]
    sa.event.listen(engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    gw = Gateway(cfg, engine)
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append((gw.stats["sent"], rss_kb()))

    threading.Thread(target=sample, daemon=True).start()
    DEVICE_S[0] = 0.0
    t, cpu = time.perf_counter(), time.process_time()
    gw.run(until_idle=True)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    stop.set()
    sent = gw.stats["sent"]
    with engine.connect() as conn:
        in_db = conn.execute(sa.select(sa.func.count()).where(outbox.notices.c.state == "sent")).scalar()
    assert sent == in_db == n, (sent, in_db, n)
    own = wall - DEVICE_S[0]
    print(f"drained {sent} notices in {wall:.1f} s = {sent / wall:.0f} messages/s (dummy driver)")
    print(f"gateway own time per message (wall, modem calls excluded): {1000 * own / sent:.2f} ms; "
          f"modem (dummy driver) calls: {1000 * DEVICE_S[0] / sent:.2f} ms per message")
    print(f"gateway process CPU per message (dummy driver included): {1000 * cpu / sent:.2f} ms; "
          f"committed transactions per message: {commits[0] / sent:.2f}")
    print(f"this disk now: one synchronous=FULL commit = {commit_ms(root):.2f} ms (median of 200, after)")
    marks = [samples[int(len(samples) * f)] for f in (0.1, 0.5, 0.99)] if samples else []
    print("RSS while draining: " + ", ".join(f"{kb / 1024:.1f} MiB after {s} sent" for s, kb in marks))
    engine.dispose()


def crash(n: int, kills: int) -> None:
    from tests.modem.crash import crash_run

    root = Path(tempfile.mkdtemp(prefix="bench-sms-crash-"))
    # Lives of 1-10 s so that the kills spread over the whole run (see tests/test_sms_crash.py).
    result = crash_run(root, notices_count=n, kills=kills or max(8, n // 5), seed=2024, kill_after=(1.0, 10.0))
    print("crash run:", result)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    drain(ARGS.notices)
    if ARGS.crash:
        crash(ARGS.crash, ARGS.kills)
