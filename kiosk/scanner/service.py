"""The scanner process: a supervisor that owns the event socket and a decode child that owns the camera.

zbar can abort() the process it runs in, and a camera driver can hang. So the camera and decoders live
in a child process; the supervisor relays the child's events to the local socket (the web app's SSE
streams stay connected), watches its heartbeat, and restarts it with a back-off when it dies or hangs.
The web app itself never shares a process with the camera or a decoder. OpenCV and NumPy are imported
in the child only, and SQLAlchemy nowhere: the supervisor writes its station heartbeat through the
database's own driver (`station_database`), so it stays small (it runs as long as the appliance does).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any, Callable

import kiosk
from kiosk.scanner.channel import EventServer
from kiosk.scanner.source import SourceSpec
from kiosk.scanner.status import HEARTBEAT_S, camera_lock, socket_path, write_status
from motcua import stations
from motcua.memory import release_free_memory
from motcua.stations import Device, DirectDatabase, Service
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)

CHILD_SILENT_S = 10.0  # a child that says nothing for this long is hung: kill and restart
MAX_BACKOFF_S = 10.0


class Supervisor:
    """Run decode children one after another; relay their events; keep the status file fresh."""

    def __init__(self, cfg: Any, source: SourceSpec, engine: Callable[[], Any] | None = None):
        self.cfg = cfg
        self.source = source
        self._engine = engine  # made on first heartbeat: a database that is down must not stop scanning
        self._last_beat = -1e9
        self._started_at = utcnow()
        self.stop_event = threading.Event()
        self.restarts = 0
        self.scans = 0
        self.child_pid: int | None = None
        self.camera = {"state": "starting", "detail": f"opening {source.describe()}"}
        self._last_status = 0.0

    def _status(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_status >= HEARTBEAT_S / 2:
            self._last_status = now
            try:
                write_status(self.cfg, self.camera["state"], self.camera["detail"], restarts=self.restarts,
                             scans=self.scans, child_pid=self.child_pid, source=self.source.describe(),
                             decoders=self.cfg.scanner.decoders)
            except OSError as exc:
                log.warning("cannot write scanner status: %s", exc)
        if self._engine is not None and (force or now - self._last_beat >= self.cfg.station.heartbeat_s):
            self._last_beat = now
            try:
                stations.heartbeat(self._engine(), self.cfg.station, Service.SCANNER, device=Device.CAMERA,
                                   device_state=self.camera["state"], detail=self.camera["detail"],
                                   started_at=self._started_at)
            except Exception as exc:  # the hall list misses a beat; the citizen's scan goes on
                log.warning("cannot write the station heartbeat: %s", exc)

    def _set_camera(self, server: EventServer, state: str, detail: str) -> None:
        self.camera = {"state": state, "detail": detail}
        self._status(force=True)  # first: whoever hears the event can read a matching status
        server.publish("camera", self.camera)

    def run(self) -> int:
        server = EventServer(socket_path(self.cfg)).start()
        log.info("scanner: %s, events on %s", self.source.describe(), server.path)
        try:
            self._set_camera(server, "starting", self.camera["detail"])
            backoff = 0.5
            while not self.stop_event.is_set():
                started = time.monotonic()
                ended = self._run_child(server)
                if ended or self.stop_event.is_set():
                    break
                self.restarts += 1
                if time.monotonic() - started > 60:
                    backoff = 0.5  # it ran fine for a while: restart quickly
                self._set_camera(server, "starting", "scanner restarting after a decoder failure")
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            return 0
        finally:
            self.camera = {"state": "unavailable", "detail": "scanner stopped"}
            server.publish("camera", self.camera)
            self._status(force=True)
            server.close()

    def _run_child(self, server: EventServer) -> bool:
        """Run one child until it dies, hangs, ends (video) or we stop. True when the video ended."""
        # glibc raises its mmap threshold as large blocks are freed, after which camera frames (~1 MB)
        # land in the heaps, and the frame-reader thread gets a heap of its own: both fragment, and
        # the child's memory crept from ~50 to 70-95 MB. Fixed thresholds and one heap for both
        # threads stop that. The threshold sits just above one frame: a frame and its grey copy are
        # then carved from the heap, where the next frame reuses their space. (Below a frame, every
        # frame was a fresh mmap, its pages faulted in and zeroed, then unmapped: ~1 % of a core
        # while idle, for ~2 MB less.) glibc reads these when the child starts: its environment.
        frame = self.source.width * self.source.height * 3 + 65536
        env = {"MALLOC_MMAP_THRESHOLD_": str(frame), "MALLOC_TRIM_THRESHOLD_": str(2 * frame),
               "MALLOC_ARENA_MAX": "1", **os.environ}
        scanner = self.cfg.scanner.model_dump(include={"decoders", "fallback_every", "fallback_cpu",
                                                        "repeat_interval_s", "patterns", "code_pattern",
                                                        "preview_fps", "preview_width", "idle_fps", "sharp_edge"})
        # A fresh interpreter (no inherited threads or sockets) on two pipes: events up, the preview
        # wish down. Not multiprocessing: its spawn starts a resource-tracker process (~7 MB) for good.
        events_r, events_w = os.pipe()
        control_r, control_w = os.pipe()
        args = {"spec": asdict(self.source), "scanner": scanner, "events": events_w, "control": control_r}
        try:
            # The child imports this same kiosk package, wherever the supervisor found it.
            argv, env = kiosk.python_module("kiosk.scanner.child", json.dumps(args), env=env)
            child = subprocess.Popen(argv, pass_fds=(events_w, control_r), env=env)
        finally:
            os.close(events_w)
            os.close(control_r)
        self.child_pid = child.pid
        parent_conn = Connection(events_r, writable=False)
        control = Connection(control_w, readable=False)
        preview_sent = False
        last_heard = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if server.preview_wanted != preview_sent:
                    preview_sent = server.preview_wanted
                    try:
                        control.send(preview_sent)
                    except OSError:
                        break  # the child is gone; `poll` below would say so too
                self._status()
                if parent_conn.poll(0.25):
                    try:
                        kind, data = parent_conn.recv()
                    except (EOFError, OSError):
                        break
                    last_heard = time.monotonic()
                    if kind in ("scan", "hint") and self.source.scans_only_when_watched and not server.preview_wanted:
                        continue
                    if kind == "scan":
                        self.scans += 1
                        server.publish("scan", data)
                        log.info("scan: %s (%s, %s)", data["code"], data["kind"], data.get("decoder"))
                        self._status(force=True)
                    elif kind == "preview":
                        if data:
                            server.publish_preview(data)
                    elif kind == "camera":
                        self._set_camera(server, data["state"], data["detail"])
                    elif kind == "hint":
                        server.publish("hint", data)
                    elif kind == "ended":
                        log.info("video ended")
                        return True
                elif child.poll() is not None:
                    break
                elif time.monotonic() - last_heard > CHILD_SILENT_S:
                    log.error("decode child silent for %.0f s: killing it", CHILD_SILENT_S)
                    child.kill()
                    break
            return False
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(3)
                except subprocess.TimeoutExpired:
                    child.kill()
            try:
                child.wait(3)
            except subprocess.TimeoutExpired:
                pass  # unkillable (stuck in a driver): the next child is started all the same
            if child.returncode not in (0, None, -signal.SIGTERM) and not self.stop_event.is_set():
                log.error("decode child died (exit code %s%s)", child.returncode,
                          ", SIGABRT: likely zbar" if child.returncode == -signal.SIGABRT else "")
            parent_conn.close()
            control.close()


def station_database(cfg: Any, engine: Callable[[], Any]) -> Callable[[], Any]:
    """What the supervisor writes its heartbeat through: the database's own driver (sqlite3, psycopg) when
    the URL allows it, since SQLAlchemy would be half of this process's memory; else `engine`."""
    direct = DirectDatabase.from_url(cfg.database.url, cfg.database.busy_timeout_ms)
    return engine if direct is None else (lambda: direct)


def run_scanner(cfg: Any, source: SourceSpec, engine: Callable[[], Any] | None = None) -> int:
    """`kiosk scan --camera/--video`: run until SIGTERM/SIGINT (or the end of a video).
    On the camera it holds the camera's lock (DeviceBusy if another process has it)."""
    lock = camera_lock(cfg) if source.kind == "camera" else None
    if lock is not None:
        lock.acquire()
    try:
        return _supervise(cfg, source, engine)
    finally:
        if lock is not None:
            lock.release()


def _supervise(cfg: Any, source: SourceSpec, engine: Callable[[], Any] | None) -> int:
    sup = Supervisor(cfg, source, engine)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("scanner stopping (signal %s)", signum)
        sup.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    release_free_memory()  # start-up's garbage (the config models) back to the system
    try:
        import sdnotify

        sdnotify.SystemdNotifier().notify("READY=1")
    except ImportError:
        pass
    return sup.run()
