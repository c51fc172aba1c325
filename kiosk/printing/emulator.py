"""A network (port 9100) ESC/POS printer emulator for tests and the demo.

It answers DLE EOT status requests from its current state (paper ok / low / out, online or not),
"prints" raster jobs while it has paper, and keeps what arrived while it had none apart, so a test
can prove the worker sent nothing into an empty printer. Listens on 127.0.0.1 only.
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from PIL import Image

from kiosk.printing.decode import Command, DecodeError, next_command

PAPER_OK, PAPER_LOW, PAPER_OUT = "ok", "low", "out"


@dataclass
class EmulatedPage:
    image_parts: list[Image.Image] = field(default_factory=list)
    feeds: int = 0


class NetworkPrinterEmulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.paper = PAPER_OK
        self.online = True
        self.received = bytearray()  # every byte that reached the printer
        self.printed: list[bytes] = []  # one entry per cut job printed with paper
        self.lost: list[bytes] = []  # jobs that arrived with no paper
        self.status_queries = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="escpos-emulator", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "NetworkPrinterEmulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> "NetworkPrinterEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The status bytes a real printer sends (fixed bits 1 and 4 set).
    def _answer(self, n: int) -> bytes:
        if n == 1:
            return bytes((0x12 | (0 if self.online else 0x08),))
        if n == 4:
            return bytes((0x12 | {PAPER_OK: 0, PAPER_LOW: 0x0C, PAPER_OUT: 0x6C}[self.paper],))
        return bytes((0x12,))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._client, args=(client,), daemon=True).start()

    def _client(self, client: socket.socket) -> None:
        buf = bytearray()
        job = bytearray()
        client.settimeout(0.2)
        with client:
            while not self._stop.is_set():
                try:
                    chunk = client.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                with self._lock:
                    self.received.extend(chunk)
                buf.extend(chunk)
                pos = 0
                while pos < len(buf):
                    try:
                        found = next_command(bytes(buf), pos)
                    except DecodeError as exc:
                        self.errors.append(str(exc))
                        buf.clear()
                        pos = 0
                        break
                    if found is None:
                        break
                    cmd, end = found
                    self._handle(client, cmd, bytes(buf[pos:end]), job)
                    pos = end
                del buf[:pos]

    def _handle(self, client: socket.socket, cmd: Command, raw: bytes, job: bytearray) -> None:
        if cmd.name == "status_query":
            self.status_queries += 1
            client.sendall(self._answer(cmd.arg))
            return
        job.extend(raw)
        if cmd.name == "cut":
            with self._lock:
                (self.printed if self.paper != PAPER_OUT and self.online else self.lost).append(bytes(job))
            job.clear()
