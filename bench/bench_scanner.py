"""Scanner benchmark: read rate and speed of each QR decoder and of the scanner's chain, plus the idle
scanner's CPU use.

    .venv/bin/python bench/bench_scanner.py                 # full run (a few minutes on 2 cores)
    .venv/bin/python bench/bench_scanner.py --per-category 10 --cpu-seconds 5   # quick look

Part 1 decodes a synthetic corpus (bench/scanner_corpus.py: 12 receipt categories plus empty frames
and frames with non-dossier QR codes, at 640x480 and 1280x720) with pyzbar, zxing-cpp and OpenCV alone
and with the chain as configured by default, all on the same grey frames in one run. A "read" is a
frame whose decoded text parses (kiosk.scanner.payload) to the expected dossier code; a "misread" is a
dossier code that is not the one in the frame; for empty frames any text found counts against the
decoder; for foreign frames a dossier code is a misread.

Part 1b (held up) is what a citizen experiences: the scanner's own pipeline (kiosk.scanner.pipeline,
the default chain with its fallback spacing and CPU share, the stillness gate, repeats and hints) fed
2 s of consecutive 15 fps frames of one receipt held up by a hand (scanner_corpus.held_up: a new
tremor path, reflection and small move every frame; the same creases and bend). Its clock is virtual:
frames arrive every 1/15 s, and a decode takes its own wall time on that clock (seen by the chain's
CPU share and the repeat filter). After a decode the pipeline takes the newest frame already there,
or waits for the next one, as the newest-frame reader does; a read counts when its decode ends. It
reports how many receipts were read within 0.5 s, 1 s and 2 s, the median time to the read, and the
hint on screen for those never read.

Part 2 runs the real scanner (`kiosk scan --video`, supervisor plus decode child) on a 640x480 15 fps
video with no code in view and reports its CPU use from /proc, as a share of one core.

Part 3 (relay lag) runs the real scanner on a looping receipt video beside `kiosk serve` (gunicorn)
and reads /scanner/events as the screen does: the time from the scanner's `decoded_at` to the scan
event's arrival over SSE, both on this machine's wall clock (target <= 100 ms; the tests check only
that the event arrives with the right code, tests/test_scanner_service.py).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2
import numpy as np
from scanner_corpus import CATEGORIES, HELD_UP, corpus, held_up

from kiosk.scanner.decoders import DecoderChain, make_decoder, to_grey
from kiosk.scanner.payload import PayloadRejected, parse_payload
from kiosk.scanner.pipeline import ScanPipeline
from motcua.config import ScannerConfig

SINGLE = ["pyzbar", "zxing", "opencv"]  # the decoders as their makers ship them


def _dossier_code(texts: list[str]) -> str | None:
    for t in texts:
        try:
            return parse_payload(t).code
        except PayloadRejected:
            continue
    return None


def bench_decoders(per_category: int, chain_names: list[str]) -> tuple[dict, dict]:
    decoders = {n: make_decoder(n) for n in SINGLE}
    # Per frame, the chain runs its fallbacks whenever the first decoder finds nothing (fallback_every=1):
    # that is what a frame held in view gets within `fallback_every` frames in the live scanner.
    decoders["chain"] = DecoderChain(chain_names, fallback_every=1)
    stats: dict = defaultdict(lambda: {"n": 0, "read": 0, "misread": 0, "garbled": 0, "found": 0, "ms": []})
    stages: dict = defaultdict(int)  # which decoder of the chain made each read
    blur: dict = defaultdict(lambda: [0, 0])  # (size, band) -> [shake frames, read by the chain]
    frames = 0
    for fr in corpus(per_category=per_category):
        grey = to_grey(fr.image)
        frames += 1
        for name, dec in decoders.items():
            t0 = time.perf_counter()
            out = dec.decode(grey)
            ms = (time.perf_counter() - t0) * 1000
            st = stats[(fr.size, fr.category, name)]
            st["n"] += 1
            st["ms"].append(ms)
            code = _dossier_code(out.texts)
            if out.texts:
                st["found"] += 1
            if name == "chain" and fr.category == "shake":
                band = blur[(fr.size, next(b for b in BLUR_BANDS if fr.blur_modules < b))]
                band[0] += 1
                band[1] += code == fr.expected_code
            if fr.expected_code is not None:
                if code == fr.expected_code:
                    st["read"] += 1
                    if name == "chain":
                        stages[(fr.size, out.decoder)] += 1
                elif code is not None or any(t != fr.payload for t in out.texts):
                    st["misread"] += 1
            elif fr.category == "foreign":
                if code is not None:
                    st["misread"] += 1  # a dossier code out of a code that holds none
                elif any(t != fr.payload for t in out.texts):
                    st["garbled"] += 1  # wrong text, still rejected by the payload parser
                elif out.texts:
                    st["read"] += 1  # read and correctly rejected
            elif out.texts:
                st["misread"] += 1  # a code "found" in an empty frame
    return stats, {"frames": frames, "stages": stages, "blur": blur}


BLUR_BANDS = (0.5, 0.7, float("inf"))  # shake: the tremor's RMS spread in code modules, upper bounds


def print_blur_bands(blur: dict) -> None:
    """Shake frames read by the chain, by how far the tremor spread each module (Frame.blur_modules)."""
    print("\nshake frames read by the chain, by the tremor's RMS spread (modules):")
    for size in sorted({s for s, _ in blur}):
        parts, lo = [], 0.0
        for hi in BLUR_BANDS:
            n, read = blur.get((size, hi), (0, 0))
            label = f"{lo:g}-{hi:g}" if hi != float("inf") else f">= {lo:g}"
            parts.append(f"{label}: {read}/{n}")
            lo = hi
        print(f"  {size[0]}x{size[1]}: " + ", ".join(parts))


HELD_FPS = 15


class _VirtualClock:
    """The held-up run's clock: frame time, plus the wall time of the decode under way, so the chain's
    CPU share (`fallback_cpu`) and the repeat filter see decodes take the time they take."""

    def __init__(self) -> None:
        self.base = 0.0
        self._started: float | None = None

    def begin(self, t: float) -> None:
        self.base, self._started = t, time.perf_counter()

    def end(self) -> float:
        self.base, self._started = self(), None
        return self.base

    def __call__(self) -> float:
        return self.base + (time.perf_counter() - self._started if self._started is not None else 0.0)


def bench_held(receipts: int, seconds: float, chain_names: list[str]) -> dict:
    """Part 1b: per (size, category), the time each receipt took to read (None: not within `seconds`),
    the hints shown, the hint on screen at the end for the unread ones, and misreads."""
    cfg = ScannerConfig()
    frames = round(seconds * HELD_FPS)
    results: dict = defaultdict(lambda: {"times": [], "hints": defaultdict(int), "left": defaultdict(int),
                                         "misread": 0})
    for category, size, expected, seq in held_up(receipts, frames):
        clock = _VirtualClock()
        chain = DecoderChain(chain_names, cfg.fallback_every, cfg.fallback_cpu, clock=clock)
        pipe = ScanPipeline(chain, cfg.repeat_interval_s, clock=clock)  # its stillness gate on the same clock
        r = results[(size, category)]
        read_at = None
        t, last = 0.0, -1
        frame, made = None, -1  # the newest frame made so far (in order, decoded or not, as a camera sends them)
        while read_at is None:
            # The newest frame at time t; after a fast decode, wait for the next one to arrive.
            t = max(t, (last + 1) / HELD_FPS)
            index = int(t * HELD_FPS + 1e-9)
            while made < index and (frame := next(seq, None)) is not None:
                made += 1
            if frame is None or made < index:
                break  # held up no longer
            clock.begin(t)
            events = pipe.process(frame.image)
            t = clock.end()  # the decode's own time counts: a read is known when it is done
            last = index
            for name, data in events:
                if name == "hint" and data["hint"]:
                    r["hints"][data["hint"]] += 1
                elif name == "scan":
                    if data["code"] == expected:
                        read_at = t
                    else:
                        r["misread"] += 1
        r["times"].append(read_at if read_at is not None and read_at <= seconds else None)
        if r["times"][-1] is None:
            r["left"][pipe.hints.hint or "none"] += 1
    return results


def print_held_table(results: dict, seconds: float) -> list[str]:
    problems = []
    print(f"\n## Held up for {seconds:g} s (the scanner's pipeline, {HELD_FPS} fps, virtual clock)\n")
    print("| size | category | read in 0.5 s | in 1 s | in 2 s | median s to read | hints shown | "
          "unread: hint at the end |")
    print("|---|---|---|---|---|---|---|---|")
    for (size, category), r in sorted(results.items(), key=lambda kv: (kv[0][0], HELD_UP.index(kv[0][1]))):
        times = r["times"]
        n = len(times)
        done = [x for x in times if x is not None]
        within = [sum(1 for x in done if x < limit + 1e-9) * 100 / n for limit in (0.5, 1.0, 2.0)]
        med = f"{statistics.median(done):.2f}" if done else "-"
        hints = ", ".join(f"{h} {c}" for h, c in sorted(r["hints"].items())) or "-"
        left = ", ".join(f"{h} {c}" for h, c in sorted(r["left"].items())) or "-"
        print(f"| {size[0]}x{size[1]} | {category} | {within[0]:.0f} | {within[1]:.0f} | {within[2]:.0f} | {med} "
              f"| {hints} | {left} |")
        if r["misread"]:
            problems.append(f"held-up {category} {size[0]}x{size[1]}: {r['misread']} misreads")
    return problems


def print_decoder_table(stats: dict) -> list[str]:
    names = SINGLE + ["chain"]
    problems: list[str] = []
    for size in sorted({k[0] for k in stats}):
        print(f"\n### {size[0]}x{size[1]}: read rate % (mean ms/frame)\n")
        print("| category | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        totals = {n: [0, 0] for n in names}
        for cat in CATEGORIES:
            cells = []
            best_single = 0
            for n in names:
                st = stats[(size, cat, n)]
                if not st["n"]:
                    continue
                mean = statistics.fmean(st["ms"])
                if cat == "empty":
                    cell = f"{st['found']} found ({mean:.1f})"
                else:
                    rate = 100 * st["read"] / st["n"]
                    cell = f"{rate:.0f} ({mean:.1f})"
                    if n != "chain":
                        best_single = max(best_single, st["read"])
                        if cat != "foreign":
                            totals[n][0] += st["read"]
                            totals[n][1] += st["n"]
                    elif cat != "foreign":
                        totals[n][0] += st["read"]
                        totals[n][1] += st["n"]
                if st["garbled"]:
                    cell += f" ({st['garbled']} garbled)"
                if st["misread"]:
                    cell += f" **{st['misread']} misread**"
                    problems.append(f"{size} {cat} {n}: {st['misread']} misread")
                cells.append(cell)
            chain = stats[(size, cat, "chain")]
            if cat != "empty" and chain["read"] < best_single:
                problems.append(f"{size} {cat}: chain {chain['read']} < best single {best_single}")
            print(f"| {cat} | " + " | ".join(cells) + " |")
        print("| **all receipts** | " + " | ".join(
            f"**{100 * r / max(n, 1):.1f}**" for r, n in totals.values()) + " |")
        med = {n: statistics.median([m for (s, c, nn), st in stats.items() if s == size and nn == n for m in st["ms"]])
               for n in names}
        print("| median ms/frame | " + " | ".join(f"{med[n]:.2f}" for n in names) + " |")
        empty_med = {n: statistics.median(stats[(size, "empty", n)]["ms"]) for n in names}
        print("| median ms, empty frame | " + " | ".join(f"{empty_med[n]:.2f}" for n in names) + " |")
    return problems


def _make_empty_video(path: Path, seconds: float, fps: int = 15, size=(640, 480)) -> None:
    """A still desk scene with sensor noise (each frame differs, as a real camera's do)."""
    import random

    from scanner_corpus import _background

    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    base = _background(size[0], size[1], rng, nrng)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for _ in range(int(seconds * fps)):
        vw.write(np.clip(base + nrng.normal(0, 2.5, base.shape), 0, 255).astype(np.uint8))
    vw.release()


def _cpu_ticks(pid: int) -> int:
    """utime+stime of a process and its children (live ones), in clock ticks."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def _drain_preview(sock_path: Path, stop: threading.Event, counter: list[int]) -> None:
    from kiosk.scanner.channel import connect, messages

    deadline = time.monotonic() + 20
    while not sock_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    sock = connect(sock_path, "preview")
    for _msg in messages(sock):
        counter[0] += 1
        if stop.is_set():
            break
    sock.close()


def bench_idle_cpu(seconds: float, size: tuple[int, int] = (640, 480), preview: bool = False) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="scanbench-", dir="/tmp"))
    stop = threading.Event()
    frames = [0]
    try:
        video = tmp / "empty.avi"
        _make_empty_video(video, seconds=10, size=size)
        if preview:
            threading.Thread(target=_drain_preview, args=(tmp / "scanner.sock", stop, frames), daemon=True).start()
        cfgfile = tmp / "config.toml"
        cfgfile.write_text(f'[paths]\ndata_dir = "{tmp}"\n[scanner]\nwidth = 640\nheight = 480\nfps = 15\n')
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfgfile), "scan", "--video",
                                 str(video), "--loop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # Warm-up: imports, the child's start, the first frames.
            deadline = time.monotonic() + 30
            status = tmp / "scanner.status.json"
            while time.monotonic() < deadline and '"ok"' not in (status.read_text() if status.exists() else ""):
                time.sleep(0.2)
            time.sleep(2)
            t0, c0 = time.monotonic(), _cpu_ticks(proc.pid)
            time.sleep(seconds)
            t1, c1 = time.monotonic(), _cpu_ticks(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"scanner exited: {proc.stderr.read().decode()[-2000:]}")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if preview and not frames[0]:
            raise RuntimeError("no preview frames arrived")
        return 100 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
    finally:
        stop.set()
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_relay_lag(scans: int) -> list[float]:
    """Seconds from decoded_at to the SSE event, for `scans` scan events through real gunicorn."""
    from kiosk.demo import generate, receipt_payloads
    from tests.scanner_media import desk, receipt_frame, write_video

    rec = next(generate(1))
    tmp = Path(tempfile.mkdtemp(prefix="scanlag-", dir="/tmp"))  # Unix socket paths must stay short
    procs: list[subprocess.Popen] = []
    try:
        video = write_video(tmp / "receipt.avi", [(desk(), 15), (receipt_frame(receipt_payloads(rec)["url"]), 15),
                                                  (desk(), 15)])
        cfgfile = tmp / "config.toml"
        cfgfile.write_text(f'[paths]\ndata_dir = "{tmp}"\n[scanner]\nrepeat_interval_s = 1.0\n')
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        port = _free_port()
        base = [sys.executable, "-m", "kiosk.cli", "--config", str(cfgfile)]
        procs.append(subprocess.Popen([*base, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        procs.append(subprocess.Popen([*base, "scan", "--video", str(video), "--loop"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/scanner/events")
                resp = conn.getresponse()
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("kiosk serve / kiosk scan did not start") from None
                time.sleep(0.2)
        lags, event = [], None
        while len(lags) < scans:
            line = resp.fp.readline().decode()
            if not line:
                raise RuntimeError("event stream closed")
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event == "scan":
                data = json.loads(line[6:])
                if data["code"] != rec["code"]:
                    raise RuntimeError(f"wrong code {data['code']!r}")
                lags.append(time.time() - data["decoded_at"])
        conn.close()
        return lags
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-category", type=int, default=30, help="frames per category and resolution")
    ap.add_argument("--chain", default=",".join(ScannerConfig().decoders), help="chain order to measure")
    ap.add_argument("--held-receipts", type=int, default=10,
                    help="receipts per held-up category and resolution for part 1b (0: skip)")
    ap.add_argument("--held-seconds", type=float, default=2.0, help="how long each receipt is held up")
    ap.add_argument("--cpu-seconds", type=float, default=20.0, help="idle CPU measurement length (0: skip)")
    ap.add_argument("--relay-scans", type=int, default=10, help="scan events timed through gunicorn (0: skip)")
    ap.add_argument("--only-relay", action="store_true", help="run part 3 only")
    args = ap.parse_args()
    chain = args.chain.split(",")
    if args.only_relay:
        _print_relay(args.relay_scans, [])
        return
    cv2.setNumThreads(1)  # one core, as on a busy Pi; OpenCV would otherwise use every core
    print(f"## Decoders on {args.per_category} frames per category and resolution (chain: {' -> '.join(chain)})")
    t0 = time.monotonic()
    stats, info = bench_decoders(args.per_category, chain)
    problems = print_decoder_table(stats)
    for size in sorted({s for s, _ in info["stages"]}):
        print(f"\nchain reads by decoder at {size[0]}x{size[1]}: " + ", ".join(
            f"{n} {info['stages'][(size, n)]}" for n in chain))
    print_blur_bands(info["blur"])
    print(f"\n{info['frames']} frames in {time.monotonic() - t0:.0f} s")
    med640 = statistics.median([m for (s, c, n), st in stats.items() if s == (640, 480) and n == "chain"
                                for m in st["ms"]])
    print(f"\nchain median decode at 640x480: {med640:.2f} ms/frame (target <= 2 ms)")
    if args.held_receipts:
        t0 = time.monotonic()
        problems += print_held_table(bench_held(args.held_receipts, args.held_seconds, chain), args.held_seconds)
        print(f"\n(held up: {time.monotonic() - t0:.0f} s)")
    if args.cpu_seconds:
        cpu = bench_idle_cpu(args.cpu_seconds)
        print(f"idle scanner (kiosk scan --video, 640x480 15 fps, no code in view): {cpu:.1f}% of one core "
              f"over {args.cpu_seconds:.0f} s (target <= 15%)")
        if cpu > 15:
            problems.append(f"idle CPU {cpu:.1f}%")
        cpu_p = bench_idle_cpu(args.cpu_seconds, preview=True)
        print(f"  same, with the aiming preview open (MJPEG {ScannerConfig().preview_fps:g} fps): {cpu_p:.1f}%")
        cpu_hd = bench_idle_cpu(args.cpu_seconds, size=(1280, 720))
        print(f"  same at 1280x720 15 fps: {cpu_hd:.1f}%")
    if args.relay_scans:
        _print_relay(args.relay_scans, problems)
    print("\ntargets:", "all met" if not problems and med640 <= 2 else "NOT MET: " + "; ".join(problems))


def _print_relay(scans: int, problems: list[str]) -> None:
    lags = sorted(1000 * x for x in bench_relay_lag(scans))
    p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))]
    print(f"scan -> screen over SSE (kiosk scan + kiosk serve, 1 worker): median {statistics.median(lags):.1f} ms, "
          f"p95 {p95:.1f} ms, max {lags[-1]:.1f} ms over {len(lags)} scans (target <= 100 ms)")
    if lags[-1] > 100:
        problems.append(f"relay lag max {lags[-1]:.0f} ms")


if __name__ == "__main__":
    main()
