"""The staff health page's sentences, through the staff catalogue (Vietnamese, English on request).

kiosk/health.py words each check in English for `kiosk doctor` and the JSON; this page says the same
from the check's numbers instead. A device's or a driver's own message (a gammu error, an exception)
cannot be translated: it is shown apart, labelled as the device's words, and only where it adds
something the sentence does not say.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from kiosk import health


def _database(c: dict[str, Any]) -> tuple[str, bool]:
    d = c["data"]
    if c["state"] == health.OK:
        if d.get("quick_check"):
            return _("Trả lời bình thường; kiểm tra tệp (quick_check) đạt"), False
        return _("Trả lời bình thường"), False
    if d.get("quick_check") is False:
        return _("Tệp cơ sở dữ liệu bị hỏng (quick_check báo lỗi)"), True
    return _("Không truy vấn được cơ sở dữ liệu"), True


def _disk(c: dict[str, Any]) -> tuple[str, bool]:
    d = c["data"]
    if d.get("free_mb") is None:
        return _("Không đọc được dung lượng còn trống"), True
    if c["state"] == health.ERROR:
        return _("Sắp hết chỗ lưu trữ: cần dọn bớt ngay"), False
    if c["state"] == health.WARNING:
        return _("Chỗ lưu trữ còn ít"), False
    return _("Đủ chỗ lưu trữ"), False


def _last_ingest(c: dict[str, Any]) -> tuple[str, bool]:
    d = c["data"]
    if "age_hours" not in d:
        return _("Không đọc được lịch sử nhận dữ liệu"), True
    if d["age_hours"] is None:
        return _("Chưa nhận được dữ liệu hồ sơ nào"), False
    return _("Lần nhận xong gần nhất cách đây %(h)s giờ", h=d["age_hours"]), False


def _source(c: dict[str, Any]) -> tuple[str, bool]:
    d = c["data"]
    if not d.get("kind"):
        return _("Chưa cấu hình nguồn dữ liệu của tỉnh (mục [source], khóa kind)"), False
    if "errors_in_row" not in d:
        return _("%(kind)s: dịch vụ đồng bộ chưa chạy lần nào (kiosk sync)", kind=d["kind"]), False
    if d.get("lag_s") is None:
        return _("%(kind)s: lượt đồng bộ đầu tiên chưa xong", kind=d["kind"]), bool(d["errors_in_row"])
    if c["state"] == health.OK:
        return _("%(kind)s: đồng bộ kịp", kind=d["kind"]), bool(d["errors_in_row"])
    if c["state"] == health.ERROR:
        return _("%(kind)s: đồng bộ lỗi nhiều lần liên tiếp", kind=d["kind"]), True
    return _("%(kind)s: dữ liệu trên máy đã lâu chưa được xác nhận", kind=d["kind"]), False


def _camera(c: dict[str, Any]) -> tuple[str, bool]:
    status = c["data"].get("status")
    if status is None:
        return _("Không đọc được tình trạng bộ quét"), True
    if status == "ok":
        return _("Đang quét"), True
    if status == "starting":
        return _("Bộ quét đang khởi động"), True
    return _("Bộ quét không chạy hoặc không mở được camera"), True


def _printer(c: dict[str, Any]) -> tuple[str, bool]:
    from kiosk.printing.states import printer_message

    status = c["data"].get("status")
    if status is None:
        return _("Không đọc được tình trạng máy in"), True
    return printer_message(status), True


def _modem(c: dict[str, Any]) -> tuple[str, bool]:
    modems = c["data"].get("modems")
    if not modems:
        if "status" in c["data"]:
            return _("Bộ gửi tin SMS chưa chạy lần nào"), False
        return _("Không đọc được tình trạng modem"), True
    sending = sum(1 for m in modems if m["state"] != health.ERROR and not m.get("capped"))
    return _("%(n)s trên %(total)s modem đang gửi được", n=sending, total=len(modems)), True


def _outbox(c: dict[str, Any]) -> tuple[str, bool]:
    counts = c["data"].get("counts")
    if not counts:
        return _("Không đọc được hàng đợi tin nhắn"), True
    return _("%(n)s tin cần cán bộ xem", n=counts["failed"] + counts["uncertain"]), False


def _limits(c: dict[str, Any]) -> tuple[str, bool]:
    d = c["data"]
    if "ticket" not in d:
        return _("Không đọc được số lượt bị từ chối hôm nay"), True
    return _("Hôm nay: %(ticket)s lượt lấy số, %(lookup)s lượt tra cứu, %(slip)s lượt in phiếu vượt giới hạn của "
             "trạm; %(numbers)s lượt bị từ chối vì hết số, %(waiting)s lượt vì hàng chờ đầy",
             ticket=d["ticket"], lookup=d["lookup"], slip=d["slip"], numbers=d["numbers"], waiting=d["waiting"]), False


SENTENCES = {
    "database": _database, "disk": _disk, "last_ingest": _last_ingest, "source": _source, "camera": _camera,
    "printer": _printer, "modem": _modem, "outbox": _outbox, "limits": _limits,
}


def check_sentence(c: dict[str, Any]) -> dict[str, str]:
    """{"text": the sentence in the page's language, "device": the device's own words, or ""}."""
    fn = SENTENCES.get(c["name"])
    if fn is None:  # a check this page does not know yet
        return {"text": _("Không có mô tả"), "device": c["detail"]}
    try:
        text, with_device = fn(c)
    except (KeyError, TypeError):  # a check whose numbers are missing: say so, and show its own words
        text, with_device = _("Không đọc được kết quả kiểm tra"), True
    return {"text": text, "device": c["detail"] if with_device else ""}
