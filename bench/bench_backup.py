"""Benchmark: the online SQLite backup (`kiosk backup`) and what it does to writers meanwhile.

A SQLite database in WAL mode is filled to --mb megabytes; a writer thread then commits one row
at a time (as the kiosk, print worker and SMS gateway do). Its commit latency is measured for
--seconds without a backup (baseline), then while backups run back to back. The backup holds one
read transaction for the whole copy: in WAL mode writers should not wait for it.

Run: .venv/bin/python bench/bench_backup.py [--mb 200] [--seconds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.backup import backup
from motcua.config import load_config
from motcua.db import make_engine


def writer(engine, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO bench_rows (body) VALUES (hex(randomblob(150)))")
        latencies.append(time.perf_counter() - t)


def summary(name: str, lat: list[float], seconds: float) -> str:
    ms = sorted(x * 1000 for x in lat)
    p99 = ms[int(len(ms) * 0.99) - 1] if len(ms) >= 100 else ms[-1]
    return (f"{name:<16} {len(ms) / seconds:8.0f} commits/s   p50 {statistics.median(ms):6.2f} ms   "
            f"p99 {p99:7.2f} ms   max {ms[-1]:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"paths": {"data_dir": tmp}})
        engine = make_engine(cfg)
        rows = args.mb * 2**20 // 330
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            conn.exec_driver_sql(
                "INSERT INTO bench_rows (body) SELECT hex(randomblob(150)) FROM (WITH RECURSIVE c(x) AS "
                f"(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) SELECT x FROM c)")
        db = Path(tmp) / "motcua.db"
        print(f"database {db.stat().st_size / 2**20:.0f} MB ({rows} filler rows), WAL, synchronous=FULL")

        for phase in ("baseline", "during backup"):
            lat: list[float] = []
            stop = threading.Event()
            th = threading.Thread(target=writer, args=(engine, stop, lat))
            start = time.perf_counter()
            th.start()
            runs = []
            if phase == "baseline":
                time.sleep(args.seconds)
            else:
                while time.perf_counter() - start < args.seconds:
                    runs.append(backup(cfg, keep=2))
            stop.set()
            th.join()
            print(summary(phase, lat, time.perf_counter() - start))
            for r in runs:
                print(f"  backup {r.size_bytes / 2**20:.0f} MB in {r.seconds:.2f} s "
                      f"({r.size_bytes / 2**20 / r.seconds:.0f} MB/s, integrity_check included)")
        engine.dispose()


if __name__ == "__main__":
    main()
