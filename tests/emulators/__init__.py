"""HTTP emulators of the provincial systems, written from their real APIs (see docs/sources.md).

Each runs a threaded HTTP server on 127.0.0.1 at a free port. `fault` switches what the next
answers do: "slow" (wait `delay_s` first), "hang" (wait until stopped), "500", "drop" (close the
connection without an answer), "malformed" (broken JSON), "html" (an HTML error page), "renamed"
(a field renamed, as after an upgrade), "huge" (a body far over any cap), "wrong_code" (another
dossier's answer). `requests` records (method, path) of everything asked.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HTML_ERROR = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"


class Emulator:
    def __init__(self) -> None:
        self.fault: str | None = None
        self.fault_paths: tuple[str, ...] = ()  # only paths containing one of these get the fault; empty: all
        self.delay_s = 0.0
        self.requests: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment: otherwise Nagle's algorithm and delayed ACKs add ~40 ms
            # to every keep-alive answer, which no real server does.
            wbufsize = -1
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emu._serve(self, "GET")

            def do_POST(self) -> None:
                emu._serve(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def use_tls(self, certfile: str, keyfile: str) -> None:
        """Serve HTTPS with this certificate (before `start`)."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https"

    def start(self) -> "Emulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def count(self, fragment: str) -> int:
        with self._lock:
            return sum(fragment in p for _, p in self.requests)

    # --- plumbing -------------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        with self._lock:
            self.requests.append((method, parts.path))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        fault = self.fault if (not self.fault_paths or any(f in parts.path for f in self.fault_paths)) else None
        if fault == "slow":
            self._stop.wait(self.delay_s)
        if fault == "hang":
            self._stop.wait(120)
            return
        if fault == "drop":
            h.close_connection = True
            h.connection.close()
            return
        if fault == "500":
            return self.send(h, 500, b'{"message":"Internal Server Error"}')
        if fault == "html":
            return self.send(h, 502, HTML_ERROR, "text/html")
        if fault == "huge":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")  # no Content-Length: the cap must count bytes
            h.end_headers()
            chunk = b" " * 65536
            try:
                for _ in range(512):  # 32 MiB
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        status, payload, ctype = self.route(method, parts.path, query, headers, body)
        if fault == "malformed" and ctype == "application/json":
            payload = payload[: max(1, len(payload) // 2)]
        self.send(h, status, payload, ctype)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str = "application/json") -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", f"{ctype}; charset=utf-8")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:
            pass

    @staticmethod
    def js(data: Any) -> bytes:
        return json.dumps(data, ensure_ascii=False).encode()

    def route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
              body: bytes) -> tuple[int, bytes, str]:
        raise NotImplementedError


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Wait for a condition instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
