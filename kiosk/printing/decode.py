"""Read ESC/POS bytes back: the raster images, feeds, cuts and status queries they contain.

Used by the tests (what would the paper show?), by the printer emulator, and by
`kiosk print show FILE` to turn a file printer's output into PNG pages. It understands the
commands this appliance sends, plus a few common ones; anything else is an error, so a stray
byte in our output cannot go unnoticed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from PIL import Image

LINE_DOTS = 30  # default line spacing (1/6 inch at 180 dpi) for LF / ESC d


class DecodeError(ValueError):
    pass


@dataclass
class Command:
    name: str  # init | raster | feed_dots | feed_lines | cut | status_query | align | line_spacing | lf
    arg: int = 0
    image: Image.Image | None = None
    offset: int = 0


def next_command(buf: bytes, pos: int) -> tuple[Command, int] | None:
    """The command starting at `pos` and the position after it; None if `buf` ends inside it."""
    def need(n: int) -> bool:
        return pos + n <= len(buf)

    b = buf[pos]
    if b == 0x0A:
        return Command("lf", offset=pos), pos + 1
    if b == 0x10:  # DLE EOT n: real-time status request
        if not need(3):
            return None
        if buf[pos + 1] != 0x04:
            raise DecodeError(f"unknown DLE command at offset {pos}")
        return Command("status_query", buf[pos + 2], offset=pos), pos + 3
    if b == 0x1B:
        if not need(2):
            return None
        c = buf[pos + 1]
        if c == 0x40:
            return Command("init", offset=pos), pos + 2
        if c == 0x32:
            return Command("line_spacing", LINE_DOTS, offset=pos), pos + 2
        if c in (0x4A, 0x64, 0x61, 0x33):
            if not need(3):
                return None
            name = {0x4A: "feed_dots", 0x64: "feed_lines", 0x61: "align", 0x33: "line_spacing"}[c]
            return Command(name, buf[pos + 2], offset=pos), pos + 3
        raise DecodeError(f"unknown ESC command 0x{c:02x} at offset {pos}")
    if b == 0x1D:
        if not need(2):
            return None
        c = buf[pos + 1]
        if c == 0x56:  # GS V m [n]: cut
            if not need(3):
                return None
            m = buf[pos + 2]
            if m in (0, 1, 48, 49):
                return Command("cut", m, offset=pos), pos + 3
            if m in (65, 66):
                if not need(4):
                    return None
                return Command("cut", m, offset=pos), pos + 4
            raise DecodeError(f"unknown cut mode {m} at offset {pos}")
        if c == 0x76:  # GS v 0 m xL xH yL yH d1...dk: raster bit image
            if not need(8):
                return None
            if buf[pos + 2] != 0x30:
                raise DecodeError(f"unknown GS v command at offset {pos}")
            width_bytes = buf[pos + 4] | buf[pos + 5] << 8
            height = buf[pos + 6] | buf[pos + 7] << 8
            size = width_bytes * height
            if not need(8 + size):
                return None
            data = buf[pos + 8:pos + 8 + size]
            # Raster bits: 1 = black dot. Pillow's "1" mode: 1 = white, so invert.
            img = Image.frombytes("1", (width_bytes * 8, height), bytes(x ^ 0xFF for x in data))
            return Command("raster", buf[pos + 3], image=img, offset=pos), pos + 8 + size
        raise DecodeError(f"unknown GS command 0x{c:02x} at offset {pos}")
    raise DecodeError(f"unexpected byte 0x{b:02x} at offset {pos} (text is never sent: everything is an image)")


def commands(buf: bytes) -> Iterator[Command]:
    pos = 0
    while pos < len(buf):
        found = next_command(buf, pos)
        if found is None:
            raise DecodeError(f"data ends inside a command at offset {pos}")
        cmd, pos = found
        yield cmd


@dataclass
class Page:
    """What one job (up to a cut) puts on paper."""

    image: Image.Image
    cut: bool
    raster_width: int
    commands: list[str] = field(default_factory=list)


def pages(buf: bytes, paper_dots: int | None = None) -> list[Page]:
    """Split a byte stream at cuts and draw each part as the paper would show it."""
    out: list[Page] = []
    parts: list[tuple[str, object]] = []
    names: list[str] = []
    spacing = LINE_DOTS

    def flush(cut: bool) -> None:
        nonlocal parts, names
        if not parts and not cut:
            return
        widths = [p.width for kind, p in parts if kind == "img"]  # type: ignore[union-attr]
        raster_width = max(widths, default=0)
        width = max(raster_width, paper_dots or 0, 1)
        height = sum(p.height if kind == "img" else p for kind, p in parts)  # type: ignore[union-attr,misc]
        page = Image.new("1", (width, max(1, height)), 1)
        y = 0
        for kind, p in parts:
            if kind == "img":
                page.paste(p, (0, y))  # type: ignore[arg-type]
                y += p.height  # type: ignore[union-attr]
            else:
                y += p  # type: ignore[operator]
        out.append(Page(page, cut, raster_width, names))
        parts, names = [], []

    for cmd in commands(buf):
        names.append(cmd.name)
        if cmd.name == "raster":
            parts.append(("img", cmd.image))
        elif cmd.name == "feed_dots":
            parts.append(("feed", cmd.arg))
        elif cmd.name == "feed_lines":
            parts.append(("feed", cmd.arg * spacing))
        elif cmd.name == "lf":
            parts.append(("feed", spacing))
        elif cmd.name == "line_spacing":
            spacing = cmd.arg
        elif cmd.name == "cut":
            flush(True)
    flush(False)
    return out
