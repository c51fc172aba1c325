"""Spoken announcements and the chime for the hall display, made on this machine.

Why espeak-ng on the server and not the browser's speechSynthesis: Chromium on Linux speaks only
through speech-dispatcher voices that are installed, usually none for Vietnamese, and its Google
voices need the internet. espeak-ng (Debian package, with a Vietnamese voice) renders a sentence
to WAV in a few milliseconds, offline, and the display plays it like any audio file.
"""
from __future__ import annotations

import functools
import io
import math
import shutil
import struct
import subprocess
import wave

DIGITS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]


class AnnouncementUnavailable(RuntimeError):
    """espeak-ng is missing or failed; the display then shows the call without speaking it."""


def spoken_label(label: str) -> str:
    """'A012' -> 'A, không một hai': digits one by one, as Vietnamese halls read numbers aloud
    (espeak-ng would read 'A012' as 'a không mười hai')."""
    letters = "".join(ch for ch in label if not ch.isdigit())
    digits = " ".join(DIGITS[int(ch)] for ch in label if ch.isdigit())
    return f"{letters}, {digits}" if letters else digits


def announcement_text(label: str, counter: str) -> str:
    return f"Xin mời số {spoken_label(label)}, đến quầy số {counter}."


@functools.lru_cache(maxsize=128)
def speak_wav(text: str, voice: str = "vi", speed: int = 140) -> bytes:
    """WAV bytes of `text` spoken by espeak-ng."""
    exe = shutil.which("espeak-ng")
    if not exe:
        raise AnnouncementUnavailable("espeak-ng is not installed")
    try:
        proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                              timeout=15, check=False)
    except subprocess.TimeoutExpired:
        raise AnnouncementUnavailable("espeak-ng did not finish") from None
    if proc.returncode != 0 or not proc.stdout.startswith(b"RIFF"):
        raise AnnouncementUnavailable(f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}")
    return _fix_wav_sizes(proc.stdout)


def _fix_wav_sizes(data: bytes) -> bytes:
    """espeak-ng writing to a pipe cannot seek back, so its RIFF/data sizes are placeholders;
    some players stop early on them. Rewrite both from the real length."""
    if len(data) < 44 or data[36:40] != b"data":
        return data
    fixed = bytearray(data)
    fixed[4:8] = struct.pack("<I", len(data) - 8)
    fixed[40:44] = struct.pack("<I", len(data) - 44)
    return bytes(fixed)


@functools.lru_cache(maxsize=1)
def chime_wav(rate: int = 22050) -> bytes:
    """A two-note 'ding-dong' (E5 then C5) with a soft decay, 1.1 s, made here: no sound file to ship."""
    frames = bytearray()
    total = int(rate * 1.1)
    samples = [0.0] * total
    for freq, start, length in ((659.25, 0.0, 0.6), (523.25, 0.45, 0.65)):
        s0 = int(start * rate)
        for i in range(int(length * rate)):
            if s0 + i >= total:
                break
            t = i / rate
            env = math.exp(-4.0 * t) * min(1.0, t * 200)  # quick attack, bell-like decay
            samples[s0 + i] += 0.45 * env * (math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t))
    for s in samples:
        frames += struct.pack("<h", int(max(-1.0, min(1.0, s)) * 32000))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()
