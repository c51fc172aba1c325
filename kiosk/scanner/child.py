"""The scanner's decode child: it owns the camera, runs the pipeline and sends events up a pipe.

Its own module, imported by nothing but the child (the supervisor runs `python -m kiosk.scanner.child
ARGS`): what this imports is all the child loads, so it stays at OpenCV, NumPy and the decoders (no
config models, no database, no station heartbeats; those are the supervisor's).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from kiosk.scanner.source import SourceSpec


def main(argv: list[str]) -> None:
    """`python -m kiosk.scanner.child '{"spec": ..., "scanner": ..., "events": FD, "control": FD}'`."""
    args = json.loads(argv[1])
    events = Connection(args["events"], readable=False)
    control = Connection(args["control"], writable=False)
    decode_child(args["spec"], args["scanner"], events, control)


def decode_child(spec: dict[str, Any], scanner: dict[str, Any], conn: Any, control: Any) -> None:
    """Child process body: newest frame -> pipeline -> events to `conn`; `control` says whether the
    screen wants the preview (True/False, sent when it changes)."""
    from motcua.logs import setup_logging

    setup_logging(False)
    # Before NumPy/OpenCV load: their OpenBLAS would start a thread (and buffers, tens of MB) per
    # core for matrix work the decoders never do.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import cv2

    from kiosk.scanner.capture import NewestFrameReader

    # One core for the decoders; a Pi's other cores serve Chromium and the web app.
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the supervisor, which stops us

    from kiosk.scanner.decoders import DecoderChain
    from kiosk.scanner.pipeline import ScanPipeline

    source = SourceSpec(**spec)
    chain = DecoderChain(scanner["decoders"], scanner["fallback_every"], scanner["fallback_cpu"])
    pipeline = ScanPipeline(chain, scanner["repeat_interval_s"], scanner["patterns"], scanner["code_pattern"],
                            sharp_edge=scanner["sharp_edge"])
    from motcua.memory import release_free_memory

    release_free_memory()  # what the imports left behind, before the camera's frames come
    reader = NewestFrameReader(source).start()
    preview_period = 1.0 / scanner["preview_fps"]
    idle_period = 1.0 / scanner["idle_fps"] if scanner["idle_fps"] else 0.0
    preview_width = scanner["preview_width"]
    last_state = None
    last_alive = last_preview = 0.0
    seq = 0
    preview = False
    try:
        while True:
            while control.poll():
                preview = bool(control.recv())
            got = reader.wait_newer(seq, timeout=0.5)
            state = (reader.state, reader.detail)
            if state != last_state:
                conn.send(("camera", {"state": state[0], "detail": state[1]}))
                last_state = state
            now = time.monotonic()
            if got is not None:
                seq, frame = got
                for event in pipeline.process(frame):
                    conn.send(event)
                # An empty, unchanged scene for a while: take fewer frames until something moves.
                reader.set_idle(idle_period if pipeline.gate.idle and not preview else 0.0)
                if preview and now - last_preview >= preview_period:
                    last_preview = now
                    conn.send(("preview", _preview_jpeg(frame, preview_width)))
            elif reader.ended:
                conn.send(("ended", {}))
                return
            if now - last_alive >= 1.0:
                conn.send(("alive", {"frames": reader.frames_read}))
                last_alive = now
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the supervisor is gone
    finally:
        reader.stop()


def _preview_jpeg(frame: Any, width: int) -> bytes:
    import cv2

    h, w = frame.shape[:2]
    if w > width:
        frame = cv2.resize(frame, (width, int(h * width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return buf.tobytes() if ok else b""


if __name__ == "__main__":
    main(sys.argv)
