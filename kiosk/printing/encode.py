"""Turn a rendered image into the ESC/POS bytes for one job, with python-escpos.

Blank stretches of the image are sent as paper feeds (ESC J n) instead of white raster rows:
a ticket is mostly white space, and the raster (GS v 0) costs width/8 bytes for every row.
"""
from __future__ import annotations

from typing import Iterator

from escpos.capabilities import get_profile
from escpos.printer import Dummy
from PIL import Image, ImageOps

# Generic python-escpos profiles whose media width matches the paper; image() then refuses an
# image wider than the paper instead of letting the printer wrap it into garbage.
DEFAULT_PROFILES = {384: "POS-5890", 576: "TM-T20II"}
MIN_FEED = 12  # shorter blank runs stay in the raster: a feed command per line gap costs more than it saves


def profile_for(paper_dots: int, name: str = "") -> str:
    """The python-escpos profile name to use; ValueError if it is unknown or narrower than the paper."""
    name = name or DEFAULT_PROFILES.get(paper_dots, "default")
    try:
        profile = get_profile(name)
    except KeyError:
        raise ValueError(f"unknown python-escpos printer profile {name!r}") from None
    try:
        pixels = int(profile.profile_data["media"]["width"]["pixels"])
    except (KeyError, TypeError, ValueError):
        return name
    if pixels < paper_dots:
        raise ValueError(f"printer profile {name!r} is {pixels} dots wide, less than paper_dots={paper_dots}")
    return name


def bands(image: Image.Image) -> Iterator[tuple[bool, int, int]]:
    """(blank, top, bottom) runs of rows; blank runs shorter than MIN_FEED are merged into content."""
    ink = ImageOps.invert(image.convert("L"))
    marks = [ink.crop((0, y, image.width, y + 1)).getbbox() is not None for y in range(image.height)]
    runs: list[list] = []
    for y, inked in enumerate(marks):
        if runs and runs[-1][0] == (not inked):
            runs[-1][2] = y + 1
        else:
            runs.append([not inked, y, y + 1])
    merged: list[list] = []
    for blank, top, bottom in runs:
        if blank and bottom - top < MIN_FEED and merged and top > 0:
            blank = False
        if merged and merged[-1][0] == blank:
            merged[-1][2] = bottom
        else:
            merged.append([blank, top, bottom])
    for blank, top, bottom in merged:
        yield blank, top, bottom


def encode_image(image: Image.Image, paper_dots: int, *, profile: str = "", cut: bool = True,
                 feed_lines: int = 3) -> bytes:
    """ESC/POS bytes that print `image` (at most `paper_dots` wide), then feed and cut."""
    if image.width > paper_dots:
        raise ValueError(f"image is {image.width} dots wide; the paper has {paper_dots}")
    printer = Dummy(profile=profile_for(paper_dots, profile))
    printer.hw("INIT")
    for blank, top, bottom in bands(image):
        if blank:
            remaining = bottom - top
            while remaining > 0:  # ESC J n: print the buffer and feed n dots (n <= 255)
                step = min(255, remaining)
                printer._raw(b"\x1bJ" + bytes((step,)))
                remaining -= step
        else:
            printer.image(image.crop((0, top, image.width, bottom)), impl="bitImageRaster")
    if cut:
        printer.print_and_feed(feed_lines)
        printer.cut(feed=False)
    elif feed_lines:
        printer.print_and_feed(feed_lines)
    return printer.output
