"""Draw tickets and status slips as black-and-white images with a Unicode font.

Printer code pages cannot print Vietnamese reliably (see DOMAIN.md), so everything is drawn with
Pillow and a Debian font (DejaVu, else Noto) and sent to the printer as a raster image. Sizes are
given for 576-dot (80 mm) paper and scaled for 384-dot (58 mm) paper.
"""
from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

import segno
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/noto")
REGULAR = ("DejaVuSans.ttf", "NotoSans-Regular.ttf")
BOLD = ("DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf")
CONDENSED_BOLD = ("DejaVuSansCondensed-Bold.ttf", "NotoSans-Bold.ttf")


class FontMissing(RuntimeError):
    """No Unicode font is installed (fonts-dejavu-core or fonts-noto-core)."""


def _find(names: tuple[str, ...]) -> str:
    for name in names:
        for d in FONT_DIRS:
            path = os.path.join(d, name)
            if os.path.exists(path):
                return path
    raise FontMissing(f"none of {', '.join(names)} found; install fonts-dejavu-core or fonts-noto-core")


MIN_TEXT_PX = 18  # smaller Vietnamese loses its marks at 203 dpi (measured: bench/bench_ocr.py)
STACKED_MARK_ROOM = 12  # percent of the font size kept above the ascent for a second stacked mark
INK_THRESHOLD = 160  # antialiased grey below this prints as a dot (a bit darker than half keeps thin marks)


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool = False, condensed: bool = False) -> ImageFont.FreeTypeFont:
    names = CONDENSED_BOLD if condensed else (BOLD if bold else REGULAR)
    return ImageFont.truetype(_find(names), size)


@dataclass
class _Block:
    image: Image.Image
    align: str = "center"


@dataclass
class Layout:
    """A column of text lines and images, drawn top to bottom on paper `width` dots wide."""

    width: int
    margin: int = 12
    blocks: list[_Block] = field(default_factory=list)
    # Every text line drawn, with True for English-only lines: the OCR test reads the Vietnamese ones back.
    lines: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return self.width / 576

    def px(self, size_at_576: float) -> int:
        return max(8, round(size_at_576 * self.scale))

    @property
    def inner(self) -> int:
        return self.width - 2 * self.margin

    def text(self, value: str, size: int, *, bold: bool = False, align: str = "center", gap: int = 4,
             en: bool = False) -> None:
        """Add text wrapped on word boundaries; `size` is the font size in pixels at 576 dots (never
        below MIN_TEXT_PX on 58 mm paper). `en`: an English-only line."""
        f = font(max(MIN_TEXT_PX, self.px(size)), bold)
        for line in wrap(value, f, self.inner):
            self._line(line, f, align, gap)
            self.lines.append((line, en))

    def _line(self, line: str, f: ImageFont.FreeTypeFont, align: str, gap: int) -> None:
        img = draw_line(line, f, self.px(gap))
        self.blocks.append(_Block(img, align))

    def fit_text(self, value: str, max_height: int, *, max_width: int | None = None) -> None:
        """One line as large as fits (the queue number)."""
        max_width = max_width or self.inner
        size = self.px(max_height)
        while size > 12:
            f = font(size, condensed=True)
            left, top, right, bottom = f.getbbox(value)
            if right - left <= max_width and bottom - top <= self.px(max_height):
                break
            size -= 4
        f = font(size, condensed=True)
        left, top, right, bottom = f.getbbox(value)
        img = Image.new("1", (right - left + 2, bottom - top + self.px(10)), 1)
        ImageDraw.Draw(img).text((-left, -top), value, font=f, fill=0)
        self.blocks.append(_Block(img))

    def gap(self, height: int) -> None:
        self.blocks.append(_Block(Image.new("1", (1, self.px(height)), 1)))

    def rule(self, thickness: int = 2) -> None:
        img = Image.new("1", (self.inner, self.px(22)), 1)  # room to either side: OCR (and eyes) keep the line apart
        y = img.height // 2
        ImageDraw.Draw(img).rectangle((0, y, self.inner - 1, y + max(1, thickness) - 1), fill=0)
        self.blocks.append(_Block(img))

    def image(self, img: Image.Image) -> None:
        if img.width > self.inner:
            raise ValueError(f"image {img.width} dots wide does not fit {self.inner}")
        self.blocks.append(_Block(img.convert("1")))

    def render(self) -> Image.Image:
        height = sum(b.image.height for b in self.blocks)
        out = Image.new("1", (self.width, max(1, height)), 1)
        y = 0
        for b in self.blocks:
            if b.align == "left":
                x = self.margin
            else:
                x = (self.width - b.image.width) // 2
            out.paste(b.image, (x, y))
            y += b.image.height
        return out


def draw_line(line: str, f: ImageFont.FreeTypeFont, gap: int) -> Image.Image:
    """One line of text as 1-bit dots. Vietnamese stacks two marks on a capital (Ồ, Ẫ): they rise above
    the font's ascent, so the line is as tall as its ink plus room for those marks (clipping them
    turned the grave on Ồ into a 3-dot dash). Drawn antialiased, then thresholded a little dark, so a
    thin tilde or hook survives at body size instead of breaking up ("Đã" read as "Đẫ")."""
    ascent, descent = f.getmetrics()
    left, top, right, bottom = f.getbbox(line) if line else (0, 0, 1, 1)
    lead = max(0, -top) + STACKED_MARK_ROOM * f.size // 100
    height = lead + max(ascent + descent, bottom) + 1 + gap
    grey = Image.new("L", (max(1, right - min(0, left)) + 2, height), 255)
    ImageDraw.Draw(grey).text((-min(0, left), lead), line, font=f, fill=0)
    return grey.point(lambda v: 0 if v < INK_THRESHOLD else 255, mode="1")


def wrap(value: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap by rendered width; a word longer than a line is broken by characters."""
    lines: list[str] = []
    for paragraph in (value or "").splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}".strip()
            if f.getlength(candidate) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            while f.getlength(word) > width:  # dossier codes have no spaces
                cut = len(word)
                while cut > 1 and f.getlength(word[:cut]) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


# --- the two documents -------------------------------------------------------------------------

def render_ticket(data: Mapping[str, Any], width: int) -> Image.Image:
    """A queue ticket from `kiosk.printing.content.ticket_content`."""
    return ticket_layout(data, width).render()


def ticket_layout(data: Mapping[str, Any], width: int) -> Layout:
    lay = Layout(width)
    lay.text(data["commune"].upper(), 24, bold=True, gap=2)
    lay.text(data["department"], 20, gap=2)
    lay.rule()
    if data.get("priority"):
        lay.text("ƯU TIÊN · PRIORITY", 26, bold=True, gap=2)
    lay.text(data["service_vi"], 27, bold=True, gap=2)
    if data.get("service_en"):
        lay.text(data["service_en"], 18, gap=2, en=True)
    lay.text("SỐ THỨ TỰ · YOUR NUMBER", 20, gap=0)
    lay.fit_text(data["label"], 150)
    if data.get("counters_vi"):
        lay.text(data["counters_vi"], 24, bold=True, gap=0)
        lay.text(data["counters_en"], 18, gap=4, en=True)
    lay.text(data["ahead_vi"], 22, bold=True, gap=2)
    if data.get("wait_vi"):
        lay.text(data["wait_vi"], 20, gap=2)
    lay.text(data["ahead_en"], 18, gap=4, en=True)
    lay.text(data["issued_vi"], 20, gap=2)
    lay.rule(1)
    lay.text(data["instruction_vi"], 20, gap=2)
    lay.text(data["instruction_en"], 18, gap=2, en=True)
    lay.gap(16)
    return lay


def qr_image(payload: str, max_width: int) -> Image.Image:
    """The QR code as a 1-bit image with whole-dot modules (4-6 dots each: reads well on thermal paper)."""
    qr = segno.make(payload, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(2, min(6, max_width // modules))
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return Image.open(buf).convert("1")


def render_slip(data: Mapping[str, Any], width: int) -> Image.Image:
    """A dossier status slip from `kiosk.printing.content.slip_content`."""
    return slip_layout(data, width).render()


def slip_layout(data: Mapping[str, Any], width: int) -> Layout:
    lay = Layout(width)
    lay.text(data["commune"].upper(), 24, bold=True, gap=2)
    lay.text(data["department"], 20, gap=2)
    lay.rule()
    lay.text("PHIẾU TRA CỨU HỒ SƠ", 28, bold=True, gap=0)
    lay.text("Dossier status slip", 18, gap=6, en=True)
    lay.text("Mã hồ sơ · Dossier code", 18, gap=0)
    lay.text(data["code"], 24, bold=True, gap=4)
    lay.image(qr_image(data["code"], min(lay.inner, lay.px(300))))
    lay.gap(6)
    for label_vi, label_en, value, bold in data["fields"]:
        lay.text(f"{label_vi} · {label_en}", 18, align="left", gap=0)
        lay.text(value, 22, bold=bold, align="left", gap=6)
    lay.rule(1)
    lay.text("Việc cần làm · Next steps", 20, bold=True, align="left", gap=2)
    lay.text(data["next_vi"], 22, align="left", gap=2)
    lay.text(data["next_en"], 18, align="left", gap=6, en=True)
    lay.text("Nơi nhận kết quả · Where to collect", 20, bold=True, align="left", gap=2)
    lay.text(data["collect_place"], 22, align="left", gap=2)
    if data.get("hours"):
        lay.text(data["hours"], 20, align="left", gap=2)
    lay.rule(1)
    lay.text(data["printed_vi"], 18, gap=2)
    lay.gap(16)
    return lay


def fmt_date(value: date | str | None) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return f"{value:%d/%m/%Y}"


def fmt_time(value: datetime) -> str:
    return f"{value:%H:%M} ngày {value:%d/%m/%Y}"
