"""Synthetic camera frames of receipts for the scanner benchmark and tests.

Each frame: a cluttered desk-like background, a receipt sheet with text lines and a QR code (made with
segno) of one of the payload forms from `kiosk.demo.receipt_payloads`, placed by a homography (size,
rotation, tilt), then one camera fault (blur, noise, low light, JPEG, glare, occlusion, colour), or
one of the ways citizens really hold a receipt up (HELD_UP: shaking, crumpled, curved, tiny, phone).
Empty frames hold no code; "foreign" frames hold a QR code that is not a dossier reference.
Everything is seeded, so a run is repeatable.
"""
from __future__ import annotations

import io
import random
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import segno

from kiosk.demo import generate, receipt_payloads

CATEGORIES = ["clean", "small", "rotation", "perspective", "defocus", "motion", "noise", "lowlight", "jpeg",
              "glare", "occlusion", "colour", "shake", "crumpled", "curved", "tiny", "phone", "empty", "foreign"]
# What citizens really hold up (issue 16): a shaking hand (blur along a wandering path, not a line),
# crumpled and curved paper, small low-resolution codes (a far-away or photocopied receipt), and a
# phone screen showing a photo of the receipt (a bezel, the screen's pixel grid beating against the
# camera's into moire, a reflection across the glass).
HELD_UP = ["shake", "crumpled", "curved", "tiny", "phone"]
RESOLUTIONS = [(640, 480), (1280, 720)]
FOREIGN_PAYLOADS = [
    "https://zalo.me/g/ubndxayenhoa",
    "WIFI:T:WPA;S:UBND-Khach;P:motcua2025;;",
    "BEGIN:VCARD\nVERSION:3.0\nFN:Nguyen Van A\nTEL:+84912345678\nEND:VCARD",
    "https://www.facebook.com/ubnd.xa.yenhoa",
    "00020101021238570010A00000072701270006970436011300110123456780208QRIBFTTA53037045405100005802VN6304ABCD",
    "Cảm ơn quý khách!",
    "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html",
]


@dataclass
class Frame:
    category: str
    size: tuple[int, int]
    image: np.ndarray  # BGR
    payload: str | None  # the text encoded, if any
    expected_code: str | None  # the dossier code a correct read yields (None: empty or foreign)
    blur_modules: float = 0.0  # shake: the tremor path's RMS spread along its main axis, in code modules


def _qr_image(payload: str, rng: random.Random) -> np.ndarray:
    qr = segno.make(payload, error=rng.choice("mq"), micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=1, border=4)
    arr = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    return arr


def _background(w: int, h: int, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    base = np.array([rng.randint(60, 170) for _ in range(3)], np.float32)
    gx = np.linspace(-30, 30, w, dtype=np.float32)[None, :, None]
    gy = np.linspace(-20, 20, h, dtype=np.float32)[:, None, None]
    img = base[None, None, :] + gx * rng.uniform(-1, 1) + gy * rng.uniform(-1, 1)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(rng.randint(3, 8)):  # clutter: papers, pens, a keyboard edge
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randint(20, w // 2), y0 + rng.randint(5, h // 3)
        colour = tuple(float(rng.randint(0, 255)) for _ in range(3))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1 if rng.random() < 0.7 else 2)
    for _ in range(rng.randint(2, 6)):
        cv2.putText(img, "".join(rng.choice("ABCDEFGH0123456789 ") for _ in range(12)),
                    (rng.randrange(w), rng.randrange(h)), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.4, 1.2),
                    (float(rng.randint(0, 80)),) * 3, 1)
    img += nrng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _receipt(qr: np.ndarray, code_px: int, rng: random.Random, paper=(245, 245, 240),
             ink=(20, 20, 20)) -> tuple[np.ndarray, tuple[int, int]]:
    """A receipt sheet with the QR at `code_px` pixels wide; returns the sheet and the QR's top-left."""
    qr_big = cv2.resize(qr, (code_px, code_px), interpolation=cv2.INTER_NEAREST)
    sw, sh = int(code_px * 1.9), int(code_px * 2.2)
    sheet = np.full((sh, sw, 3), paper, np.uint8)
    for i in range(7):  # text lines above the code
        y = int(sh * 0.05) + i * max(4, sh // 28)
        if y > sh * 0.35:
            break
        x1 = int(sw * rng.uniform(0.4, 0.92))
        cv2.line(sheet, (int(sw * 0.06), y), (x1, y), ink, max(1, code_px // 90))
    ox, oy = (sw - code_px) // 2, int(sh * 0.42)
    mask = qr_big < 128
    region = sheet[oy:oy + code_px, ox:ox + code_px]
    region[mask] = ink
    return sheet, (ox, oy)


def _place(frame: np.ndarray, sheet: np.ndarray, center: tuple[float, float], angle: float, tilt: float,
           rng: random.Random) -> None:
    sh, sw = sheet.shape[:2]
    src = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]])
    c = np.float32([sw / 2, sh / 2])
    pts = src - c
    # Perspective: shrink one edge (a receipt held at an angle to the camera).
    if tilt:
        k = 1 - tilt
        if rng.random() < 0.5:
            pts[[0, 1], 0] *= k  # top edge shorter
        else:
            pts[[1, 2], 1] *= k  # right edge shorter
    a = np.deg2rad(angle)
    rot = np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = pts @ rot.T + np.float32(center)
    H = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    h, w = frame.shape[:2]
    warped = cv2.warpPerspective(sheet, H, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((sh, sw), 255, np.uint8), H, (w, h), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    frame[:] = (warped * alpha + frame * (1 - alpha)).astype(np.uint8)


def _spread(kernel: np.ndarray) -> float:
    """RMS spread of a blur kernel along its main axis, in pixels."""
    ys, xs = np.nonzero(kernel)
    return float(np.sqrt(np.linalg.eigvalsh(np.cov(np.vstack([xs, ys]), aweights=kernel[ys, xs])).max()))


def _fault(img: np.ndarray, category: str, rng: random.Random, nrng: np.random.Generator,
           qr_box: tuple[float, float, float] | None, seen: dict | None = None) -> np.ndarray:
    h, w = img.shape[:2]
    s = w / 640
    if category == "defocus":
        k = rng.choice([3, 5, 5, 7]) * s
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=k / 2.5)
    elif category == "motion":
        n = int(rng.randint(5, 11) * s) | 1
        kernel = np.zeros((n, n), np.float32)
        kernel[n // 2, :] = 1.0 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (n, n))
        kernel /= kernel.sum()
        img = cv2.filter2D(img, -1, kernel)
    elif category == "noise":
        img = np.clip(img + nrng.normal(0, rng.uniform(18, 32), img.shape), 0, 255).astype(np.uint8)
    elif category == "lowlight":
        f = rng.uniform(0.12, 0.25)
        dark = img.astype(np.float32) * f + nrng.normal(0, rng.uniform(3, 6), img.shape)
        img = np.clip(dark, 0, 255).astype(np.uint8)
    elif category == "jpeg":
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(8, 20)])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    elif category == "glare" and qr_box:
        cx, cy, size = qr_box
        overlay = np.zeros((h, w), np.float32)
        gx = int(cx + rng.uniform(-0.4, 0.4) * size)
        gy = int(cy + rng.uniform(-0.4, 0.4) * size)
        cv2.ellipse(overlay, (gx, gy), (int(size * rng.uniform(0.15, 0.3)), int(size * rng.uniform(0.1, 0.2))),
                    rng.uniform(0, 180), 0, 360, 1.0, -1)
        overlay = cv2.GaussianBlur(overlay, (0, 0), sigmaX=size * 0.08)
        img = np.clip(img + overlay[:, :, None] * rng.uniform(150, 230), 0, 255).astype(np.uint8)
    elif category == "shake":
        n = int(rng.randint(9, 17) * s) | 1
        kernel = np.zeros((n, n), np.float32)
        x, y = n / 2, n / 2
        vx, vy = rng.uniform(-1, 1), rng.uniform(-1, 1)
        for _ in range(4 * n):  # a hand's tremor: a wandering path, slower at the turns
            vx += rng.gauss(0, 0.35)
            vy += rng.gauss(0, 0.35)
            norm = max(1.0, (vx * vx + vy * vy) ** 0.5)
            vx, vy = vx / norm, vy / norm
            x, y = min(max(x + vx * 0.5, 0), n - 1), min(max(y + vy * 0.5, 0), n - 1)
            kernel[int(y), int(x)] += 1.0
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
        if seen is not None:
            seen["blur_px"] = _spread(kernel)
    elif category == "phone" and qr_box:
        cx, cy, size = qr_box
        overlay = np.zeros((h, w), np.float32)  # a window's reflection: a soft band across the glass
        a = rng.uniform(0, np.pi)
        x0, y0 = int(cx + np.cos(a) * size), int(cy + np.sin(a) * size)
        x1, y1 = int(cx - np.cos(a) * size), int(cy - np.sin(a) * size)
        cv2.line(overlay, (x0, y0), (x1, y1), 1.0, max(2, int(size * rng.uniform(0.08, 0.16))))
        overlay = cv2.GaussianBlur(overlay, (0, 0), sigmaX=size * 0.05)
        img = np.clip(img + overlay[:, :, None] * rng.uniform(50, 100), 0, 255).astype(np.uint8)
    elif category == "occlusion" and qr_box:
        cx, cy, size = qr_box
        # A fingertip over one edge of the code (not a finder pattern corner: that is unreadable for all).
        edge = rng.choice(["top", "bottom", "left", "right"])
        r = int(size * rng.uniform(0.09, 0.14))
        q = size * 0.38  # the finger reaches a little way into the code
        off = {"top": (0, -q), "bottom": (0, q), "left": (-q, 0), "right": (q, 0)}[edge]
        centre = (int(cx + off[0]), int(cy + off[1]))
        cv2.circle(img, centre, r,
                   (int(rng.uniform(120, 170)), int(rng.uniform(140, 180)), int(rng.uniform(180, 220))), -1)
    return img


def _crumple(sheet: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """Creases and bumps: a smooth random displacement of the paper, shaded where it tilts."""
    sh, sw = sheet.shape[:2]
    amp = sw * rng.uniform(0.006, 0.014)
    field = []
    for _ in range(2):
        f = cv2.GaussianBlur(nrng.normal(0, 1, (sh, sw)).astype(np.float32), (0, 0), sigmaX=sw * 0.06)
        field.append(f / (np.abs(f).max() + 1e-6) * amp)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    out = cv2.remap(sheet, xx + field[0], yy + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gy, gx = np.gradient(field[0] + field[1])
    shade = 1.0 + np.clip((gx + gy) * rng.uniform(2, 4), -0.25, 0.15)
    return np.clip(out * shade[:, :, None], 0, 255).astype(np.uint8)


def _curve(sheet: np.ndarray, rng: random.Random) -> np.ndarray:
    """Paper bent round a hand: rows bow by a few percent of the height, darker towards the bend's edges."""
    sh, sw = sheet.shape[:2]
    bow = sh * rng.uniform(0.04, 0.09) * rng.choice([-1, 1])
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    t = (xx / sw - 0.5) * 2  # -1 .. 1 across the sheet
    src_y = yy - bow * (1 - t * t)
    src_x = 0.5 * sw + (xx - 0.5 * sw) * (1 + 0.06 * t * t)  # the edges turn away and narrow
    out = cv2.remap(sheet, src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    shade = 1.0 - 0.25 * (t * t)
    return np.clip(out * shade[:, :, None], 0, 255).astype(np.uint8)


def _phone_sheet(qr: np.ndarray, code_px: int, rng: random.Random) -> tuple[np.ndarray, tuple[int, int]]:
    """A phone showing the receipt's code: a black bezel round a bright screen with a visible pixel grid."""
    qr_big = cv2.resize(qr, (code_px, code_px), interpolation=cv2.INTER_NEAREST)
    sw, sh = int(code_px * 1.25), int(code_px * 2.1)
    screen = np.full((sh, sw, 3), (255, 250, 245), np.uint8)  # a slightly blue-white screen (BGR)
    ox, oy = (sw - code_px) // 2, int(sh * 0.3)
    screen[oy:oy + code_px, ox:ox + code_px][qr_big < 128] = (25, 20, 20)
    pitch = rng.choice([2, 3])  # the sub-pixel grid, near the camera's own pixel size: moire
    screen[:, ::pitch] = (screen[:, ::pitch] * rng.uniform(0.55, 0.75)).astype(np.uint8)
    screen[::pitch, :] = (screen[::pitch, :] * rng.uniform(0.7, 0.85)).astype(np.uint8)
    bezel = max(4, code_px // 10)
    phone = np.full((sh + 2 * bezel, sw + 2 * bezel, 3), (18, 18, 22), np.uint8)
    phone[bezel:bezel + sh, bezel:bezel + sw] = screen
    return phone, (ox + bezel, oy + bezel)


def make_frame(category: str, size: tuple[int, int], rng: random.Random, nrng: np.random.Generator,
               record: dict, jitter: random.Random | None = None) -> Frame:
    """One frame. With `jitter`, rng and nrng (seeded the same for every frame) fix the receipt, its
    paper and its place, and `jitter` draws what changes from one frame to the next while a hand holds
    it up: a slight move and turn, the fault (a new tremor path, a moving reflection) and sensor noise
    (see `held_up`)."""
    w, h = size
    s = w / 640
    img = _background(w, h, rng, nrng)
    payload: str | None = None
    expected: str | None = None
    qr_box = None
    if category != "empty":
        if category == "foreign":
            payload = rng.choice(FOREIGN_PAYLOADS)
        else:
            payload = rng.choice(list(receipt_payloads(record).values()))
            expected = record["code"]
        qr = _qr_image(payload, rng)
        modules = qr.shape[1]  # includes the quiet zone
        if category == "small":
            px_per_module = rng.uniform(2.0, 2.6)
        elif category == "tiny":
            px_per_module = rng.uniform(1.5, 2.0)
        elif category == "phone":
            px_per_module = rng.uniform(2.6, 4.5)
        else:
            px_per_module = rng.uniform(2.8, 6.0)
        code_px = min(int(modules * px_per_module * s), int(0.8 * h))
        paper, ink = (245, 245, 240), (20, 20, 20)
        if category == "colour":
            paper = (rng.randint(120, 255), rng.randint(180, 255), rng.randint(180, 255))  # tinted paper (BGR)
            ink = (rng.randint(60, 140), rng.randint(0, 60), rng.randint(0, 60))  # blue ink
        if category == "phone":
            sheet, (ox, oy) = _phone_sheet(qr, code_px, rng)
        else:
            sheet, (ox, oy) = _receipt(qr, code_px, rng, paper, ink)
        if category == "crumpled":
            sheet = _crumple(sheet, rng, nrng)
        elif category == "curved":
            sheet = _curve(sheet, rng)
        angle = rng.uniform(-8, 8)
        tilt = 0.0
        if category == "rotation":
            angle = rng.uniform(-180, 180)
        elif category == "perspective":
            tilt = rng.uniform(0.2, 0.4)
            angle = rng.uniform(-20, 20)
        sh, sw = sheet.shape[:2]
        # Choose where the code's centre lands (inside the frame), then place the sheet around it.
        margin = code_px * 0.6
        qcx = rng.uniform(margin, w - margin) if w > 2 * margin else w / 2
        qcy = rng.uniform(margin, h - margin) if h > 2 * margin else h / 2
        qx_rel, qy_rel = ox + code_px / 2 - sw / 2, oy + code_px / 2 - sh / 2
        a = np.deg2rad(angle)
        cx = qcx - (qx_rel * np.cos(a) - qy_rel * np.sin(a))
        cy = qcy - (qx_rel * np.sin(a) + qy_rel * np.cos(a))
        if jitter:  # the hand moves a little between frames
            cx, cy = cx + jitter.gauss(0, 1.5 * s), cy + jitter.gauss(0, 1.5 * s)
            angle += jitter.gauss(0, 0.5)
        _place(img, sheet, (cx, cy), angle, tilt, rng)
        qr_box = (qcx, qcy, code_px)
    if jitter:
        rng, nrng = jitter, np.random.default_rng(jitter.randrange(2**32))
    seen: dict = {}
    img = _fault(img, category, rng, nrng, qr_box, seen)
    if category == "tiny":  # a far-away code is also a little soft: the lens, then the sensor's resolution
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.6 * s)
    if category not in ("noise", "lowlight"):
        img = np.clip(img + nrng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)  # sensor noise
    blur = seen.get("blur_px", 0.0) / (code_px / modules) if payload else 0.0
    return Frame(category, size, img, payload, expected, blur)


def corpus(per_category: int = 30, seed: int = 4, categories: list[str] | None = None,
           resolutions: list[tuple[int, int]] | None = None) -> Iterator[Frame]:
    """Yield `per_category` frames for every (category, resolution)."""
    records = list(generate(200, seed=seed))
    for size in resolutions or RESOLUTIONS:
        for category in categories or CATEGORIES:
            rng = random.Random(f"{seed}-{category}-{size}")
            nrng = np.random.default_rng(rng.randrange(2**32))
            for i in range(per_category):
                yield make_frame(category, size, rng, nrng, records[(i * 7 + len(category)) % len(records)])


def held_up(receipts: int = 10, frames: int = 30, seed: int = 4, categories: list[str] | None = None,
            resolutions: list[tuple[int, int]] | None = None
            ) -> Iterator[tuple[str, tuple[int, int], str | None, Iterator[Frame]]]:
    """What the camera sees while a citizen holds a receipt up: up to `frames` consecutive frames of the
    same receipt (2 s at 15 fps by default), for `receipts` receipts per held-up category and resolution.
    Each frame draws its own tremor path, reflection, small move and noise; the receipt, its creases
    and its bend stay as they are. Yields (category, size, expected code, frames); the frames are made
    as they are taken, so a reader that stops at the first read does not pay for the rest."""
    records = list(generate(200, seed=seed))
    for size in resolutions or RESOLUTIONS:
        for category in categories or HELD_UP:
            for i in range(receipts):
                record = records[(i * 11 + len(category)) % len(records)]
                yield category, size, record["code"], _held_frames(category, size, record, frames,
                                                                   f"{seed}-held-{category}-{size}-{i}")


def _held_frames(category: str, size: tuple[int, int], record: dict, frames: int, key: str) -> Iterator[Frame]:
    jitter = random.Random(f"{key}-motion")
    for _ in range(frames):
        rng = random.Random(key)
        yield make_frame(category, size, rng, np.random.default_rng(rng.randrange(2**32)), record, jitter=jitter)


if __name__ == "__main__":  # write a few frames to look at: python bench/scanner_corpus.py OUTDIR
    import sys
    from pathlib import Path

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-sample")
    out.mkdir(parents=True, exist_ok=True)
    expected = []  # file name, then the dossier code a correct read yields (empty: none)
    for n, fr in enumerate(corpus(per_category=2)):
        name = f"{fr.size[0]}-{fr.category}-{n:03d}.png"
        cv2.imwrite(str(out / name), fr.image)
        expected.append(f"{name}\t{fr.expected_code or ''}\n")
    (out / "expected.tsv").write_text("".join(expected), encoding="utf-8")
    print(f"wrote samples and expected.tsv to {out}")
