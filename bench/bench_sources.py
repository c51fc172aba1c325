"""Benchmarks for following the provincial system (issue 13). Run by hand:

    .venv/bin/python bench/bench_sources.py                  # all three
    .venv/bin/python bench/bench_sources.py lookup [--n 200]
    .venv/bin/python bench/bench_sources.py hang
    .venv/bin/python bench/bench_sources.py sync [--rows 100000]

1. lookup: POST /lookup through the real web app (`kiosk serve`, gunicorn, 2 workers) for codes the
   store does not know, the OpenCPS emulator answering every detail read after 100 ms; p50/p95 of
   the whole round trip. Baseline in the same run: the same codes again (now in the store, fresh:
   the source is not asked).
2. hang: the emulator never answers; time to the status screen for dossiers the store holds, with
   the default 2 s deadline, after three warm-up lookups (first-request template compilation is
   not the deadline's doing). Goal: deadline + 100 ms at most. The first `lookup_slots` x workers
   requests wait the deadline; later ones find every slot busy and answer from the store at once.
3. sync: one `SyncService` pass in its own process over an emulator holding N dossiers that all
   changed since the last pass (first: all new; then: every status changed), rows/s and that
   process's peak RSS; then a pass with nothing changed (lists only). Beside it, `kiosk import` of a
   CSV of the same N rows in its own process (bench/bench_ingest.py's child), in the same run.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ALL_WEEK = [{"days": list(range(7)), "open": "00:00:00", "close": "00:00:00"}]


def code_for(n: int) -> str:
    return f"000.00.21.H42-{251101 + n % 28:06d}-{n:04d}"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def source_section(emu, **extra) -> dict:
    return {"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", **extra,
            "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password}}


def post_lookup(conn: http.client.HTTPConnection, code: str) -> tuple[float, int, str]:
    body = urllib.parse.urlencode({"code": code, "source": "keypad"})
    t = time.perf_counter()
    conn.request("POST", "/lookup", body, {"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    html = resp.read().decode()
    return time.perf_counter() - t, resp.status, html


def bench_lookup(tmp: Path, n: int) -> dict:
    from kiosk_support import KioskServer

    from tests.emulators.opencps import OpenCpsEmulator

    with OpenCpsEmulator() as emu:
        for i in range(n):
            emu.add(code_for(i), "processing")
        emu.fault, emu.delay_s, emu.fault_paths = "slow", 0.100, ("/dossiers/",)
        (tmp / "lookup").mkdir()
        # One client asks 2 x n times in a row: far over the per-station rate a citizen never meets.
        srv = KioskServer(tmp / "lookup", {"source": source_section(emu),
                                           "kiosk": {"station_lookup_rate": "100000 per minute"}}, ALL_WEEK, workers=2)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            asked, again = [], []
            for i in range(n):
                dt, status, html = post_lookup(conn, code_for(i))
                assert status == 200 and "Đang xử lý" in html, (status, html[:300])
                asked.append(dt * 1000)
            for i in range(n):
                dt, status, _ = post_lookup(conn, code_for(i))
                assert status == 200
                again.append(dt * 1000)
            details = emu.count("/dossiers/")
        finally:
            srv.stop()
    res = {"n": n, "source_ms": 100, "asked_p50": statistics.median(asked), "asked_p95": pct(asked, 95),
           "stored_p50": statistics.median(again), "stored_p95": pct(again, 95), "detail_reads": details}
    print(f"lookup via source (100 ms): p50 {res['asked_p50']:.0f} ms  p95 {res['asked_p95']:.0f} ms  "
          f"({n} codes, {details} detail reads)")
    print(f"lookup from store (fresh):  p50 {res['stored_p50']:.1f} ms  p95 {res['stored_p95']:.1f} ms")
    return res


def bench_hang(tmp: Path, n: int = 16) -> dict:
    from kiosk_support import KioskServer

    from tests.emulators.opencps import OpenCpsEmulator

    with OpenCpsEmulator() as emu:
        (tmp / "hang").mkdir()
        srv = KioskServer(tmp / "hang", {"source": source_section(emu, lookup_deadline_s=2.0)}, ALL_WEEK,
                          workers=2)
        try:
            srv.ingest([{"code": code_for(i), "status": "processing"} for i in range(n)])
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            emu.add(code_for(n), "processing")
            for _ in range(3):  # warm up: templates compiled, catalogues loaded, a connection to the source
                post_lookup(conn, code_for(n))
            emu.fault = "hang"
            times = []
            for i in range(n):
                dt, status, html = post_lookup(conn, code_for(i))
                assert status == 200 and 'id="source-offline"' in html, (status, html[:300])
                times.append(dt * 1000)
        finally:
            srv.stop()
    waited = [t for t in times if t > 1000]
    res = {"n": n, "deadline_ms": 2000, "waited": len(waited), "waited_max": max(waited) if waited else None,
           "waited_p50": statistics.median(waited) if waited else None,
           "busy_max": max((t for t in times if t <= 1000), default=None)}
    print(f"hanging source, deadline 2000 ms: {len(waited)} of {n} waited the deadline, "
          f"p50 {res['waited_p50']:.0f} ms, max {res['waited_max']:.0f} ms (over deadline: "
          f"{res['waited_max'] - 2000:.0f} ms); the others (slots busy) max {res['busy_max'] or 0:.0f} ms")
    return res


# Peak memory is VmHWM (this process image's high-water mark): ru_maxrss survives exec and would
# report the parent's size, which here holds the emulator's 100,000 dossiers.
CHILD_PRELUDE = """
import json, sys, time
from pathlib import Path
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from motcua.config import load_config
from motcua.db import make_engine
"""
CHILD_SYNC = CHILD_PRELUDE + """
from kiosk.sources.api import make_source
from kiosk.sources.sync import SyncService
cfg = load_config(sys.argv[1])
engine = make_engine(cfg)
base = hwm_kb()
t, c = time.perf_counter(), time.process_time()
report = SyncService(cfg, engine, make_source(cfg)).run_pass()
dt, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "listed": report.listed, "written": report.written,
                  "refused": report.refused, "complete": report.complete, "maxrss_kb": hwm_kb(), "before_kb": base}))
"""
CHILD_IMPORT = CHILD_PRELUDE + """
from kiosk.importer import import_file
cfg = load_config(None, {"paths": {"data_dir": sys.argv[1]}})
engine = make_engine(cfg)
base = hwm_kb()
t, c = time.perf_counter(), time.process_time()
report, errors = import_file(engine, cfg, Path(sys.argv[2]))
dt, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "created": report.created, "errors": len(errors),
                  "maxrss_kb": hwm_kb(), "before_kb": base}))
"""


def child(script: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_sync(tmp: Path, rows: int) -> dict:
    from bench_ingest import write_csv
    from conftest import write_config_file

    from tests.emulators.opencps import OpenCpsEmulator

    out: dict = {"rows": rows}
    with OpenCpsEmulator() as emu:
        for i in range(rows):
            emu.add(f"000.00.21.H42-{251101 + i % 28:06d}-{i:06d}", "processing")
        cfg = write_config_file(tmp / "sync.toml", {"paths": {"data_dir": str(tmp / "sync")},
                                                    "source": source_section(emu, read_timeout_s=30.0)})

        def one(label: str) -> dict:
            before = emu.count("/dossiers/")
            r = child(CHILD_SYNC, str(cfg))
            r["detail_reads"] = emu.count("/dossiers/") - before
            print(f"sync pass {label:16} {rows:>7,} listed: {r['seconds']:7.1f} s  "
                  f"{r['written'] / r['seconds'] if r['written'] else 0:7,.0f} written/s  written {r['written']:,}  "
                  f"detail reads {r['detail_reads']:,}  sync CPU {r['cpu_seconds']:.0f} s  "
                  f"peak RSS {r['maxrss_kb'] / 1024:.0f} MB (after start-up {r['before_kb'] / 1024:.0f} MB)",
                  flush=True)
            return r

        out["first"] = one("(all new)")
        for d in list(emu.dossiers.values()):
            d.dossierStatus = "releasing"
            d.modifiedDate = d.modifiedDate.replace(hour=9)
        emu.bump()
        out["changed"] = one("(all changed)")
        out["unchanged"] = one("(none changed)")
    path = tmp / f"export-{rows}.csv"
    write_csv(path, rows)
    r = child(CHILD_IMPORT, str(tmp / "import"), str(path))
    print(f"CSV import {rows:>7,} rows: {r['seconds']:7.1f} s  {rows / r['seconds']:7,.0f} rows/s  "
          f"CPU {r['cpu_seconds']:.0f} s  peak RSS {r['maxrss_kb'] / 1024:.0f} MB "
          f"(after start-up {r['before_kb'] / 1024:.0f} MB)", flush=True)
    out["import"] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", choices=["lookup", "hang", "sync", "all"], default="all")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as d:
        tmp = Path(d)
        if args.what in ("lookup", "all"):
            results["lookup"] = bench_lookup(tmp, args.n)
        if args.what in ("hang", "all"):
            results["hang"] = bench_hang(tmp)
        if args.what in ("sync", "all"):
            results["sync"] = bench_sync(tmp, args.rows)
    out = ROOT / "bench" / "results" / "sources.json"
    out.parent.mkdir(exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
