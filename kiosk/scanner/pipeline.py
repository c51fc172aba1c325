"""One frame at a time: decode, parse, drop repeats, work out the hint for the screen.

`ScanPipeline.process(frame)` returns the events to publish for that frame; it has no threads and no
sockets, so tests drive it frame by frame. The decode child (service.py) runs it on the newest frame.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from enum import StrEnum
from typing import Any, Callable

import numpy as np

from kiosk.scanner.decoders import DecoderChain, Outcome, to_grey
from kiosk.scanner.payload import ParsedPayload, PayloadRejected, parse_payload

log = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]


class RepeatFilter:
    """Report the same code at most once per `interval_s` (a receipt held under the camera)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        if len(self._last) > 256:  # forget old codes; a kiosk sees a few hundred a day
            cutoff = now - self.interval_s
            self._last = {k: t for k, t in self._last.items() if t >= cutoff}
        return True


class Hint(StrEnum):
    """What the scan screen tells the citizen (kiosk/templates/kiosk/scan.html has a line for each)."""
    HOLD_STILL = "hold_still"
    MOVE_CLOSER = "move_closer"
    FLATTEN = "flatten"


class HintTracker:
    """What to tell a citizen whose code is in view but has stayed unreadable for a few frames:
    'move_closer' when the code is small in the picture; 'flatten' when its print is sharp, so it is the
    paper's creases or bend, or a reflection, that defeat the decoders (holding still would not help);
    'hold_still' otherwise (blur: a shaking hand, or too close to focus). Back to None after a read or
    once nothing is seen for a while."""

    SMALL_CODE = 0.18  # code width as a fraction of the frame width
    SHARP_EDGE = 0.4  # the default of [scanner] sharp_edge (motcua.config; a test keeps the two equal)
    SHOW_AFTER = 3  # consecutive unreadable frames
    CLEAR_AFTER = 8  # consecutive frames with nothing in view
    SHARP_OF = 5  # 'flatten' when most of the last this many unreadable frames were sharp

    def __init__(self, sharp_edge: float = SHARP_EDGE) -> None:
        self.sharp_edge = sharp_edge
        self.hint: Hint | None = None
        self._unreadable = 0
        self._sharp: deque[bool] = deque(maxlen=self.SHARP_OF)  # recent unreadable frames: sharp or not
        self._empty = 0

    def update(self, outcome: Outcome, read: bool) -> Hint | None:
        if read:
            self._unreadable = self._empty = 0
            self._sharp.clear()
            self.hint = None
        elif outcome.unreadable:
            self._unreadable += 1
            self._sharp.append(outcome.edge >= self.sharp_edge)
            self._empty = 0
            if self._unreadable >= self.SHOW_AFTER:
                if 0 < outcome.code_width < self.SMALL_CODE:
                    self.hint = Hint.MOVE_CLOSER
                elif 2 * sum(self._sharp) > len(self._sharp):  # one blurred frame among crumpled ones
                    self.hint = Hint.FLATTEN                    # does not flip the hint
                else:
                    self.hint = Hint.HOLD_STILL
        else:
            self._empty += 1
            if self._empty >= self.CLEAR_AFTER:
                self._unreadable = 0
                self._sharp.clear()
                self.hint = None
        return self.hint


class StillnessGate:
    """Skip decoding while the camera looks at the same empty scene; say when it has been idle a while.

    Nobody is at a kiosk most of the day, and decoding the empty desk at the camera's full rate was most
    of the appliance's idle CPU. Each frame is reduced to a 32x24 grey thumbnail (an area average: a
    camera's sensor noise falls well below one grey level). A frame is decoded when the last decode saw
    something (a code, read or not: someone is presenting a receipt), when any thumbnail cell differs
    from the last decoded frame's by more than `threshold` grey levels (something moved into view; a slow
    drift adds up against that reference and counts too), or `recheck_s` after the last decode (a
    recheck, by the first decoder only). A new
    scene is decoded `settle` times before frames are skipped, so the chain's fallback decoders (run on
    every `fallback_every`-th miss) get their turn at it. `idle` turns true after `idle_after_s` of
    nothing but skips: the capture may then slow down.
    """

    SIZE = (32, 24)

    def __init__(self, threshold: float = 6.0, recheck_s: float = 3.0, idle_after_s: float = 2.0,
                 settle: int = 3, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.recheck_s = recheck_s
        self.idle_after_s = idle_after_s
        self.settle = settle
        self._empty_decodes = 0  # consecutive empty decodes of the scene in `_ref`
        self._clock = clock
        self._ref: np.ndarray | None = None  # thumbnail of the last decoded frame, when it held nothing
        self._pending: np.ndarray | None = None  # thumbnail of the frame let through, until `decoded`
        self._last_decode = 0.0
        self._still_since: float | None = None
        self.rechecking = False  # the frame let through is only a recheck of an unchanged empty scene

    @property
    def idle(self) -> bool:
        return self._still_since is not None and self._clock() - self._still_since >= self.idle_after_s

    def should_decode(self, grey: np.ndarray) -> bool:
        import cv2

        thumb = cv2.resize(grey, self.SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        now = self._clock()
        changed = self._ref is None or int(np.abs(thumb - self._ref).max()) > self.threshold
        settling = self._empty_decodes < self.settle
        if changed or settling or now - self._last_decode >= self.recheck_s:
            self._pending = thumb
            self.rechecking = not (changed or settling)
            return True
        if self._still_since is None:
            self._still_since = now
        return False

    def decoded(self, outcome: Outcome) -> None:
        """Tell the gate what the decode of the frame it let through found."""
        self._last_decode = self._clock()
        empty = not outcome.texts and not outcome.unreadable
        same = (self._ref is not None and self._pending is not None
                and int(np.abs(self._pending - self._ref).max()) <= self.threshold)
        if not (empty and same):  # unless a recheck of the same empty scene: it stays still
            self._still_since = None
        self._empty_decodes = self._empty_decodes + 1 if empty and same else (1 if empty else 0)
        if not (empty and same):
            self._ref = self._pending if empty else None


class ScanPipeline:
    def __init__(self, chain: DecoderChain, interval_s: float, patterns: list[str] | None = None,
                 code_pattern: str | None = None, clock: Callable[[], float] = time.monotonic,
                 gate: StillnessGate | None = None, sharp_edge: float = HintTracker.SHARP_EDGE):
        self.chain = chain
        self.gate = gate or StillnessGate(clock=clock)
        self.repeats = RepeatFilter(interval_s, clock)
        self.hints = HintTracker(sharp_edge)
        self.patterns = patterns or []
        self.code_pattern = code_pattern or None
        self.rejected_logged = RepeatFilter(60.0, clock)  # one log line per odd payload per minute

    def parse(self, text: str) -> ParsedPayload:
        return parse_payload(text, self.patterns, code_pattern=self.code_pattern)

    def process(self, frame: np.ndarray) -> list[Event]:
        grey = to_grey(frame)
        if self.gate.should_decode(grey):
            # A recheck of a scene the whole chain has already seen empty: the first decoder suffices.
            outcome = self.chain.decode(grey, blind_fallbacks=not self.gate.rechecking)
            self.gate.decoded(outcome)
        else:
            outcome = Outcome()  # the same empty scene as the last decoded frame: nothing in view
        events: list[Event] = []
        read = False
        for text in outcome.texts:
            try:
                parsed = self.parse(text)
            except PayloadRejected as exc:
                if self.rejected_logged.allow(text):
                    # The payload may be a stranger's link: log its shape, never act on it.
                    log.info("rejected QR payload (%s): %r", exc.reason, text[:80])
                continue
            read = True
            if self.repeats.allow(parsed.code):
                extra = {"payload": text} if parsed.has_receipt_details else {}  # re-parsed by the server
                events.append(("scan", {**parsed.as_event(), **extra, "decoded_at": time.time(),
                                        "decoder": outcome.decoder}))
        before = self.hints.hint
        after = self.hints.update(outcome, read)
        if after != before:
            # A plain str: events are pickled to the supervisor, which must not import this module
            # (and NumPy with it) to read an enum member.
            events.append(("hint", {"hint": after.value if after else None}))
            if after:
                log.info("hint %s (unreadable code %.0f%% of the frame wide, edge steepness %.2f)",
                         after.value, 100 * outcome.code_width, outcome.edge)
        return events
