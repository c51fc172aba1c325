"""Run the demo's services from a checkout and look at them through /proc: PSS and CPU per process.

Used by bench_memory.py and bench_idle.py. `kiosk demo` starts the services exactly as the demo does
(gunicorn web app, scanner on the demo video, print worker, SMS gateway on Gammu's dummy driver); the
demo's own parent process is not a service of the appliance and is left out of the totals.
Each checkout given with --tree runs with its own code (PYTHONPATH) and the same interpreter, one after
the other, so a baseline and a change are measured side by side in one run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

CHECKOUT = Path(__file__).resolve().parent.parent
# (service name, pieces of the command line of the demo child that is that service; `kiosk serve`
# execs gunicorn's master as `python -m kiosk.wsgi` since issue 16)
SERVICES = [("sms-gateway", ("sms_gateway.cli",)), ("web (gunicorn)", ("kiosk.cli serve", "kiosk.wsgi")),
            ("print worker", ("print-worker",)), ("scanner", ("kiosk.scanner.demo",))]


@dataclass
class Proc:
    pid: int
    service: str
    role: str  # "main" for the service's own process, else what the child is


@dataclass
class Appliance:
    tree: Path
    data_dir: Path
    port: int
    demo: subprocess.Popen
    procs: list[Proc] = field(default_factory=list)

    def refresh(self) -> list[Proc]:
        """Every live process of every service (children included)."""
        children = _children_map()
        found: list[Proc] = []
        for top in children.get(self.demo.pid, []):
            cmd = _cmdline(top)
            service = next((name for name, markers in SERVICES if any(m in cmd for m in markers)), None)
            if service is None:
                continue
            found.append(Proc(top, service, "main"))
            stack = list(children.get(top, []))
            while stack:
                pid = stack.pop()
                found.append(Proc(pid, service, _role(pid)))
                stack.extend(children.get(pid, []))
        self.procs = found
        return found


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _role(pid: int) -> str:
    cmd = _cmdline(pid)
    if "kiosk.scanner.child" in cmd:
        return "decode child"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "child (multiprocessing)"
    if "gammu" in cmd.lower() or "proxy" in cmd:
        return "modem proxy"
    if "gunicorn" in cmd or "kiosk.cli serve" in cmd or "kiosk.wsgi" in cmd:
        return "gunicorn worker"
    return "child: " + cmd[:40]


def pss_kb(pid: int) -> int:
    """Proportional set size of one process, from /proc/<pid>/smaps_rollup (kB)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process (clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> dict:
    try:
        raw = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
    except urllib.error.HTTPError as exc:  # 503 while a part is still starting
        raw = exc.read()
    return json.loads(raw)["checks"]


def _all_up(app: Appliance) -> bool:
    """Every part reports healthy, and gunicorn's workers are all there."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{app.port}/", timeout=2).read()
        checks = _health(app.port)
    except (OSError, KeyError, ValueError):
        return False
    if not (checks["modem"].get("gateway_running") and checks["camera"]["state"] == "ok"
            and checks["printer"]["state"] == "ok"):
        return False
    procs = app.refresh()
    return {p.service for p in procs} == {name for name, _ in SERVICES}


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}")


@contextmanager
def running(tree: Path, before_start: Callable[[Path], None] | None = None,
            python: str = sys.executable) -> Iterator[Appliance]:
    """The demo's services from checkout `tree`, up and healthy; stopped (all of them) on exit."""
    tree = tree.resolve()
    data = Path(tempfile.mkdtemp(prefix="bench-appliance-", dir="/tmp"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("MOTCUA_CONFIG", None)
    base = [python, "-m", "kiosk.cli", "demo", "--data-dir", str(data), "--port", str(port)]
    subprocess.run([*base, "--seed-only"], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    if before_start:
        before_start(data)
    demo = subprocess.Popen(base, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    app = Appliance(tree, data, port, demo)
    try:
        wait_for(lambda: demo.poll() is None and _all_up(app), 120, f"the demo from {tree} to be up")
        yield app
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(30)
        except subprocess.TimeoutExpired:
            demo.kill()
        shutil.rmtree(data, ignore_errors=True)


def tree_label(tree: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        rev = "?"
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{tree} ({rev}{'+changes' if dirty else ''})"


PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_pages(pid: int) -> set[int]:
    """Physical frame numbers of the pages this process has in RAM (/proc/<pid>/pagemap; needs root)."""
    frames: set[int] = set()
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        with open(f"/proc/{pid}/pagemap", "rb") as pm:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                if line.rstrip().endswith("[vsyscall]"):
                    continue
                pm.seek(lo // PAGE * 8)
                data = pm.read((hi - lo) // PAGE * 8)
                for (entry,) in struct.iter_unpack("<Q", data):
                    if entry >> 63:  # present in RAM
                        frames.add(entry & ((1 << 55) - 1))
    except OSError:
        pass
    return frames


def own_pss_kb(pids: list[int]) -> dict[int, float] | None:
    """PSS as if nothing but these processes ran: each resident page divided among those of `pids`
    that map it. smaps_rollup's PSS also divides by unrelated processes that map the same library
    files (other programs using the same virtualenv's OpenCV), which a kiosk would not have.
    None when the page frame numbers are hidden (not root)."""
    frames = {pid: resident_pages(pid) for pid in pids}
    if not any(f - {0} for f in frames.values()):
        return None
    count: dict[int, int] = {}
    for f in frames.values():
        for frame in f:
            count[frame] = count.get(frame, 0) + 1
    return {pid: sum(1 / count[fr] for fr in f) * PAGE / 1024 for pid, f in frames.items()}
