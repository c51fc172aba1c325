"""Scanner routes for the kiosk screen: scan events as server-sent events, and the aiming preview.

The web app never opens the camera: both routes relay what the scanner process publishes on its
local socket (kiosk/scanner/channel.py). Each open stream holds one gunicorn gthread thread and one
socket connection; a scan reaches the browser as soon as the scanner writes it (no polling).

Event names and data (the screen's contract):
  scan    {"code", "secret", "kind", "decoded_at"}
  hint    {"hint": "hold_still" | "move_closer" | "flatten" | null}
  camera  {"state": "ok" | "unavailable" | "starting", "detail": str}
When no scanner is running the stream says camera unavailable and keeps retrying the socket.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
from typing import Any, Iterator

from flask import Blueprint, Response, abort, stream_with_context
from PIL import Image, ImageDraw

from kiosk.context import get_config
from kiosk.scanner import channel
from kiosk.scanner.status import socket_path
from kiosk.security import is_kiosk_screen

log = logging.getLogger(__name__)

bp = Blueprint("scanner", __name__, url_prefix="/scanner")

RETRY_S = 1.0
KEEPALIVE_S = 15.0
BOUNDARY = "frame"
RELAYED = ("scan", "hint", "camera")


@bp.before_request
def _kiosk_only() -> None:
    # Scan events and the camera picture are for the kiosk's own screen, not for the hall's LAN.
    if not is_kiosk_screen():
        abort(403)


# A stream never ends by itself, so gunicorn stopping a worker (a restart, an upgrade, systemctl stop)
# waited its whole graceful timeout for the screen's streams and then killed them. The worker's
# SIGTERM handler (kiosk/wsgi.py) calls stop_streams: every stream ends at once, cleanly, and the
# screen reconnects to the next worker.
_stopping = threading.Event()
_open: set[socket.socket] = set()
_open_lock = threading.Lock()


def stop_streams() -> None:
    """End every open scanner stream of this process now (the worker is stopping)."""
    _stopping.set()
    with _open_lock:
        for sock in _open:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it
            except OSError:
                pass


def _opened(sock: socket.socket) -> bool:
    """Track `sock` for stop_streams; False (and closed) when the worker is already stopping."""
    with _open_lock:
        if _stopping.is_set():
            sock.close()
            return False
        _open.add(sock)
        return True


def _closed(sock: socket.socket) -> None:
    with _open_lock:
        _open.discard(sock)
    sock.close()


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def relay_events(path, retry_s: float = RETRY_S, silent_limit_s: float = channel.SILENT_LIMIT_S) -> Iterator[str]:
    """SSE text for one screen: relay the scanner's events; when it is gone, say so and retry."""
    yield f"retry: {int(retry_s * 1000)}\n\n"
    said_unavailable = False
    last_write = time.monotonic()
    while not _stopping.is_set():
        try:
            sock = channel.connect(path, "events", timeout=silent_limit_s)
        except OSError as exc:
            if not said_unavailable:
                log.info("scanner socket %s not available: %s", path, exc)
                yield _sse("camera", {"state": "unavailable", "detail": "scanner not running"})
                said_unavailable = True
                last_write = time.monotonic()
            elif time.monotonic() - last_write > KEEPALIVE_S:
                yield ": keepalive\n\n"  # lets gunicorn notice a browser that went away
                last_write = time.monotonic()
            _stopping.wait(retry_s)
            continue
        if not _opened(sock):
            return
        said_unavailable = False
        try:
            for msg in channel.messages(sock):
                event = msg["event"]
                if event in RELAYED and isinstance(msg.get("data"), dict):
                    yield _sse(event, msg["data"])
                elif event == "ping":
                    yield ": ping\n\n"
                last_write = time.monotonic()
        except (socket.timeout, OSError) as exc:
            if not _stopping.is_set():
                log.warning("scanner socket went silent or failed: %s", exc)
        finally:
            _closed(sock)
        if _stopping.is_set():
            return
        yield _sse("camera", {"state": "unavailable", "detail": "scanner stopped"})
        said_unavailable = True
        last_write = time.monotonic()
        _stopping.wait(retry_s)


@bp.get("/events")
def events() -> Response:
    path = socket_path(get_config())
    return Response(
        stream_with_context(relay_events(path)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_placeholder: bytes | None = None


def placeholder_jpeg() -> bytes:
    """A grey 'no camera' frame, so the <img> shows something sane instead of a broken icon."""
    global _placeholder
    if _placeholder is None:
        img = Image.new("RGB", (320, 240), (60, 60, 60))
        draw = ImageDraw.Draw(img)
        draw.rectangle((100, 80, 220, 160), outline=(200, 200, 200), width=3)
        draw.line((100, 80, 220, 160), fill=(200, 200, 200), width=3)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=70)
        _placeholder = buf.getvalue()
    return _placeholder


def _part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


def relay_preview(path, retry_s: float = RETRY_S) -> Iterator[bytes]:
    """MJPEG parts: the scanner's preview frames, or the placeholder while there is no scanner."""
    while not _stopping.is_set():
        try:
            sock = channel.connect(path, "preview", timeout=3.0)
        except OSError:
            yield _part(placeholder_jpeg())
            _stopping.wait(max(retry_s, 2.0))
            continue
        if not _opened(sock):
            return
        try:
            for msg in channel.messages(sock):
                if msg["event"] == "preview" and isinstance(msg.get("jpeg"), str):
                    yield _part(base64.b64decode(msg["jpeg"]))
        except (socket.timeout, OSError, ValueError):
            pass
        finally:
            _closed(sock)
        if _stopping.is_set():
            return
        yield _part(placeholder_jpeg())
        _stopping.wait(retry_s)


@bp.get("/preview.mjpg")
def preview() -> Response:
    path = socket_path(get_config())
    return Response(
        stream_with_context(relay_preview(path)),
        mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
