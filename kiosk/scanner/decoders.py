"""QR decoders on grey frames, and the chain the scanner runs.

Three decoders, each restricted to QR codes and fed a single-channel (grey) frame:
- ``zxing``: zxing-cpp, plain text mode (no `<SOH>`-style escaping), ``return_errors=True`` so a code
  that is in view but unreadable is reported (it drives the "hold still" hint);
- ``pyzbar``: zbar; large frames are retried at half size, where zbar reads noisy frames far better;
- ``opencv``: OpenCV's QRCodeDetector.
Two fallbacks built on zxing-cpp: ``zxing_retry`` (other binarizers, sharpening, 2x for tiny codes) and
``zxing_unwarp`` (the region round an unreadable code bowed back straight, for curved paper).

The chain runs the first decoder on every frame and the others only as fallbacks: on a frame where the
first saw an unreadable code, and on every Nth frame otherwise (``[scanner] fallback_every``), so the
idle scanner stays cheap. bench/bench_scanner.py measures each decoder and the chain; docs/scanner.md
has the table behind the default order. zbar can abort() the whole process on some inputs, which is why
the scanner decodes in a supervised child process (kiosk/scanner/service.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one decoder (or the chain) saw in one frame."""
    texts: list[str] = field(default_factory=list)
    unreadable: bool = False  # a code is in view but could not be read
    code_width: float = 0.0  # widest code seen, as a fraction of the frame width (0 if none)
    decoder: str = ""  # which decoder produced `texts`
    edge: float = 0.0  # how steep the edges of the widest unreadable code are (see `edge_steepness`)

    def merge_seen(self, other: "Outcome") -> None:
        self.unreadable = self.unreadable or other.unreadable
        self.code_width = max(self.code_width, other.code_width)
        self.edge = max(self.edge, other.edge)


class Decoder(Protocol):
    name: str

    def decode(self, grey: np.ndarray) -> Outcome: ...


def _width_fraction(xs: Sequence[float], frame_width: int) -> float:
    return (max(xs) - min(xs)) / frame_width if xs else 0.0


def _corners(p: Any) -> list[tuple[float, float]]:
    """A zxing-cpp position's four corners, clockwise from the top left."""
    return [(q.x, q.y) for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]


def edge_steepness(grey: np.ndarray, corners: Sequence[tuple[float, float]]) -> float:
    """How sharp the code inside `corners` is: the steepest 2 % of its grey gradients (per pixel, Sobel),
    over its grey range (5th to 95th percentile).

    About 0.45-0.5 for a sharp print, and about 1/n for edges smeared over n pixels. It tells the two
    kinds of reason a code in view stays unreadable apart: blurred (a shaking hand, out of focus:
    0.07-0.34 in the bench corpus), or sharp but bent out of shape or washed out (crumpled or curved
    paper 0.46-0.50, a phone screen 0.40-0.44, glare 0.64), which holding still does not mend. Tiny
    codes measure 0.40-0.44 too; the hint for them is "move closer", decided first. A camera's own
    softness lowers every figure (a crumpled code blurred by sigma 0.8 px measures 0.37), hence
    `[scanner] sharp_edge`. 0.0 when the region is too small to judge.
    """
    import cv2

    xs = [c[0] for c in corners]
    ys = [c[1] for c in corners]
    h, w = grey.shape[:2]
    x0, y0 = max(int(min(xs)), 0), max(int(min(ys)), 0)
    x1, y1 = min(int(max(xs)) + 1, w), min(int(max(ys)) + 1, h)
    if (x1 - x0) < 12 or (y1 - y0) < 12:
        return 0.0
    roi = grey[y0:y1, x0:x1]
    mag = cv2.magnitude(cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3)).ravel()
    k = int(mag.size * 0.98)
    steepest = np.partition(mag, k)[k] / 8  # a selection, not a sort: 0.1-0.9 ms for a 120-400 px code
    counts = np.bincount(roi.ravel(), minlength=256).cumsum()
    lo, hi = np.searchsorted(counts, 0.05 * counts[-1]), np.searchsorted(counts, 0.95 * counts[-1])
    return float(steepest / max(int(hi - lo), 1))


def _bytes_to_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # QR's default byte encoding; the payload parser rejects oddities


class ZxingDecoder:
    name = "zxing"

    def __init__(self) -> None:
        import zxingcpp

        self._z = zxingcpp
        self._formats = zxingcpp.BarcodeFormat.QRCode

    def decode(self, grey: np.ndarray) -> Outcome:
        z = self._z
        out = Outcome()
        results = z.read_barcodes(grey, formats=self._formats, try_rotate=True, try_downscale=True,
                                  try_invert=False, text_mode=z.TextMode.Plain, return_errors=True)
        width = grey.shape[1]
        widest_unreadable: tuple[float, list[tuple[float, float]]] | None = None
        for r in results:
            corners = _corners(r.position)
            frac = _width_fraction([x for x, _ in corners], width)
            out.code_width = max(out.code_width, frac)
            if r.valid:
                out.texts.append(r.text)
            else:
                out.unreadable = True
                if widest_unreadable is None or frac > widest_unreadable[0]:
                    widest_unreadable = (frac, corners)
        if out.texts:
            out.decoder = self.name
        elif widest_unreadable is not None:  # measured only when nothing was read (it feeds the hint)
            out.edge = edge_steepness(grey, widest_unreadable[1])
        return out

    def _valid_reads(self, grey: np.ndarray, binarizer: object = None) -> Outcome:
        """The codes zxing-cpp reads in `grey` (none of its errors), credited to this decoder."""
        z = self._z
        out = Outcome()
        for r in z.read_barcodes(grey, formats=self._formats, try_rotate=True, try_downscale=True, try_invert=False,
                                 text_mode=z.TextMode.Plain, binarizer=binarizer or z.Binarizer.LocalAverage,
                                 return_errors=False):
            if r.valid:
                out.texts.append(r.text)
                out.decoder = self.name
        return out


class ZxingRetryDecoder(ZxingDecoder):
    """zxing-cpp again, on what defeats its default binarizer: a fixed threshold (motion blur), then an
    unsharp-masked frame (defocus), then on small frames the same at twice the size (tiny codes).
    About 1.5 ms at 640x480 for the first two; measured in bench/bench_scanner.py."""

    name = "zxing_retry"

    UPSCALE_UP_TO = 800  # frame width up to which a last try runs on the frame at twice the size

    def decode(self, grey: np.ndarray) -> Outcome:
        import cv2

        out = self._valid_reads(grey, self._z.Binarizer.FixedThreshold)
        if out.texts:
            return out
        sharp = cv2.addWeighted(grey, 2.0, cv2.GaussianBlur(grey, (0, 0), 2.0), -1.0, 0)
        out = self._valid_reads(sharp)
        if out.texts or grey.shape[1] > self.UPSCALE_UP_TO:
            return out
        # A small, low-resolution code (under ~2 pixels a module: a receipt held far off, a photocopy)
        # has modules too thin for the binarizer; at twice the size, sharpened, half of them read
        # (bench/bench_scanner.py "tiny"). ~15 ms at 640x480, so it comes last.
        big = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        big = cv2.addWeighted(big, 2.0, cv2.GaussianBlur(big, (0, 0), 2.0), -1.0, 0)
        return self._valid_reads(big)


class ZxingUnwarpDecoder(ZxingDecoder):
    """zxing-cpp on paper bent round a hand: where zxing sees a code it cannot read, the region round it
    is bowed back straight, by a few guessed amounts along each axis, and read again. Costs one zxing read
    on a frame with no code in view; a few ms more round each unreadable code (bench/bench_scanner.py)."""

    name = "zxing_unwarp"
    MAX_CODES = 2  # unreadable codes tried per frame (a receipt holds one)
    GROW = 0.35  # margin added round the code's box, as a fraction of its side: the bent edges stick out
    # The bow's depth at the middle of the region, as a fraction of its side; both directions, both axes.
    BOWS = (-0.08, -0.05, -0.03, 0.03, 0.05, 0.08)

    def _regions(self, grey: np.ndarray) -> list[np.ndarray]:
        z = self._z
        boxes = []
        for r in z.read_barcodes(grey, formats=self._formats, try_rotate=True, try_downscale=True, try_invert=False,
                                 text_mode=z.TextMode.Plain, return_errors=True):
            if not r.valid:
                xs, ys = zip(*_corners(r.position), strict=True)
                boxes.append((min(xs), min(ys), max(xs), max(ys)))
        # zxing also reports pieces of a bent code (three finder patterns taken for a small code): the
        # largest box is the whole code, and a box whose centre lies inside a kept one is a piece of it.
        boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
        kept: list[tuple[int, int, int, int]] = []
        for x0, y0, x1, y1 in boxes:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            if any(k[0] <= cx <= k[2] and k[1] <= cy <= k[3] for k in kept):
                continue
            kept.append((x0, y0, x1, y1))
            if len(kept) == self.MAX_CODES:
                break
        regions = []
        for x0, y0, x1, y1 in kept:
            m = self.GROW * max(x1 - x0, y1 - y0)
            x0, y0 = max(0, int(x0 - m)), max(0, int(y0 - m))
            x1, y1 = min(grey.shape[1], int(x1 + m)), min(grey.shape[0], int(y1 + m))
            if x1 - x0 >= 21 and y1 - y0 >= 21:  # a version-1 code is 21 modules: anything smaller is noise
                regions.append(grey[y0:y1, x0:x1])
        return regions

    def decode(self, grey: np.ndarray) -> Outcome:
        import cv2

        out = Outcome()
        for region in self._regions(grey):
            h, w = region.shape
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            across_x = (xx / w - 0.5) * 2  # -1 .. 1 across the region
            across_y = (yy / h - 0.5) * 2
            for bow in self.BOWS:
                # Rows bowed up or down (the sheet bent round a vertical axis), then columns bowed sideways.
                for mx, my in ((xx, yy + bow * h * (1 - across_x * across_x)),
                               (xx + bow * w * (1 - across_y * across_y), yy)):
                    out = self._valid_reads(cv2.remap(region, mx, my, cv2.INTER_LINEAR))
                    if out.texts:
                        return out
        return out


class PyzbarDecoder:
    name = "pyzbar"
    HALVE_ABOVE = 800  # frame width above which a failed read is retried at half size

    def __init__(self) -> None:
        from pyzbar import pyzbar

        self._decode = pyzbar.decode
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def _once(self, grey: np.ndarray) -> Outcome:
        out = Outcome()
        for r in self._decode(grey, symbols=self._symbols):
            out.texts.append(_bytes_to_text(r.data))
            out.code_width = max(out.code_width, r.rect.width / grey.shape[1])
        return out

    def decode(self, grey: np.ndarray) -> Outcome:
        out = self._once(grey)
        if not out.texts and grey.shape[1] > self.HALVE_ABOVE:
            import cv2

            half = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
            out = self._once(half)
        if out.texts:
            out.decoder = self.name
        return out


class OpenCVDecoder:
    name = "opencv"

    def __init__(self) -> None:
        import cv2

        self._det = cv2.QRCodeDetector()

    def decode(self, grey: np.ndarray) -> Outcome:
        out = Outcome()
        try:
            text, points, _ = self._det.detectAndDecode(grey)
        except Exception as exc:  # OpenCV raises cv2.error on odd geometry; a miss, not a crash
            log.debug("opencv QR detector failed: %s", exc)
            return out
        if points is not None and len(points):
            out.code_width = _width_fraction([float(x) for x in points.reshape(-1, 2)[:, 0]], grey.shape[1])
            if text:
                out.texts.append(text)
                out.decoder = self.name
            else:
                out.unreadable = True
        return out


DECODERS = {"zxing": ZxingDecoder, "zxing_retry": ZxingRetryDecoder, "zxing_unwarp": ZxingUnwarpDecoder,
            "pyzbar": PyzbarDecoder, "opencv": OpenCVDecoder}


def make_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]()
    except KeyError:
        raise ValueError(f"unknown decoder {name!r}; known: {', '.join(DECODERS)}") from None


class DecoderChain:
    """Run the first decoder on every frame; the rest as fallbacks (see module docstring).

    A frame where the first decoder sees nothing at all gets the fallbacks only every `fallback_every`
    frames, and only while they stay within `fallback_cpu` of one core (their measured cost sets the
    spacing: on 1280x720 frames OpenCV and zbar cost ~80 ms together). A frame where the first decoder
    sees a code it cannot read always gets them.
    """

    name = "chain"

    def __init__(self, names: Sequence[str], fallback_every: int = 1, fallback_cpu: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if not names:
            raise ValueError("the decoder chain needs at least one decoder")
        self.decoders = [make_decoder(n) for n in names]
        self.fallback_every = max(1, fallback_every)
        self.fallback_cpu = fallback_cpu
        self._clock = clock
        self._misses = 0
        self._fallback_s = 0.0  # moving average of one blind fallback round
        self._next_blind = 0.0

    def _blind_fallback_due(self) -> bool:
        if self._misses % self.fallback_every:
            return False
        return not self.fallback_cpu or self._clock() >= self._next_blind

    def decode(self, grey: np.ndarray, blind_fallbacks: bool = True) -> Outcome:
        """Decode one frame; `blind_fallbacks=False` skips the fallbacks when the first decoder saw
        nothing (a recheck of a scene they have already been run on)."""
        first, *rest = self.decoders
        out = first.decode(grey)
        if out.texts or not rest:
            self._misses = 0
            return out
        blind = not out.unreadable
        if blind and not blind_fallbacks:
            return out
        self._misses += 1
        if blind and not self._blind_fallback_due():
            return out
        t0 = self._clock()
        result = out
        for dec in rest:
            more = dec.decode(grey)
            if more.texts:
                more.merge_seen(out)
                result = more
                break
            out.merge_seen(more)
        if blind and self.fallback_cpu:
            spent = self._clock() - t0
            self._fallback_s = spent if not self._fallback_s else 0.8 * self._fallback_s + 0.2 * spent
            self._next_blind = self._clock() + self._fallback_s / self.fallback_cpu - self._fallback_s
        return result


def to_grey(frame: np.ndarray) -> np.ndarray:
    """Decoders get one channel: pyzbar silently reads channel 0 (blue) of a colour array."""
    if frame.ndim == 2:
        return frame
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
