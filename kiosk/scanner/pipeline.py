"""One frame at a time: decode, parse, drop repeats, work out the hint for the screen.

`ScanPipeline.process(frame)` returns the events to publish for that frame; it has no threads and no
sockets, so tests drive it frame by frame. The decode child (service.py) runs it on the newest frame.
"""
from __future__ import annotations

import logging
import time
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


class HintTracker:
    """'hold_still' when a code is in view but unreadable for a few frames; 'move_closer' when that
    code is small in the picture; back to None after a read or once nothing is seen for a while."""

    SMALL_CODE = 0.18  # code width as a fraction of the frame width
    SHOW_AFTER = 3  # consecutive unreadable frames
    CLEAR_AFTER = 8  # consecutive frames with nothing in view

    def __init__(self) -> None:
        self.hint: str | None = None
        self._unreadable = 0
        self._empty = 0

    def update(self, outcome: Outcome, read: bool) -> str | None:
        if read:
            self._unreadable = self._empty = 0
            self.hint = None
        elif outcome.unreadable:
            self._unreadable += 1
            self._empty = 0
            if self._unreadable >= self.SHOW_AFTER:
                small = 0 < outcome.code_width < self.SMALL_CODE
                self.hint = "move_closer" if small else "hold_still"
        else:
            self._empty += 1
            if self._empty >= self.CLEAR_AFTER:
                self._unreadable = 0
                self.hint = None
        return self.hint


class ScanPipeline:
    def __init__(self, chain: DecoderChain, interval_s: float, patterns: list[str] | None = None,
                 code_pattern: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.chain = chain
        self.repeats = RepeatFilter(interval_s, clock)
        self.hints = HintTracker()
        self.patterns = patterns or []
        self.code_pattern = code_pattern or None
        self.rejected_logged = RepeatFilter(60.0, clock)  # one log line per odd payload per minute

    def parse(self, text: str) -> ParsedPayload:
        return parse_payload(text, self.patterns, code_pattern=self.code_pattern)

    def process(self, frame: np.ndarray) -> list[Event]:
        outcome = self.chain.decode(to_grey(frame))
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
            events.append(("hint", {"hint": after}))
        return events
