"""Tickets and slips go to python-escpos's Dummy and File printers; the bytes are read back into
images, the QR code is decoded from them, and every image fits the paper."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import zxingcpp
from escpos.printer import Dummy, File
from PIL import Image, ImageChops

from kiosk.printing import decode
from kiosk.printing.content import slip_content, ticket_content
from kiosk.printing.encode import bands, encode_image, profile_for
from kiosk.printing.render import Layout, render_ticket
from kiosk.printing.worker import job_bytes
from kiosk.queue.core import take_ticket
from kiosk.store.ingest import Parser, ingest_batch

# Slips say "overdue" and print dates from today's date.
pytestmark = pytest.mark.clock

CODE = "000.00.21.H42-251125-0042"


def _read_qr(img: Image.Image) -> list[str]:
    found = zxingcpp.read_barcodes(img.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in found]


def _seed(engine, config, status="result_ready", appointment=None):
    rec = {"code": CODE, "secret": "ABC234", "procedure": "Đăng ký khai sinh", "field": "Hộ tịch",
           "applicant_name": "Nguyễn Văn Hùng", "phone": "0912345678", "status": status,
           "appointment_date": (appointment or date.today() + timedelta(days=3)).isoformat(), "source_version": 1}
    ingest_batch(engine, Parser.from_config(config), [rec], via="test", source="test")


def _slip_bytes(engine, config, paper_dots: int = 576) -> bytes:
    from kiosk.printing.jobs import claim_next, submit_slip

    with engine.begin() as conn:
        submit_slip(conn, config, CODE)
        job = claim_next(conn)
    printer = config.printer.model_copy(update={"paper_dots": paper_dots})
    return job_bytes(config.model_copy(update={"printer": printer}), job)


@pytest.mark.parametrize("paper_dots", [384, 576])
def test_slip_bytes_on_dummy_printer_decode_to_a_readable_qr_that_fits_the_paper(engine, config, paper_dots):
    _seed(engine, config)
    data = _slip_bytes(engine, config, paper_dots)
    printer = Dummy()
    printer._raw(data)  # what the worker hands to any connection kind
    pages = decode.pages(printer.output)
    assert len(pages) == 1 and pages[0].cut
    page = pages[0]
    assert page.raster_width <= paper_dots
    assert page.image.width == paper_dots
    assert _read_qr(page.image) == [CODE]
    # the text says the status in Vietnamese (checked on the job content that was drawn)
    assert "raster" in page.commands and page.commands[0] == "init" and page.commands[-1] == "cut"


def test_ticket_printed_through_file_printer_reads_back_with_big_number(engine, config, tmp_path):
    with engine.begin() as conn:
        ticket = take_ticket(conn, config, "HT")
    image = render_ticket(ticket_content(config, ticket), 576)
    out = tmp_path / "lp0"
    printer = File(devfile=str(out))
    printer.open()
    printer._raw(encode_image(image, 576))
    printer.close()
    pages = decode.pages(out.read_bytes())
    assert len(pages) == 1
    back = pages[0].image
    # What comes off the paper is exactly what was drawn (feeds stand in for the blank rows).
    assert back.crop((0, 0, 576, image.height)).tobytes() == image.convert("1").tobytes()
    # The number is drawn very large: some inked run of rows is at least a fifth of the paper width tall.
    tallest = max(bottom - top for blank, top, bottom in bands(image) if not blank)
    assert tallest >= 576 // 5


def test_ticket_fits_58mm_paper_and_80mm_profile_refuses_wider_images():
    content = {"label": "C123", "commune": "UBND xã Yên Hòa", "department": "Bộ phận Tiếp nhận và Trả kết quả",
               "service_vi": "Lao động - Thương binh và Xã hội", "service_en": "Labour",
               "ahead_vi": "Trước ông/bà còn 12 người",
               "ahead_en": "12 ahead", "issued_vi": "Lấy số lúc 08:00 ngày 01/12/2025",
               "instruction_vi": "Vui lòng chờ gọi số trên màn hình và loa, rồi đến quầy được gọi.",
               "instruction_en": "Wait for your number."}
    img = render_ticket(content, 384)
    assert img.width == 384
    pages = decode.pages(encode_image(img, 384))
    assert pages[0].raster_width <= 384
    with pytest.raises(ValueError):
        encode_image(Image.new("1", (600, 10), 0), 576)
    with pytest.raises(ValueError):
        profile_for(576, "POS-5890")  # a 58 mm profile cannot take 80 mm images
    with pytest.raises(ValueError):
        profile_for(576, "no-such-printer")


def test_vietnamese_marks_are_drawn_not_dropped():
    lay1, lay2 = Layout(576), Layout(576)
    lay1.text("Hộ tịch - Đất đai", 30)
    lay2.text("Ho tich - Dat dai", 30)
    a, b = lay1.render(), lay2.render()
    assert ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is not None
    # each marked letter has its own glyph (a font without Vietnamese would draw the same .notdef box)
    glyphs = set()
    for ch in "ộịấầẩẫậđ":
        lay = Layout(576)
        lay.text(ch, 30)
        glyphs.add(lay.render().tobytes())
    assert len(glyphs) == 8


def test_long_dossier_code_wraps_inside_the_paper():
    from kiosk.printing.render import font, wrap

    f = font(24, bold=True)
    lines = wrap("000.00.21.H42-251125-00000000000000000000000000000042", f, 360)
    assert len(lines) > 1 and all(f.getlength(line) <= 360 for line in lines)


def test_slip_shows_overdue_and_next_steps_without_personal_data(engine, config):
    _seed(engine, config, status="processing", appointment=date.today() - timedelta(days=5))
    from kiosk.store.dossiers import find

    with engine.connect() as conn:
        row = find(conn, CODE)
    content = slip_content(config, row, now=datetime.now(timezone.utc))
    text = repr(content)
    assert "Quá hạn" in text and "Đang xử lý" in text
    assert "Nguyễn" not in text and "0912345678" not in text and "ABC234" not in text
    assert content["collect_place"] == config.site.collect_place
    assert content["hours"].startswith("Giờ làm việc: Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00")


def test_unknown_dossier_slip_is_a_lookup_error(engine, config):
    from kiosk.printing.jobs import submit_slip

    with engine.begin() as conn, pytest.raises(LookupError):
        submit_slip(conn, config, "NO-SUCH-CODE")


def test_decoder_refuses_text_and_truncated_commands():
    with pytest.raises(decode.DecodeError):
        list(decode.commands(b"\x1b@Hello"))
    with pytest.raises(decode.DecodeError):
        list(decode.commands(b"\x1dv0\x00\x48\x00\x10\x00\xff"))
