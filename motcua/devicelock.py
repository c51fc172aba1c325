"""One owner per device: a non-blocking flock on a lock file per device, with the holder written in it.

The scanner holds the camera's lock, the print worker the printer's, each SMS gateway its modem's, for as
long as they run; `kiosk doctor` asks `holder()` before it opens a device and reports "in use by
<service> pid N" instead of opening it a second time (a second opener of a serial modem or a V4L camera
corrupts the owner's session). flock is released by the kernel when the holder dies, however it dies,
so a crash never leaves a device locked; the file's text (who holds it) is only read while it is locked.

The lock files live in `<data_dir>/locks/`: the same folder for every service of a box, and writable by
the motcua user (unlike /run without a RuntimeDirectory).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from motcua.timeutil import utcnow

LOCK_FOLDER = "locks"


@dataclass(frozen=True)
class Holder:
    """Who holds a device, as the holder wrote it."""
    service: str
    pid: int
    since: str = ""

    def __str__(self) -> str:
        return f"{self.service} pid {self.pid}" if self.pid else self.service


class DeviceBusy(Exception):
    """Another process owns the device; `holder` says which (None when it could not be read)."""

    def __init__(self, device: str, holder: Holder | None):
        self.device, self.holder = device, holder
        super().__init__(f"{device} is in use by {holder or 'another process'}")


def lock_dir(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FOLDER


def device_key(kind: str, target: str = "") -> str:
    """The lock name of a device: its kind, plus (for kinds a box may have several of, like modems) the
    device node with symlinks resolved, so /dev/serial/by-id/... and /dev/ttyUSB2 are the same lock."""
    if not target:
        return kind
    real = os.path.realpath(target) if target.startswith("/") else target
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", real).strip("_.")[-40:]
    return f"{kind}-{slug}-{hashlib.sha1(real.encode()).hexdigest()[:8]}"


def for_device(data_dir: Path, kind: str, service: str, target: str = "") -> "DeviceLock":
    """The lock of one device of this box: `for_device(cfg.paths.data_dir, "modem", "sms-gateway", device)`."""
    return DeviceLock(lock_dir(data_dir), device_key(kind, target), service)


class DeviceLock:
    """`with DeviceLock(lock_dir(cfg.paths.data_dir), "printer", "print-worker"):` owns the printer."""

    def __init__(self, folder: Path, device: str, service: str):
        self.folder, self.device, self.service = Path(folder), device, service
        self.path = self.folder / f"{device}.lock"
        self.fd: int | None = None

    def acquire(self, *, now: datetime | None = None) -> None:
        """Take the lock now or raise DeviceBusy (never waits)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DeviceBusy(self.device, _read_holder(self.path)) from None
            raise
        os.ftruncate(fd, 0)
        record = {"service": self.service, "pid": os.getpid(), "since": (now or utcnow()).isoformat()}
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # an unlocked file names nobody
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "DeviceLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(folder: Path, device: str) -> Holder | None:
    """Who holds `device` now, or None when nobody does. Probes with a shared flock, released at once."""
    path = Path(folder) / f"{device}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return _read_holder(path) or Holder("another process", 0)
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> Holder | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(str(record["service"]), int(record["pid"]), str(record.get("since", "")))
    except (OSError, ValueError, TypeError, KeyError):
        return None  # being written this instant, or not ours
