"""The idle scanner: an empty, unchanged desk is not decoded frame after frame, and the first frame with
a receipt in it is decoded at once. Frames are real images (tests/scanner_media.py); the clock is injected."""
from __future__ import annotations

import time

import numpy as np

from kiosk.demo import generate, receipt_payloads
from kiosk.scanner.capture import NewestFrameReader, SourceSpec
from kiosk.scanner.decoders import DecoderChain
from kiosk.scanner.pipeline import ScanPipeline, StillnessGate
from tests.scanner_media import desk, receipt_frame, write_video

URL = receipt_payloads(next(generate(1, seed=3)))["url"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _counting_pipeline(clock: _Clock) -> tuple[ScanPipeline, list[int]]:
    chain = DecoderChain(["zxing"])
    calls = [0]
    real = chain.decode

    def decode(grey, **kwargs):
        calls[0] += 1
        return real(grey, **kwargs)

    chain.decode = decode
    return ScanPipeline(chain, interval_s=3.0, clock=clock), calls


def _noisy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, 2.5, img.shape), 0, 255).astype(np.uint8)


def test_an_unchanged_empty_desk_is_decoded_only_now_and_then_and_goes_idle():
    clock, rng = _Clock(), np.random.default_rng(1)
    pipe, calls = _counting_pipeline(clock)
    base = desk()
    for _ in range(150):  # ten seconds at 15 fps, each frame with its own sensor noise
        assert pipe.process(_noisy(base, rng)) == []
        clock.now += 1 / 15
    # Three decodes of the new scene, then one recheck every 3 s: 6 instead of 150.
    assert 3 <= calls[0] <= 9
    assert pipe.gate.idle


def test_the_first_frame_with_a_receipt_is_decoded_even_when_idle():
    clock, rng = _Clock(), np.random.default_rng(2)
    pipe, calls = _counting_pipeline(clock)
    base = desk()
    for _ in range(60):
        pipe.process(_noisy(base, rng))
        clock.now += 1 / 15
    assert pipe.gate.idle
    before = calls[0]
    events = pipe.process(_noisy(receipt_frame(URL), rng))
    assert calls[0] == before + 1
    assert [e for e, _ in events] == ["scan"]
    assert not pipe.gate.idle


def test_a_receipt_held_in_view_keeps_every_frame_decoded():
    clock, rng = _Clock(), np.random.default_rng(3)
    pipe, calls = _counting_pipeline(clock)
    frame = receipt_frame(URL)
    for _ in range(30):
        pipe.process(_noisy(frame, rng))
        clock.now += 1 / 15
    assert calls[0] == 30  # someone is presenting a receipt: no frame skipped


def test_a_slow_change_against_the_last_decoded_scene_is_noticed():
    gate = StillnessGate(threshold=6.0, recheck_s=1000.0, clock=_Clock())
    from kiosk.scanner.decoders import Outcome

    grey = np.full((480, 640), 120, np.uint8)
    for _ in range(3):
        assert gate.should_decode(grey)
        gate.decoded(Outcome())
    decoded = []
    for step in range(1, 12):  # brightens by one level a frame: each frame alone looks unchanged
        if gate.should_decode(np.full((480, 640), 120 + step, np.uint8)):
            decoded.append(step)
            gate.decoded(Outcome())
    # Against the last decoded scene, not the previous frame: 7 levels up it is a new scene (decoded
    # three times, so the fallbacks get their turn); before that, nothing.
    assert decoded == [7, 8, 9]


def test_the_idle_reader_keeps_fewer_frames_and_a_fresh_one_when_woken(tmp_path):
    video = write_video(tmp_path / "desk.avi", [(desk(), 300)], fps=30)
    reader = NewestFrameReader(SourceSpec("video", str(video), fps=30)).start()
    try:
        got = reader.wait_newer(0, timeout=10)
        assert got is not None
        reader.set_idle(0.5)
        idle_from = time.monotonic()
        seq0, grabbed0 = got[0], reader.frames_read
        last_seq = seq0
        # Until the source has delivered 45 more frames (a condition: a slow machine just takes longer);
        # the 60 s only stops a hang.
        deadline = idle_from + 60
        while reader.frames_read - grabbed0 < 45:
            assert time.monotonic() < deadline and not reader.ended, (reader.state, reader.frames_read)
            more = reader.wait_newer(last_seq, timeout=0.1)
            if more:
                last_seq = more[0]
        idle_for = time.monotonic() - idle_from
        kept = last_seq - seq0
        # One frame kept per 0.5 s of idle, however fast or slow the frames came (+1 for the first, +1
        # for the frame being kept as the count was read).
        assert kept <= idle_for / 0.5 + 2, (kept, idle_for)
        assert kept < reader.frames_read - grabbed0
        reader.set_idle(0.0)
        woke = reader.wait_newer(last_seq, timeout=10)
        assert woke is not None
    finally:
        reader.stop()


def test_a_recheck_runs_the_first_decoder_only_unless_it_sees_a_code():
    chain = DecoderChain(["zxing", "pyzbar"], fallback_every=1)
    calls = []
    real = chain.decoders[1].decode
    chain.decoders[1].decode = lambda g: (calls.append("pyzbar"), real(g))[1]
    from kiosk.scanner.decoders import to_grey

    chain.decode(to_grey(desk()), blind_fallbacks=False)
    assert calls == []
    chain.decode(to_grey(desk()))
    assert calls == ["pyzbar"]


def test_a_motion_jpeg_file_is_read_as_the_camera_gives_it_and_decoded_only_for_frames_kept(tmp_path):
    import cv2

    from kiosk.scanner.capture import MjpegFile, open_capture

    video = write_video(tmp_path / "two.avi", [(desk(), 1), (receipt_frame(URL), 1)])
    cap = open_capture(SourceSpec("video", str(video)))
    assert isinstance(cap, MjpegFile)  # grab() hands over the JPEG; only retrieve() decodes it
    plain = cv2.VideoCapture(str(video))  # OpenCV decoding every frame it reads
    try:
        assert cap.grab() and plain.grab()  # the desk is taken off and skipped
        assert cap.grab() and plain.grab()
        (ok, mine), (ok_plain, theirs) = cap.retrieve(), plain.retrieve()
        assert ok and ok_plain and mine.shape == theirs.shape
        assert np.abs(mine.astype(np.int16) - theirs).mean() < 2  # the same picture (two JPEG decoders)
        assert DecoderChain(["zxing"]).decode(cv2.cvtColor(mine, cv2.COLOR_BGR2GRAY)).texts == [URL]
        assert not cap.grab()  # the end of the file, as before
    finally:
        cap.release()
        plain.release()
