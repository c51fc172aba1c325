"""The screen's side of the scanner: SSE relay of the local socket, preview, kiosk-only access, status."""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from kiosk.scanner.channel import EventServer
from kiosk.scanner.status import read_status, write_status


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed the 107-byte Unix socket path limit.
    d = Path(tempfile.mkdtemp(prefix="scan-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def scanner_app(make_config, sock_dir: Path):
    # Only the scanner's blueprint: these tests do not depend on the other areas' pages.
    from flask import Flask

    from kiosk.scanner import web

    cfg = make_config(scanner={"socket": str(sock_dir / "s.sock")})
    app = Flask(__name__)
    app.config.update(MOTCUA=cfg, TESTING=True)
    app.register_blueprint(web.bp)
    return app, sock_dir / "s.sock"


def _events(chunks: Iterator[bytes], count: int) -> list[tuple[str, dict]]:
    """Read `count` SSE events (comments skipped) from a streaming response body."""
    out: list[tuple[str, dict]] = []
    buf = ""
    for chunk in chunks:
        buf += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
                          and ": " in line)
            if "event" in fields:
                out.append((fields["event"], json.loads(fields["data"])))
                if len(out) == count:
                    return out
    return out


def test_events_say_unavailable_without_a_scanner_then_relay_once_it_starts(scanner_app) -> None:
    app, path = scanner_app
    resp = app.test_client().get("/scanner/events", buffered=False)
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    body = iter(resp.response)
    assert _events(body, 1) == [("camera", {"state": "unavailable", "detail": "scanner not running"})]

    server = EventServer(path).start()
    try:
        server.publish("camera", {"state": "ok", "detail": "camera 0"})
        assert _events(body, 1) == [("camera", {"state": "ok", "detail": "camera 0"})]  # replayed on connect
        server.publish("scan", {"code": "000.00.21.H42-251125-0001", "secret": "AB12CD", "kind": "url"})
        server.publish("hint", {"hint": "hold_still"})
        got = _events(body, 2)
        assert got == [("scan", {"code": "000.00.21.H42-251125-0001", "secret": "AB12CD", "kind": "url"}),
                       ("hint", {"hint": "hold_still"})]
    finally:
        server.close()
    assert _events(body, 1)[0][1]["state"] == "unavailable"
    resp.close()


def test_scanner_routes_refuse_other_clients(scanner_app) -> None:
    app, _ = scanner_app
    client = app.test_client()
    for url in ("/scanner/events", "/scanner/preview.mjpg"):
        assert client.get(url, environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 403


def test_preview_relays_scanner_jpegs_and_shows_a_placeholder_without_one(scanner_app) -> None:
    app, path = scanner_app
    resp = app.test_client().get("/scanner/preview.mjpg", buffered=False)
    assert resp.mimetype == "multipart/x-mixed-replace"
    body = iter(resp.response)
    first = next(body)
    assert first.startswith(b"--frame\r\nContent-Type: image/jpeg") and b"\xff\xd8" in first  # placeholder JPEG
    resp.close()

    server = EventServer(path).start()
    try:

        def publish_when_watched() -> None:
            deadline = time.monotonic() + 5
            while not server.preview_wanted and time.monotonic() < deadline:
                time.sleep(0.01)
            server.publish_preview(b"\xff\xd8fake-jpeg\xff\xd9")

        threading.Thread(target=publish_when_watched, daemon=True).start()
        # The test client reads the first part inside get(): connect, subscribe, wait for the frame.
        resp = app.test_client().get("/scanner/preview.mjpg", buffered=False)
        part = next(iter(resp.response))
        assert part.endswith(b"\r\n\r\n\xff\xd8fake-jpeg\xff\xd9\r\n")
        resp.close()
    finally:
        server.close()


def test_status_file_heartbeat_and_staleness(config) -> None:
    assert read_status(config)["state"] == "unavailable"
    write_status(config, "ok", "camera 0 at 640x480")
    st = read_status(config)
    assert (st["state"], st["detail"]) == ("ok", "camera 0 at 640x480")
    assert st["updated_at"] is not None
    path = Path(config.paths.data_dir) / "scanner.status.json"
    body = json.loads(path.read_text())
    body["updated_at"] -= 60
    path.write_text(json.dumps(body))
    st = read_status(config)
    assert st["state"] == "unavailable" and "not running" in st["detail"]
