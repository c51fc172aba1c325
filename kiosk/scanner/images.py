"""`kiosk scan --image`: decode still images, one JSON line per file, for tests and IT staff.

Decoding runs in a one-worker process pool: if zbar aborts on one image, that file is reported as an
error and the pool is restarted for the rest, so no file's result is lost.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger(__name__)

_chain = None


def decode_file(path: str, decoders: list[str], patterns: list[str], code_pattern: str) -> dict[str, Any]:
    """Decode one image file; the JSON-able result line."""
    import cv2

    from kiosk.scanner.decoders import DecoderChain, to_grey
    from kiosk.scanner.payload import PayloadRejected, parse_payload

    global _chain
    if _chain is None:
        cv2.setNumThreads(1)
        _chain = DecoderChain(decoders, fallback_every=1)  # a still image gets every decoder
    result: dict[str, Any] = {"file": path, "payload": None, "dossier_code": None, "secret": None}
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        result["error"] = "cannot read the file as an image"
        return result
    outcome = _chain.decode(to_grey(image))
    for text in outcome.texts:
        result["payload"] = result["payload"] or text
        try:
            parsed = parse_payload(text, patterns, code_pattern=code_pattern or None)
        except PayloadRejected as exc:
            result.setdefault("rejected", exc.reason)
            continue
        result.update(payload=text, dossier_code=parsed.code, secret=parsed.secret, kind=parsed.kind)
        result.pop("rejected", None)
        break
    if result["payload"] is None and outcome.unreadable:
        result["error"] = "a QR code is in the picture but could not be read"
    return result


def _pool() -> ProcessPoolExecutor:
    # spawn, not fork: a forked child of a process whose OpenCV threads are running can deadlock.
    return ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))


def scan_files(paths: Iterable[str], scanner_cfg: Any, decode: Any = None) -> Iterator[dict[str, Any]]:
    """Yield one result per path; `decode` (default `decode_file`) runs in the worker process."""
    decode = decode or decode_file
    args = (list(scanner_cfg.decoders), list(scanner_cfg.patterns), scanner_cfg.code_pattern)
    pool = _pool()
    try:
        for path in paths:
            if not Path(path).is_file():
                yield {"file": path, "payload": None, "dossier_code": None, "secret": None,
                       "error": "no such file"}
                continue
            try:
                yield pool.submit(decode, path, *args).result()
            except BrokenProcessPool:
                log.error("decoder crashed on %s; continuing with a fresh decoder process", path)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _pool()
                yield {"file": path, "payload": None, "dossier_code": None, "secret": None,
                       "error": "the decoder crashed on this image"}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
