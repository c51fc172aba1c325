"""Real images and videos for the scanner tests: QR codes made with segno, frames and videos with OpenCV."""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import segno


def qr_grey(payload: str, scale: int = 4) -> np.ndarray:
    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)


def desk(size: tuple[int, int] = (640, 480), seed: int = 1) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), (90, 110, 130), np.uint8)
    cv2.rectangle(img, (30, 40), (200, 120), (40, 160, 200), -1)
    cv2.putText(img, "BAN TIEP DAN 0123", (250, 420), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


def receipt_frame(payload: str, size: tuple[int, int] = (640, 480), scale: int = 4, blur: float = 0.0,
                  seed: int = 1) -> np.ndarray:
    """A camera frame: a white sheet with the QR on a desk; optionally defocused."""
    img = desk(size, seed)
    qr = qr_grey(payload, scale)
    q = qr.shape[0]
    h, w = img.shape[:2]
    x0, y0 = (w - q) // 2, (h - q) // 2
    cv2.rectangle(img, (x0 - 30, y0 - 60), (x0 + q + 30, y0 + q + 30), (240, 242, 245), -1)
    img[y0:y0 + q, x0:x0 + q] = cv2.cvtColor(qr, cv2.COLOR_GRAY2BGR)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=blur)
    return img


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """A hand moving the receipt while the shutter is open."""
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return cv2.filter2D(img, -1, k / k.sum())


def write_video(path: Path, frames: list[tuple[np.ndarray, int]], fps: int = 15) -> Path:
    """Write (frame, repeat count) pairs as an MJPG AVI."""
    h, w = frames[0][0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for frame, count in frames:
        for _ in range(count):
            vw.write(frame)
    vw.release()
    return path


def abort_on_bomb(path: str, *args: object) -> dict:
    """Stands in for zbar's abort() on a bad input: the decoding process dies on files named bomb*."""
    import os

    from kiosk.scanner.images import decode_file

    if Path(path).name.startswith("bomb"):
        os.abort()
    return decode_file(path, *args)


def _receipt_sheet(payload: str, scale: int) -> tuple[np.ndarray, int]:
    """A white sheet with the QR 30 px from its left and 100 px from its top; and the QR's side."""
    qr = cv2.cvtColor(qr_grey(payload, scale), cv2.COLOR_GRAY2BGR)
    q = qr.shape[0]
    sheet = np.full((q + 140, q + 60, 3), (240, 242, 245), np.uint8)
    sheet[100:100 + q, 30:30 + q] = qr
    return sheet, q


def _on_desk(sheet: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    img = desk(size)
    (h, w), (sh, sw) = img.shape[:2], sheet.shape[:2]
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    img[y0:y0 + sh, x0:x0 + sw] = sheet
    return img


def bent_receipt_frame(payload: str, bow: float, scale: int = 4, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A receipt bent round a hand: the sheet's rows bow by `bow` of its height, its edges turn away."""
    sheet, _ = _receipt_sheet(payload, scale)
    sh, sw = sheet.shape[:2]
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    t = (xx / sw - 0.5) * 2
    bent = cv2.remap(sheet, 0.5 * sw + (xx - 0.5 * sw) * (1 + 0.06 * t * t), yy - bow * sh * (1 - t * t),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return _on_desk(bent, size)


def crumpled_receipt_frame(payload: str, amp: float, scale: int = 4, seed: int = 1,
                           size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A crumpled receipt: the sheet displaced by a smooth random field of `amp` modules at most, with
    bumps about a fifth of the code wide. The print stays sharp; its grid no longer lines up."""
    sheet, q = _receipt_sheet(payload, scale)
    sh, sw = sheet.shape[:2]
    rng = np.random.default_rng(seed)
    field = []
    for _ in range(2):
        f = cv2.GaussianBlur(rng.normal(0, 1, (sh, sw)).astype(np.float32), (0, 0), sigmaX=q * 0.06)
        field.append(f / (np.abs(f).max() + 1e-6) * amp * scale)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    sheet = cv2.remap(sheet, xx + field[0], yy + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _on_desk(sheet, size)
