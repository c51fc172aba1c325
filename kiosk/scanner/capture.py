"""Frames from the USB camera (or a video file standing in for it), always the newest one.

Cameras queue frames; decoding a queued frame means reacting to where the receipt was a moment ago.
`NewestFrameReader` reads in its own thread as fast as frames come and keeps only the last one; the
decoder takes whatever is newest when it is ready. A camera that fails (unplugged, or never there)
is released and reopened every few seconds, and its state is reported: starting, ok, unavailable.

A motion-JPEG video file stands in for the camera the way the camera runs (MJPG, see `open_capture`):
taking a frame off it (`grab`) reads the frame's JPEG, and only a frame that is kept is decoded
(`retrieve`). OpenCV's file reader would decode every frame in `grab`, a cost the camera does not have
and that the idle scanner, which keeps one frame in a few, would otherwise pay at the full rate.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import cv2
import numpy as np

from kiosk.scanner.source import SourceSpec

__all__ = ["MjpegFile", "NewestFrameReader", "SourceSpec", "open_capture"]
log = logging.getLogger(__name__)

REOPEN_S = 2.0
FAILED_READS = 10  # consecutive failed reads that mean the camera is gone


MJPG = cv2.VideoWriter_fourcc(*"MJPG")


class MjpegFile:
    """A motion-JPEG video file read as a V4L2 camera in MJPG mode delivers: `grab` takes the next
    frame's JPEG off the file undecoded (OpenCV's raw stream mode), `retrieve` decodes it."""

    def __init__(self, cap: cv2.VideoCapture):
        self._cap = cap

    def grab(self) -> bool:
        return self._cap.grab()

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        ok, packet = self._cap.retrieve()
        if not ok or packet is None or not packet.size:
            return False, None
        frame = cv2.imdecode(packet.reshape(-1), cv2.IMREAD_COLOR)
        return frame is not None, frame

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.retrieve() if self.grab() else (False, None)

    def isOpened(self) -> bool:  # OpenCV's name: callers treat both alike
        return self._cap.isOpened()

    def set(self, prop: int, value: float) -> bool:
        return self._cap.set(prop, value)

    def release(self) -> None:
        self._cap.release()


def open_capture(spec: SourceSpec) -> cv2.VideoCapture | MjpegFile | None:
    """Open the camera or video; None (with a log line) when it is not there."""
    if spec.kind == "video":
        cap = cv2.VideoCapture(spec.target)
        if not cap.isOpened():
            return None
        if int(cap.get(cv2.CAP_PROP_FOURCC)) == MJPG and cap.set(cv2.CAP_PROP_FORMAT, -1):
            return MjpegFile(cap)
        return cap  # another codec: OpenCV decodes each frame as it reads it
    target: int | str = int(spec.target) if spec.target.isdigit() else spec.target
    node = f"/dev/video{target}" if isinstance(target, int) else target
    if not os.path.exists(node):
        return None  # unplugged: the device node (or its by-id symlink) is gone; spares OpenCV's warnings
    cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        return None
    # MJPG lets most USB cameras give 720p at 15+ fps over USB 2; size and rate as configured.
    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
    cap.set(cv2.CAP_PROP_FPS, spec.fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue as short as it goes; the thread does the rest
    return cap


class NewestFrameReader:
    """Reads frames in a thread; `wait_newer()` returns the newest frame not yet handed out."""

    def __init__(self, spec: SourceSpec, opener: Any = open_capture):
        self.spec = spec
        self._opener = opener
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self.state = "starting"
        self.detail = f"opening {spec.describe()}"
        self.ended = False  # a video without --loop has played to its end
        self.frames_read = 0
        self._idle_period = 0.0  # > 0: keep only one frame per this many seconds (see `set_idle`)
        self._next_keep = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)

    def start(self) -> "NewestFrameReader":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def set_idle(self, period_s: float) -> None:
        """Keep one frame per `period_s` seconds (0: every frame). The camera still delivers at its rate
        and each frame is taken off it (`grab`, no JPEG decoding), so when the idle ends the next frame
        kept is a fresh one, not one queued during the idle."""
        self._idle_period = max(0.0, period_s)
        if not period_s:
            self._next_keep = 0.0

    def wait_newer(self, after: int, timeout: float) -> tuple[int, np.ndarray] | None:
        with self._cond:
            if self._seq <= after and not self.ended:
                self._cond.wait(timeout)
            if self._seq > after and self._frame is not None:
                return self._seq, self._frame
            return None

    def _set_state(self, state: str, detail: str) -> None:
        if (state, detail) != (self.state, self.detail):
            (log.info if state == "ok" else log.warning)("%s: %s", state, detail)
        self.state, self.detail = state, detail
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        spec = self.spec
        while not self._stop.is_set():
            cap = self._opener(spec)
            if cap is None:
                self._set_state("unavailable", f"{spec.describe()} not found or cannot be opened")
                self._stop.wait(REOPEN_S)
                continue
            try:
                self._read_until_failure(cap)
            finally:
                cap.release()
            if self.ended:
                return
            if not self._stop.is_set():
                self._set_state("unavailable", f"{spec.describe()} stopped delivering frames")
                self._stop.wait(REOPEN_S)

    def _read_until_failure(self, cap: cv2.VideoCapture) -> None:
        spec = self.spec
        paced = spec.kind == "video"
        period = 1.0 / spec.fps
        failures = 0
        next_due = time.monotonic()
        while not self._stop.is_set():
            frame = None
            ok = cap.grab()
            keep = ok and (not self._idle_period or time.monotonic() >= self._next_keep)
            if keep:
                ok, frame = cap.retrieve()
                if self._idle_period:
                    self._next_keep = time.monotonic() + self._idle_period
            if not ok or (keep and frame is None):
                if paced:
                    if spec.loop and self.frames_read:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        continue
                    with self._cond:
                        self.ended = True
                        self._cond.notify_all()
                    return
                failures += 1
                if failures >= FAILED_READS:
                    return
                time.sleep(0.05)
                continue
            failures = 0
            self.frames_read += 1
            if frame is not None:
                if self.state != "ok":
                    h, w = frame.shape[:2]
                    self._set_state("ok", f"{spec.describe()} at {w}x{h}")
                with self._cond:
                    self._frame = frame
                    self._seq += 1
                    self._cond.notify_all()
            if paced:  # a file plays at the configured rate, as a camera would deliver it
                next_due += period
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_due = time.monotonic()
