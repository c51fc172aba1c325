"""The demo's scanner video: every demo receipt is read from it by the live pipeline, once."""
from __future__ import annotations

from pathlib import Path

import cv2

from kiosk.demo import DEMO_PROCESSES, generate, write_receipt_images
from kiosk.scanner.decoders import DecoderChain
from kiosk.scanner.demo import build_video
from kiosk.scanner.pipeline import ScanPipeline


def test_demo_video_yields_each_receipt_once(tmp_path: Path) -> None:
    records = list(generate(3))
    video = build_video(write_receipt_images(records, tmp_path / "receipts"), tmp_path / "demo.avi")
    cap = cv2.VideoCapture(str(video))
    frame_no = [0]
    pipe = ScanPipeline(DecoderChain(["zxing", "pyzbar", "opencv"], fallback_every=3), interval_s=3.0,
                        clock=lambda: frame_no[0] / 15)  # video time, not wall time
    codes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame_no[0] += 1
        codes += [data["code"] for event, data in pipe.process(frame) if event == "scan"]
    cap.release()
    assert codes == [r["code"] for r in records]
    assert ("scanner", ["-m", "kiosk.scanner.demo"]) in DEMO_PROCESSES
