"""The scanner process for real: `kiosk scan --video/--camera` as a subprocess, its socket, its status
file, a decoder crash, a missing and an unplugged camera, and the screen's SSE stream under gunicorn."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import pytest

from kiosk.demo import generate, receipt_payloads
from kiosk.scanner.capture import NewestFrameReader, SourceSpec
from kiosk.scanner.channel import connect, messages
from tests.conftest import write_config_file
from tests.scanner_media import desk, receipt_frame, write_video

REC = next(generate(1))
URL = receipt_payloads(REC)["url"]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="scan-", dir="/tmp"))  # Unix socket paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def receipt_video(short_dir: Path) -> Path:
    # 1 s of desk, 1 s of receipt, 1 s of desk at 15 fps.
    return write_video(short_dir / "receipt.avi", [(desk(), 15), (receipt_frame(URL), 15), (desk(), 15)])


@pytest.fixture
def scanner(short_dir: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, dict[str, Any]]]]:
    procs: list[subprocess.Popen] = []

    def _start(*args: str) -> tuple[subprocess.Popen, dict[str, Any]]:
        cfg = {"paths": {"data_dir": str(short_dir)}, "scanner": {"repeat_interval_s": 1.0}}
        path = write_config_file(short_dir / "config.toml", cfg)
        log = open(short_dir / "scanner.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(path), "scan", *args],
                                stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        sock = short_dir / "scanner.sock"
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None, (short_dir / "scanner.log").read_text()
            assert time.monotonic() < deadline, "scanner socket did not appear"
            time.sleep(0.05)
        return proc, {"sock": sock, "status": short_dir / "scanner.status.json", "config": path}

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _until(sock_msgs: Iterator[dict], pred: Callable[[dict], bool], timeout: float = 15) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    for msg in sock_msgs:
        seen.append(msg)
        if pred(msg):
            return seen
        assert time.monotonic() < deadline, f"not seen in {timeout} s: {seen[-5:]}"
    raise AssertionError(f"socket closed; saw {seen[-5:]}")


def test_video_scans_reach_socket_clients_once_per_interval(scanner, receipt_video: Path) -> None:
    proc, paths = scanner("--video", str(receipt_video), "--loop")
    sock = connect(paths["sock"])
    msgs = messages(sock)
    first = _until(msgs, lambda m: m["event"] == "scan")[-1]
    assert {k: first["data"][k] for k in ("code", "secret", "kind")} == {
        "code": REC["code"], "secret": REC["secret"], "kind": "url"}
    t_first = time.monotonic()
    # The receipt is in view for 1 s of every 3 s loop and the interval is 1 s: the next report
    # comes with the next loop, not from the same second of frames.
    _until(msgs, lambda m: m["event"] == "scan")
    assert time.monotonic() - t_first > 1.5
    deadline = time.monotonic() + 2  # the status file is written just after the event goes out
    while json.loads(paths["status"].read_text())["scans"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert json.loads(paths["status"].read_text())["state"] == "ok"
    sock.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert json.loads(paths["status"].read_text())["state"] == "unavailable"
    assert not paths["sock"].exists()


def test_the_scanner_writes_its_station_heartbeat_without_loading_sqlalchemy(scanner, receipt_video: Path,
                                                                            short_dir: Path) -> None:
    from motcua.config import load_config
    from motcua.db import make_engine
    from motcua.stations import Device, Service, list_stations

    cfg = load_config(str(write_config_file(short_dir / "migrate.toml", {"paths": {"data_dir": str(short_dir)}})))
    engine = make_engine(cfg)  # the web app migrates; the scanner only writes its row
    proc, paths = scanner("--video", str(receipt_video), "--loop")
    _until(messages(connect(paths["sock"])), lambda m: m["event"] == "camera" and m["data"]["state"] == "ok")
    deadline = time.monotonic() + 10
    while True:  # the first beat is written at start, then again when the camera state changes
        beats = [s for st in list_stations(engine, stale_after_s=60) for s in st.services]
        mine = next((b for b in beats if b.service == Service.SCANNER and b.device_state == "ok"), None)
        if mine is not None:
            break
        assert time.monotonic() < deadline, beats
        time.sleep(0.1)
    assert (mine.pid, mine.device) == (proc.pid, Device.CAMERA)
    # The supervisor runs as long as the kiosk: SQLAlchemy (~20 MB) has no business in it.
    assert "/sqlalchemy/" not in Path(f"/proc/{proc.pid}/maps").read_text()
    engine.dispose()


def test_decoder_crash_restarts_the_child_and_clients_stay_connected(scanner, receipt_video: Path) -> None:
    proc, paths = scanner("--video", str(receipt_video), "--loop")
    msgs = messages(connect(paths["sock"]))
    _until(msgs, lambda m: m["event"] == "camera" and m["data"]["state"] == "ok")
    child = json.loads(paths["status"].read_text())["child_pid"]
    os.kill(child, signal.SIGABRT)  # what zbar's abort() does to the decoding process
    seen = _until(msgs, lambda m: m["event"] == "camera" and m["data"]["state"] == "starting")
    seen += _until(msgs, lambda m: m["event"] == "scan")  # same connection: the supervisor kept it
    assert proc.poll() is None
    status = json.loads(paths["status"].read_text())
    assert status["restarts"] == 1 and status["child_pid"] != child


def test_missing_camera_is_reported_unavailable(scanner) -> None:
    proc, paths = scanner("--camera", "--device", "/dev/v4l/by-id/usb-Nothing_Here-video-index0")
    msgs = messages(connect(paths["sock"]))
    msg = _until(msgs, lambda m: m["event"] == "camera" and m["data"]["state"] == "unavailable")[-1]
    assert "not found" in msg["data"]["detail"]
    from kiosk.scanner.status import read_status
    from motcua.config import load_config

    deadline = time.monotonic() + 10
    while read_status(load_config(paths["config"]))["state"] != "unavailable":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _by_id_opener(spec: SourceSpec) -> cv2.VideoCapture | None:
    """Like open_capture for a by-id path: gone when unplugged; the 'camera' behind it is a video file
    that ends (stops delivering frames) the way an unplugged camera does."""
    if not os.path.exists(spec.target):
        return None
    cap = cv2.VideoCapture(os.path.realpath(spec.target))
    return cap if cap.isOpened() else None


def test_unplugged_camera_becomes_unavailable_and_is_picked_up_again(short_dir: Path, monkeypatch) -> None:
    from kiosk.scanner import capture

    monkeypatch.setattr(capture, "REOPEN_S", 0.2)
    video = write_video(short_dir / "cam.avi", [(desk(), 10)])
    link = short_dir / "usb-Cam-video-index0"
    link.symlink_to(video)
    reader = NewestFrameReader(SourceSpec("camera", str(link)), opener=_by_id_opener).start()
    try:
        assert reader.wait_newer(0, timeout=5) is not None and reader.state == "ok"
        link.unlink()  # unplug: frames stop, the device node disappears
        deadline = time.monotonic() + 5
        while reader.state != "unavailable":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        seq = reader.frames_read
        link.symlink_to(video)  # plugged back in
        deadline = time.monotonic() + 5
        while reader.state != "ok" or reader.frames_read <= seq:
            assert time.monotonic() < deadline, (reader.state, reader.detail)
            time.sleep(0.02)
    finally:
        reader.stop()


def test_slow_decoder_always_gets_the_newest_frame(short_dir: Path) -> None:
    frames = []
    for i in range(30):  # each frame carries its number in the picture
        f = desk()
        cv2.putText(f, f"{i:02d}", (280, 260), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
        frames.append((f, 1))
    reader = NewestFrameReader(SourceSpec("video", str(write_video(short_dir / "n.avi", frames)), fps=30)).start()
    try:
        got = []
        seq = 0
        while True:
            item = reader.wait_newer(seq, timeout=30)  # returns at once after the end; 30 s only stops a hang
            if item is None:
                break
            seq = item[0]
            got.append(seq)
            # A decoder much slower than the camera: busy until three more frames have arrived (a condition,
            # not a sleep, so a slow machine reading slowly makes the same test).
            deadline = time.monotonic() + 30
            while reader.frames_read < seq + 3 and not reader.ended:
                assert time.monotonic() < deadline, (reader.state, reader.detail, reader.frames_read)
                time.sleep(0.01)
        assert reader.ended
        # Frames queued while the decoder was busy are skipped, never handed out late: each turn gets the
        # newest (at least 3 on), the last turn the video's last frame.
        gaps = [b - a for a, b in zip(got, got[1:], strict=False)]
        assert len(got) < 15 and all(g >= 3 for g in gaps[:-1]) and gaps[-1] >= 1, got
        assert got[-1] == reader.frames_read == 30, got
    finally:
        reader.stop()


def test_screen_learns_of_each_scan_through_gunicorn(scanner, live_server, receipt_video: Path,
                                                     short_dir: Path) -> None:
    url = live_server({"scanner": {"socket": str(short_dir / "scanner.sock")}})
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("GET", "/scanner/events")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")

    def sse() -> Iterator[tuple[str, dict]]:
        event = None
        while True:
            line = resp.fp.readline().decode()
            assert line, "stream closed"
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                yield event, json.loads(line[6:])
                event = None

    stream = sse()
    assert next(stream) == ("camera", {"state": "unavailable", "detail": "scanner not running"})
    scanner("--video", str(receipt_video), "--loop")
    # Two scans of the looping video arrive, each with the receipt's code. How fast is measured in
    # bench/bench_scanner.py (relay lag), not asserted here: a loaded CI machine is not a kiosk.
    scans = []
    for event, data in stream:
        if event == "scan":
            assert data["code"] == REC["code"] and data["secret"] == REC["secret"]
            scans.append(data)
            if len(scans) == 2:
                break
    conn.close()
    assert all(isinstance(s["decoded_at"], float) for s in scans)


def test_chromium_gets_scans_and_the_preview_from_the_real_scanner(scanner, live_server, receipt_video: Path,
                                                                    short_dir: Path, page) -> None:
    url = live_server({"scanner": {"socket": str(short_dir / "scanner.sock")}})
    scanner("--video", str(receipt_video), "--loop")
    page.goto(url + "/scanner/no-such-page")  # any same-origin document will do for EventSource
    page.evaluate("""() => {
        window.got = [];
        const es = new EventSource('/scanner/events');
        for (const name of ['scan', 'camera', 'hint']) {
            es.addEventListener(name, (e) => window.got.push(
                {name, data: JSON.parse(e.data)}));
        }
        const img = document.createElement('img');
        img.id = 'preview';
        img.src = '/scanner/preview.mjpg';
        document.body.appendChild(img);
    }""")
    # Polled from Python: the app's Content-Security-Policy forbids the eval behind wait_for_function.
    scan = _poll(lambda: page.evaluate("() => window.got.find(e => e.name === 'scan') || null"), 20)
    assert scan["data"]["code"] == REC["code"] and scan["data"]["secret"] == REC["secret"]
    # The aiming preview: real JPEG frames from the scanner, at the preview width.
    assert _poll(lambda: page.evaluate("() => document.getElementById('preview').naturalWidth === 320"), 10)


def _poll(fn: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def test_stopping_the_server_ends_an_open_scan_stream_cleanly(scanner, live_server, receipt_video: Path,
                                                              short_dir: Path) -> None:
    """A restart must not wait gunicorn's graceful timeout for the screen's endless stream and then cut
    it: the worker ends the stream itself (the chunked body is terminated) and exits."""
    url = live_server({"scanner": {"socket": str(short_dir / "scanner.sock")}})
    scanner("--video", str(receipt_video), "--loop")
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/scanner/events")
    resp = conn.getresponse()
    assert resp.status == 200
    while True:  # until the stream relays the running scanner: the worker thread now blocks on its socket
        line = resp.fp.readline()
        assert line, "stream closed"
        if line.startswith(b"event: scan"):
            break
    server = live_server.processes[0]
    os.killpg(server.pid, signal.SIGTERM)
    rest = resp.fp.read()  # the raw chunked body up to the connection's end
    conn.close()
    assert rest.endswith(b"0\r\n\r\n"), rest[-200:]  # the last chunk: ended, not cut
    assert server.wait(30) == 0
    assert b"event: camera" not in rest  # no "scanner stopped" on the way out: the scanner did not stop
