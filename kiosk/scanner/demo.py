"""The scanner in `kiosk demo`: no camera needed.

Builds a video from the demo's receipt images (data_dir/receipts, written by `kiosk demo`): each receipt
held up for two seconds, then two seconds of empty desk. The live pipeline runs on it in a loop, exactly
as `kiosk scan --video FILE --loop`, so the kiosk screen gets real scan events, but only while the scan
screen is open (a receipt every few seconds would otherwise replace whatever screen is being shown).

    python -m kiosk.scanner.demo        # with MOTCUA_CONFIG pointing at the demo's config
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

SHOW_S = 2.0
GAP_S = 2.0


def _desk(w: int, h: int) -> Any:
    import cv2
    import numpy as np

    img = np.full((h, w, 3), (96, 112, 128), np.uint8)
    cv2.rectangle(img, (20, 30), (w // 4, h // 5), (60, 150, 200), -1)
    return img


def build_video(receipts: list[Path], out: Path, size: tuple[int, int] = (640, 480), fps: int = 15) -> Path:
    # OpenCV only here: the scanner's supervisor runs this module as __main__ and must stay small.
    import cv2
    import numpy as np

    w, h = size
    desk = _desk(w, h)
    vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    rng = np.random.default_rng(3)
    for path in receipts:
        sheet = cv2.imread(str(path))
        if sheet is None:
            continue
        # The QR part of the receipt, as a citizen would hold it under the camera.
        sh, sw = sheet.shape[:2]
        crop = sheet[int(sh * 0.33):, :]
        scale = min((h * 0.9) / crop.shape[0], (w * 0.7) / crop.shape[1])
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = desk.copy()
        y0, x0 = (h - crop.shape[0]) // 2, (w - crop.shape[1]) // 2
        frame[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        # A little sensor noise, so consecutive frames differ as a camera's do (4 variants: cheap to make).
        noisy = [np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8) for _ in range(4)]
        for i in range(int(SHOW_S * fps)):
            vw.write(noisy[i % 4])
        for _ in range(int(GAP_S * fps)):
            vw.write(desk)
    for _ in range(int(GAP_S * fps)):
        vw.write(desk)
    vw.release()
    return out


def main() -> int:
    from kiosk.scanner.service import run_scanner, station_database
    from kiosk.scanner.source import SourceSpec
    from motcua.cli import setup_logging
    from motcua.config import load_config

    setup_logging(False)
    cfg = load_config()
    data_dir = Path(cfg.paths.data_dir)
    video = data_dir / "scanner-demo.avi"
    if not video.exists():
        receipts = sorted((data_dir / "receipts").glob("*.png"))
        if not receipts:
            print(f"no receipt images in {data_dir / 'receipts'}: run `kiosk demo` first", file=sys.stderr)
            return 1
        # In a short-lived process: this one becomes the scanner's supervisor, which keeps OpenCV out
        # (and not through multiprocessing, whose resource tracker would stay behind).
        built = subprocess.run([sys.executable, "-m", "kiosk.scanner.demo", "--build", str(video),
                                str(cfg.scanner.fps), *map(str, receipts)])
        if built.returncode != 0 or not video.exists():
            print(f"could not build the demo video {video} (exit code {built.returncode})", file=sys.stderr)
            return 1
    sc = cfg.scanner

    def engine() -> Any:
        from motcua.db import make_engine

        return make_engine(cfg, migrate_now=False)  # `kiosk demo` migrated before it started us

    # It writes its station heartbeat as `kiosk scan` does, so the demo's hall list (and the memory
    # benchmark) see the scanner as it runs on a kiosk.
    return run_scanner(cfg, SourceSpec("video", str(video), sc.width, sc.height, sc.fps, loop=True,
                                       scans_only_when_watched=True), engine=station_database(cfg, engine))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build"]:  # python -m kiosk.scanner.demo --build OUT FPS RECEIPT...
        build_video([Path(p) for p in sys.argv[4:]], Path(sys.argv[2]), fps=int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
