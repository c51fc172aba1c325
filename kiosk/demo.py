"""`kiosk demo`: realistic sample dossiers, receipt QR images, and the appliance on simulated hardware.

The sample data is generated from a seed, so a demo (and a benchmark) is the same every time.
The demo writes its own config into the demo folder: SQLite in that folder, the SMS gateway on
Gammu's dummy driver (messages land as files), the printer as a file of raw ESC/POS bytes, the office
open around the clock (a newcomer tries the demo at any hour) and `[site] demo = true`, so every kiosk
screen says it is a demo.
"""
from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import click

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh"]
MIDDLE_M = ["Văn", "Đức", "Quang", "Minh", "Hữu", "Thành", "Xuân", "Công"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Phương"]
GIVEN_M = ["Hùng", "Dũng", "Quyết", "Tuấn", "Thắng", "Phúc", "Khải", "Nghĩa", "Đạt", "Lộc", "Trường"]
GIVEN_F = ["Lan", "Hương", "Hằng", "Thủy", "Nhung", "Ngọc", "Yến", "Trang", "Huyền", "Hạnh", "Mai"]

PROCEDURES: list[tuple[str, str]] = [
    ("Hộ tịch", "Đăng ký khai sinh"),
    ("Hộ tịch", "Đăng ký kết hôn"),
    ("Hộ tịch", "Đăng ký khai tử"),
    ("Hộ tịch", "Cấp bản sao trích lục hộ tịch"),
    ("Hộ tịch", "Cấp Giấy xác nhận tình trạng hôn nhân"),
    ("Chứng thực", "Chứng thực bản sao từ bản chính giấy tờ, văn bản"),
    ("Chứng thực", "Chứng thực chữ ký trong giấy tờ, văn bản"),
    ("Đất đai", "Đăng ký biến động quyền sử dụng đất"),
    ("Đất đai", "Cấp đổi Giấy chứng nhận quyền sử dụng đất"),
    ("Bảo trợ xã hội", "Trợ cấp xã hội hàng tháng đối với người cao tuổi"),
    ("Người có công", "Giải quyết chế độ mai táng phí"),
    ("Lao động", "Xác nhận hộ gia đình làm nông nghiệp có mức sống trung bình"),
]
# Source (OpenCPS) status codes with realistic weights.
SOURCE_STATUSES = [("processing", 40), ("releasing", 15), ("done", 25), ("receiving", 8), ("waiting", 6),
                   ("correcting", 2), ("denied", 2), ("cancelled", 2)]
# Prefixes whose whole range the `phonenumbers` metadata accepts as mobile (089x and 099x are only
# partly allocated, so random numbers there are often invalid).
MOBILE_PREFIXES = ["086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039",
                   "090", "093", "070", "076", "077", "078", "079", "088", "091", "094", "083",
                   "084", "085", "081", "082", "092", "056", "058", "059"]
OLD_PREFIXES = ["0168", "0169", "0126", "0123", "0127"]  # pre-2018 11-digit numbers still on old records
PORTAL = "https://motcua.example.vn/tra-cuu-ho-so"


@dataclass
class DemoDossier:
    record: dict[str, Any]


def _name(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE_M)} {rng.choice(GIVEN_M)}"
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE_F)} {rng.choice(GIVEN_F)}"


def _phone(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.12:
        return rng.choice(OLD_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(7))
    number = rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(7))
    return number if rng.random() < 0.8 else "+84" + number[1:]


def generate(count: int, seed: int = 2025, today: date | None = None) -> Iterator[dict[str, Any]]:
    """Yield ingest records (the REST/CSV shape) for `count` sample dossiers."""
    rng = random.Random(seed)
    today = today or date.today()
    statuses, weights = zip(*SOURCE_STATUSES, strict=True)
    for n in range(1, count + 1):
        field, procedure = rng.choice(PROCEDURES)
        received = today - timedelta(days=rng.randint(0, 40))
        appointment = received + timedelta(days=rng.choice([1, 3, 5, 7, 10, 15, 20]))
        status = rng.choices(statuses, weights)[0]
        received_at = datetime(received.year, received.month, received.day, rng.randint(7, 16), rng.randint(0, 59),
                               tzinfo=timezone(timedelta(hours=7)))
        yield {
            "code": (f"000.00.21.H42-{received:%y%m%d}-{n:04d}" if count < 10_000
                     else f"000.00.21.H42-{received:%y%m%d}-{n:07d}"),
            "secret": "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6)),
            "procedure": procedure,
            "field": field,
            "applicant_name": _name(rng),
            "phone": _phone(rng),
            "status": status,
            "appointment_date": appointment.isoformat(),
            "received_at": received_at.isoformat(),
            "source_version": 1,
        }


def receipt_payloads(rec: dict[str, Any]) -> dict[str, str]:
    """The payload forms seen on receipts and scanners for one dossier (see DOMAIN.md)."""
    return {
        "url": f"{PORTAL}?ma={rec['code']}&secretKey={rec['secret']}",
        "dsecret": f"D-{rec['secret']}-{rec['code']}",
        "bare": rec["code"],
    }


def write_receipt_images(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Receipt-like images with a QR code, to hold up to the camera or feed to `kiosk scan --image`."""
    import segno
    from PIL import Image, ImageDraw, ImageFont

    out_dir.mkdir(parents=True, exist_ok=True)
    font_path = _font()
    paths = []
    for i, rec in enumerate(records):
        form = ("url", "dsecret", "bare")[i % 3]
        payload = receipt_payloads(rec)[form]
        qr = segno.make(payload, error="m", micro=False)
        img = Image.new("RGB", (640, 820), "white")
        buf = io.BytesIO()
        qr.save(buf, kind="png", scale=8, border=4)
        buf.seek(0)
        qr_img = Image.open(buf).convert("RGB")
        img.paste(qr_img, ((640 - qr_img.width) // 2, 300))
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(font_path, 22) if font_path else ImageFont.load_default()
        small = ImageFont.truetype(font_path, 18) if font_path else font
        lines = [
            "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
            f"Mã hồ sơ: {rec['code']}",
            f"Mã tra cứu: {rec['secret']}",
            f"Người nộp: {rec['applicant_name']}",
            f"Thủ tục: {rec['procedure'][:40]}",
            f"Ngày hẹn trả: {date.fromisoformat(rec['appointment_date']):%d/%m/%Y}",
        ]
        y = 30
        for j, line in enumerate(lines):
            draw.text((30, y), line, fill="black", font=font if j == 0 else small)
            y += 40
        path = out_dir / f"receipt-{i + 1:02d}-{form}.png"
        img.save(path)
        paths.append(path)
    return paths


def _font() -> str | None:
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                      "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"):
        if os.path.exists(candidate):
            return candidate
    return None


# The demo is tried at any hour: the office is open around the clock and the screens say it is a demo.
DEMO_SITE = """\
[site]
demo = true

[[site.opening_hours]]
days = [0, 1, 2, 3, 4, 5, 6]
open = 00:00:00
close = 00:00:00
"""

DEMO_CONFIG = """\
# Written by `kiosk demo`: everything on simulated hardware inside this folder.
[paths]
data_dir = "{data_dir}"

[ingest]
api_token = "demo-token"

[kiosk]
bind = "127.0.0.1:{port}"

[staff]
# The demo's browser is on the kiosk's own machine; a real hall keeps staff pages off the kiosk screen.
allow_kiosk_addresses = true

[printer]
kind = "file"
target = "{data_dir}/printer.out"

[modem]
# Gammu's dummy driver: sent messages appear as files under this folder.
model = "dummy"
connection = "none"
device = "{data_dir}/modem"
"""


def write_demo_config(data_dir: Path, port: int) -> Path:
    """Write the demo's config on the first run; later runs keep it (and its edits). A config from a
    version before the demo's [site] table gets that table appended, so an old demo folder opens around
    the clock too; a [site] table of the user's own is left as it is."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.toml"
    if not path.exists():
        path.write_text(DEMO_CONFIG.format(data_dir=data_dir.resolve(), port=port) + "\n" + DEMO_SITE,
                        encoding="utf-8")
    else:
        try:
            with path.open("rb") as fh:
                existing = tomllib.load(fh)
        except tomllib.TOMLDecodeError:
            return path  # load_config reports it, naming the file
        if "site" not in existing:
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n# Added by a newer `kiosk demo`: open around the clock, screens marked as a demo.\n"
                         + DEMO_SITE)
    return path


# Long-running parts of the demo: (name, argv after the interpreter). Parts that do not exist in
# this build (their module is missing) are skipped.
DEMO_PROCESSES: list[tuple[str, list[str]]] = [
    ("sms-gateway", ["-m", "sms_gateway.cli", "run"]),
    ("kiosk", ["-m", "kiosk.cli", "serve"]),
    ("print-worker", ["-m", "kiosk.cli", "print-worker"]),
    # The live scanner on a video of the demo's receipts (kiosk/scanner/demo.py): scans without a camera.
    ("scanner", ["-m", "kiosk.scanner.demo"]),
]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"),
              show_default=True, help="Folder for the demo's database, config and sample files.")
@click.option("--count", type=int, default=200, show_default=True, help="Sample dossiers to seed.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--seed-only", is_flag=True, help="Seed data and write the sample files, then exit.")
@click.pass_obj
def demo(obj, data_dir: Path, count: int, port: int, seed_only: bool) -> None:
    """Seed sample dossiers and run the appliance on simulated hardware."""
    from kiosk.store.ingest import Parser, ingest_batch
    from motcua.config import load_config
    from motcua.db import make_engine

    data_dir = data_dir.resolve()
    config_path = write_demo_config(data_dir, port)
    cfg = load_config(config_path)
    (data_dir / "modem").mkdir(exist_ok=True)
    for sub in ("inbox", "outbox", "sent", "error"):
        (data_dir / "modem" / sub).mkdir(exist_ok=True)
    engine = make_engine(cfg)
    records = list(generate(count))
    report = ingest_batch(engine, Parser.from_config(cfg), records, via="demo", source="kiosk demo")
    engine.dispose()
    shown = [r for r in records if r["status"] in ("processing", "releasing", "correcting")][:6]
    images = write_receipt_images(shown, data_dir / "receipts")
    click.echo(f"Seeded {count} dossiers into {cfg.database.url} "
               f"({report.created} new, {report.unchanged + report.updated} already there).")
    click.echo(f"Receipt QR images to scan: {data_dir / 'receipts'} ({len(images)} files)")
    for rec in shown[:3]:
        click.echo(f"  try code {rec['code']}  (lookup secret {rec['secret']})")
    from kiosk.staff.demo import seed_demo_account

    engine = make_engine(cfg)
    account = seed_demo_account(engine, cfg)
    engine.dispose()
    if account:
        click.echo(f"Staff pages: http://127.0.0.1:{port}/staff/  user {account[0]}, password {account[1]}")
    else:
        click.echo(f"Staff pages: http://127.0.0.1:{port}/staff/  (new password: kiosk --config {config_path} "
                   "user password admin)")
    if seed_only:
        return
    env = dict(os.environ, MOTCUA_CONFIG=str(config_path))
    # `kill` (or a service manager) stops the demo like Ctrl-C does: its processes stop with it.
    signal.signal(signal.SIGTERM, _interrupt)
    procs: list[tuple[str, subprocess.Popen]] = []
    for name, argv in DEMO_PROCESSES:
        procs.append((name, subprocess.Popen([sys.executable, *argv], env=env)))
    click.echo(f"\nKiosk: http://127.0.0.1:{port}/   (Ctrl-C stops the demo)")
    try:
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        for name, p in procs:
            if p.poll() is not None:
                click.echo(f"{name} exited with code {p.returncode}; stopping the demo", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
