"""SMS gateway benchmarks (run by hand):

    .venv/bin/python bench/bench_sms.py                 # drain 10,000 through the dummy driver
    .venv/bin/python bench/bench_sms.py --crash 300     # plus the SIGKILL crash run (about 5 minutes)

Reports: the gateway's own time per message with modem time excluded (target <= 5 ms), messages
per second draining 10,000 queued notices through Gammu's dummy driver, memory along the way (must
stay flat), and the crash run's counts (sent, lost, duplicated, uncertain).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motcua.config import load_config  # noqa: E402
from motcua.db import make_engine  # noqa: E402
import logging  # noqa: E402

from sms_gateway import outbox  # noqa: E402
from sms_gateway.gateway import Gateway  # noqa: E402


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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
    print(f"enqueue {n}: {time.perf_counter() - t:.1f} s")
    gw = Gateway(cfg, engine)
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append((gw.stats["sent"], rss_kb()))

    threading.Thread(target=sample, daemon=True).start()
    t, cpu = time.perf_counter(), time.process_time()
    gw.run(until_idle=True)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    stop.set()
    s = gw.stats
    print(f"drained {s['sent']} notices in {wall:.1f} s = {s['sent'] / wall:.0f} messages/s (dummy driver)")
    print(f"gateway own time per message (modem excluded): {1000 * s['own_s'] / s['sent']:.2f} ms; "
          f"modem (dummy) time per message: {1000 * s['modem_s'] / s['sent']:.3f} ms")
    print(f"gateway process CPU per message (everything but waiting on fsync/disk): {1000 * cpu / s['sent']:.2f} ms")
    marks = [samples[int(len(samples) * f)] for f in (0.1, 0.5, 0.99)] if samples else []
    print("RSS while draining: " + ", ".join(f"{kb / 1024:.1f} MiB after {sent} sent" for sent, kb in marks))
    engine.dispose()


def crash(n: int, kills: int) -> None:
    from tests.modem.crash import crash_run

    root = Path(tempfile.mkdtemp(prefix="bench-sms-crash-"))
    result = crash_run(root, notices_count=n, kills=kills, seed=2024)
    print("crash run:", result)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--notices", type=int, default=10_000)
    ap.add_argument("--crash", type=int, default=0, help="notices for the SIGKILL crash run (0: skip)")
    ap.add_argument("--kills", type=int, default=30)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    drain(args.notices)
    if args.crash:
        crash(args.crash, args.kills)
