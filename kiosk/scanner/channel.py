"""The local event socket between the scanner process and the web app.

A Unix stream socket (path from `[scanner] socket`, default data_dir/scanner.sock), newline-delimited
JSON. A client first sends one line saying what it wants:

- ``events``: then receives ``{"event": "camera"|"hint"|"scan"|"ping", "data": {...}}`` lines; the
  current camera state and hint are sent at once, so a screen that connects late is up to date.
- ``preview``: then receives ``{"event": "preview", "jpeg": "<base64>"}`` at the preview frame rate.
  The scanner only encodes preview frames while someone watches.

A ``ping`` every few seconds lets the web side tell a hung scanner from a quiet one.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

PING_S = 5.0
# The web side gives up on a scanner that has said nothing (not even a ping) for this long.
SILENT_LIMIT_S = 3 * PING_S
MAX_LINE = 4 * 1024 * 1024  # a preview JPEG in base64 stays far below this
SEND_TIMEOUT_S = 0.5
UNIX_PATH_MAX = 107


class ChannelError(OSError):
    pass


def _check_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > UNIX_PATH_MAX:
        raise ChannelError(f"socket path too long for a Unix socket ({len(str(path))} > {UNIX_PATH_MAX}): {path}; "
                           "set [scanner] socket to a shorter path")


def encode(event: str, data: dict[str, Any]) -> bytes:
    return (json.dumps({"event": event, "data": data}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class EventServer:
    """Scanner side: accepts clients and broadcasts events. Thread-safe `publish`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        _check_path(self.path)
        self._lock = threading.Lock()
        self._events: list[socket.socket] = []
        self._previews: list[socket.socket] = []
        self._state: dict[str, bytes] = {}  # last camera/hint line, replayed to new clients
        self._sock: socket.socket | None = None
        self._closed = threading.Event()

    def start(self) -> "EventServer":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # left over from a scanner that died
            else:
                probe.close()
                raise ChannelError(f"another scanner is already listening on {self.path}")
        # Bind and listen under a private name, then rename into place: a client that sees the path
        # can always connect (binding creates the file before listen(), and a connect in between
        # was refused).
        staging = self.path.with_name(f".{os.getpid()}.sock")
        if len(os.fsencode(str(staging))) > UNIX_PATH_MAX:
            staging = self.path  # no room for a private name: bind in place
        if staging.exists() or staging.is_symlink():
            staging.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(staging))
            os.chmod(staging, 0o660)
            sock.listen(32)
            if staging != self.path:
                os.replace(staging, self.path)
        except OSError:
            sock.close()
            staging.unlink(missing_ok=True)
            raise
        self._sock = sock
        threading.Thread(target=self._accept_loop, name="scanner-accept", daemon=True).start()
        threading.Thread(target=self._ping_loop, name="scanner-ping", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._sock is not None:
            try:
                self.path.unlink()  # first: a client that still finds the path finds a listener
            except FileNotFoundError:
                pass
            finally:
                self._sock.close()
        with self._lock:
            for c in self._events + self._previews:
                c.close()
            self._events.clear()
            self._previews.clear()

    @property
    def preview_wanted(self) -> bool:
        return bool(self._previews)

    @property
    def client_count(self) -> int:
        return len(self._events)

    def publish(self, event: str, data: dict[str, Any]) -> None:
        line = encode(event, data)
        with self._lock:
            if event in ("camera", "hint"):
                self._state[event] = line
            self._events[:] = [c for c in self._events if self._send(c, line)]

    def publish_preview(self, jpeg: bytes) -> None:
        line = (json.dumps({"event": "preview", "jpeg": base64.b64encode(jpeg).decode()}) + "\n").encode()
        with self._lock:
            self._previews[:] = [c for c in self._previews if self._send(c, line)]

    @staticmethod
    def _send(conn: socket.socket, line: bytes) -> bool:
        try:
            conn.sendall(line)
            return True
        except OSError:  # gone or too slow: drop it, it reconnects
            conn.close()
            return False

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._hello, args=(conn,), daemon=True).start()

    def _hello(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            want = conn.makefile("rb").readline(64).strip()
        except OSError:
            conn.close()
            return
        conn.settimeout(SEND_TIMEOUT_S)
        with self._lock:
            if want == b"preview":
                self._previews.append(conn)
            elif want == b"events":
                if all(self._send(conn, line) for line in self._state.values()):
                    self._events.append(conn)
            else:
                conn.close()

    def _ping_loop(self) -> None:
        while not self._closed.wait(PING_S):
            self.publish("ping", {})


def connect(path: Path, want: str = "events", timeout: float = SILENT_LIMIT_S) -> socket.socket:
    """Web side: connect and subscribe. Raises OSError when no scanner is listening."""
    _check_path(Path(path))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(want.encode() + b"\n")
    except OSError:
        sock.close()
        raise
    return sock


def messages(sock: socket.socket) -> Iterator[dict[str, Any]]:
    """Yield decoded messages until the scanner closes the socket; socket.timeout if it goes silent."""
    reader = sock.makefile("rb")
    while True:
        line = reader.readline(MAX_LINE)
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError:
            log.warning("scanner socket: dropped a malformed line")
            continue
        if isinstance(msg, dict) and isinstance(msg.get("event"), str):
            yield msg
