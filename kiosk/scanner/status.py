"""The scanner's health for staff pages and `kiosk doctor`.

The scanner process rewrites a small JSON file in data_dir on every change and every few seconds
(a heartbeat); a missing or stale file means the scanner is not running.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from motcua.devicelock import DeviceLock, for_device
from motcua.stations import Device, Service

HEARTBEAT_S = 5.0
STALE_AFTER_S = 3 * HEARTBEAT_S


def status_path(cfg: Any) -> Path:
    return Path(cfg.paths.data_dir) / "scanner.status.json"


def camera_lock(cfg: Any) -> DeviceLock:
    """The camera's one-owner lock (motcua/devicelock.py): the scanner holds it while it runs."""
    return for_device(cfg.paths.data_dir, Device.CAMERA, Service.SCANNER)


def socket_path(cfg: Any) -> Path:
    return Path(cfg.scanner.socket) if cfg.scanner.socket else Path(cfg.paths.data_dir) / "scanner.sock"


def write_status(cfg: Any, state: str, detail: str, **extra: Any) -> None:
    """Atomically replace the status file (write a temp file, then rename)."""
    path = status_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"state": state, "detail": detail, "updated_at": time.time(), "pid": os.getpid(), **extra}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)


def read_status(cfg: Any) -> dict[str, Any]:
    """Return {"state": "ok"|"starting"|"unavailable", "detail": str, "updated_at": datetime|None}.

    Extra keys the scanner wrote (pid, scans, restarts, decoders) are passed through.
    """
    path = status_path(cfg)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        updated = float(body["updated_at"])
    except FileNotFoundError:
        return {"state": "unavailable", "detail": "scanner not running (no status file)", "updated_at": None}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"state": "unavailable", "detail": f"scanner status unreadable: {exc}", "updated_at": None}
    out = dict(body)
    out["updated_at"] = datetime.fromtimestamp(updated, tz=timezone.utc)
    age = time.time() - updated
    if age > STALE_AFTER_S:
        out["state"] = "unavailable"
        out["detail"] = f"scanner not running (last heartbeat {age:.0f} s ago)"
    return out
