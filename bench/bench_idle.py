"""CPU of the idle appliance: all the demo's services, nobody at the kiosk, the camera running.

    .venv/bin/python bench/bench_idle.py                           # this checkout, 30 s
    .venv/bin/python bench/bench_idle.py --tree /tmp/base --tree .    # a baseline beside a change

Starts the demo's services (bench/appliance.py) with the scanner on a still desk video with sensor
noise (each frame differs a little, as a real camera's do; no receipt in view), waits until every
service reports healthy and then `--settle` seconds more (start-up work done), and reads utime+stime of
every process of every service from /proc/<pid>/stat at the start and the end of the window. The
figure is the share of one core. Target: at most 2.5 % here. The video is motion-JPEG, which the
scanner reads as an MJPG camera delivers frames (kiosk/scanner/capture.py): a skipped frame is not
decoded, so the figure is the appliance's work, not OpenCV decoding a file.

Then, with the same scanner, the time from a receipt coming into view to its scan event: a video of
the desk for `--still` seconds (long enough for an idle scanner to slow down), then a receipt held up;
the scanner's event socket is read directly.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np
from appliance import CHECKOUT, SERVICES, cpu_ticks, running, tree_label, wait_for

TARGET_PCT = 2.5
FPS = 15
SIZE = (640, 480)


def _desk() -> np.ndarray:
    from scanner_corpus import _background

    return _background(SIZE[0], SIZE[1], random.Random(7), np.random.default_rng(7))


def write_still_video(path: Path, seconds: float = 10) -> None:
    """A desk with nothing on it and a camera's sensor noise, looped by the demo's scanner."""
    nrng = np.random.default_rng(7)
    base = _desk()
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for _ in range(int(seconds * FPS)):
        vw.write(np.clip(base + nrng.normal(0, 2.5, base.shape), 0, 255).astype(np.uint8))
    vw.release()


def write_arrival_video(path: Path, still_s: float, show_s: float = 4.0) -> None:
    """The still desk, then a receipt held up over it (a corpus 'clean' frame's receipt)."""
    from scanner_corpus import make_frame

    from kiosk.demo import generate

    nrng = np.random.default_rng(8)
    base = _desk()
    record = next(generate(1, seed=5))
    receipt = make_frame("clean", SIZE, random.Random(3), np.random.default_rng(3), record).image
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for i in range(int((still_s + show_s) * FPS)):
        img = base if i < still_s * FPS else receipt
        vw.write(np.clip(img + nrng.normal(0, 2.5, img.shape), 0, 255).astype(np.uint8))
    vw.release()


def measure_idle(tree: Path, seconds: float, settle: float) -> dict:
    def still_camera(data_dir: Path) -> None:
        write_still_video(data_dir / "scanner-demo.avi")  # the demo's scanner plays this file

    with running(tree, before_start=still_camera) as app:
        time.sleep(settle)  # start-up work (first requests, imports, the camera opening) is not idle
        procs = app.refresh()
        t0, c0 = time.monotonic(), {p.pid: cpu_ticks(p.pid) for p in procs}
        time.sleep(seconds)
        t1 = time.monotonic()
        after = app.refresh()
        alive = {p.pid for p in after}
        per_service: dict[str, float] = defaultdict(float)
        for p in procs:
            if p.pid in alive:
                per_service[p.service] += cpu_ticks(p.pid) - c0[p.pid]
        tck = os.sysconf("SC_CLK_TCK")
        pct = {k: 100 * v / tck / (t1 - t0) for k, v in per_service.items()}
        return {"services": pct, "total": sum(pct.values()), "seconds": t1 - t0,
                "lost": len({p.pid for p in procs} - alive)}


def measure_arrival(tree: Path, still_s: float, runs: int) -> list[float]:
    """Seconds from the receipt's first frame to its scan event, `runs` times."""
    out = []
    for _ in range(runs):
        tmp = Path(tempfile.mkdtemp(prefix="bench-arrival-", dir="/tmp"))
        try:
            video = tmp / "arrival.avi"
            write_arrival_video(video, still_s)
            cfg = tmp / "config.toml"
            cfg.write_text(f'[paths]\ndata_dir = "{tmp}"\n[scanner]\nfps = {FPS}\n', encoding="utf-8")
            env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
            sock_path = tmp / "scanner.sock"
            proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "scan", "--video",
                                     str(video)], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                wait_for(sock_path.exists, 60, "the scanner's socket")
                from kiosk.scanner.channel import connect, messages

                sock = connect(sock_path, "events")
                started = None
                for msg in messages(sock):
                    kind = msg.get("event") or msg.get("kind") or msg.get("type")
                    data = msg.get("data", msg)
                    if kind == "camera" and data.get("state") == "ok" and started is None:
                        started = time.monotonic()  # the first frame is being played now
                    if kind == "scan":
                        out.append(time.monotonic() - started - still_s)
                        break
                sock.close()
            finally:
                proc.terminate()
                proc.wait(10)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=Path, help="checkout to measure (repeat; default: this one)")
    ap.add_argument("--seconds", type=float, default=30.0, help="idle window")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after all are up before the window")
    ap.add_argument("--still", type=float, default=8.0, help="desk-only seconds before the receipt arrives")
    ap.add_argument("--arrivals", type=int, default=3, help="receipt arrivals to time (0: skip)")
    args = ap.parse_args()
    trees = args.tree or [CHECKOUT]
    idle = {t: measure_idle(t, args.seconds, args.settle) for t in trees}
    arrival = {t: measure_arrival(t, args.still, args.arrivals) for t in trees} if args.arrivals else {}
    for t in trees:
        print(f"- {t}: {tree_label(t)}")
    print(f"\n| idle, % of one core over {args.seconds:.0f} s | " + " | ".join(map(str, trees)) + " |")
    print("|---|" + "---|" * len(trees))
    for name, _ in SERVICES:
        print(f"| {name} | " + " | ".join(f"{idle[t]['services'].get(name, 0):.2f}" for t in trees) + " |")
    print("| **total** | " + " | ".join(f"**{idle[t]['total']:.2f}**" for t in trees) + " |")
    if arrival:
        cells = []
        for t in trees:
            xs = arrival[t]
            cells.append(f"{sorted(xs)[len(xs) // 2]:.2f} ({', '.join(f'{x:.2f}' for x in xs)})" if xs else "none")
        print(f"| receipt in view -> scan event, s (median of {args.arrivals}, after {args.still:.0f} s still) | "
              + " | ".join(cells) + " |")
    last = idle[trees[-1]]["total"]
    print(f"\ntarget <= {TARGET_PCT} %: {'met' if last <= TARGET_PCT else 'NOT MET'} ({last:.2f} %, {trees[-1]})")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on this machine inflates the figures)")


if __name__ == "__main__":
    main()
