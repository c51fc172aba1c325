"""The demo's looping receipt video reports codes only while the scan screen is open (it asks for the
preview): the real supervisor and decode child on a real video, events read from the real socket."""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from kiosk.scanner.capture import SourceSpec
from kiosk.scanner.channel import connect, messages
from kiosk.scanner.service import Supervisor
from tests.scanner_media import desk, receipt_frame, write_video

CODE = "000.00.21.H42-251110-0004"


def _run(make_config, tmp_path: Path, watched: bool) -> tuple[list[str], int]:
    sock_dir = Path(tempfile.mkdtemp(prefix="i14-", dir="/tmp"))
    cfg = make_config(scanner={"socket": str(sock_dir / "scan.sock"), "repeat_interval_s": 10.0})
    video = write_video(tmp_path / f"receipt-{watched}.avi",
                        [(desk(), 30), (receipt_frame(f"https://motcua.example.vn/tra-cuu-ho-so?ma={CODE}"), 20),
                         (desk(), 5)])
    sup = Supervisor(cfg, SourceSpec("video", str(video), loop=False, scans_only_when_watched=True))
    runner = threading.Thread(target=sup.run, daemon=True)
    runner.start()
    path = sock_dir / "scan.sock"
    deadline = time.monotonic() + 20
    while not path.exists():
        assert time.monotonic() < deadline, "the scanner socket did not appear"
        time.sleep(0.05)
    events = connect(path)
    preview = connect(path, want="preview") if watched else None
    codes: list[str] = []
    try:
        for msg in messages(events):  # until the supervisor closes the socket at the end of the video
            if msg["event"] == "scan":
                codes.append(msg["data"]["code"])
    finally:
        events.close()
        if preview:
            preview.close()
        runner.join(20)
    return codes, sup.scans


def test_demo_video_scans_nothing_while_no_scan_screen_watches(make_config, tmp_path):
    codes, scans = _run(make_config, tmp_path, watched=False)
    assert codes == [] and scans == 0


def test_demo_video_scans_the_receipt_while_the_scan_screen_watches(make_config, tmp_path):
    codes, scans = _run(make_config, tmp_path, watched=True)
    assert codes == [CODE] and scans == 1
