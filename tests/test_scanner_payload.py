"""Payload parsing: the forms seen on receipts and scanners, and everything else rejected."""
from __future__ import annotations

import pytest

from kiosk.demo import generate, receipt_payloads
from kiosk.scanner.payload import ParsedPayload, PayloadRejected, parse_payload, parse_with_config

CODE = "000.00.21.H42-251125-0001"


def test_every_demo_receipt_form_gives_code_and_secret() -> None:
    for rec in generate(5):
        forms = receipt_payloads(rec)
        assert parse_payload(forms["url"]) == ParsedPayload(rec["code"], rec["secret"], "url")
        assert parse_payload(forms["dsecret"]) == ParsedPayload(rec["code"], rec["secret"], "dsecret")
        assert parse_payload(forms["bare"]) == ParsedPayload(rec["code"], None, "bare")


@pytest.mark.parametrize("text, secret", [
    (f"https://dvc.ninhbinh.gov.vn/tra-cuu-ho-so?ma={CODE}&secretKey=AB12CD", "AB12CD"),
    (f"https://dvc.example.vn/web/cong-dich-vu-cong/tra-cuu-ho-so?QRSCAN={CODE}-AB12CD", "AB12CD"),
    (f"https://dvc.example.vn/tra-cuu-ho-so/{CODE}?secretKey=XY34", "XY34"),
    (f"https://dvc.example.vn/tra-cuu/{CODE}/XY34", "XY34"),
    (f"https://dvc.example.vn/#/tra-cuu?dossierNo={CODE}&secretKey=XY34", "XY34"),
    (f"HTTPS://DVC.EXAMPLE.VN/lookup?MA={CODE}", None),
])
def test_portal_url_forms(text: str, secret: str | None) -> None:
    assert parse_payload(text) == ParsedPayload(CODE, secret, "url")


def test_keyboard_wedge_enter_and_spaces_are_ignored() -> None:
    assert parse_payload(f"  {CODE}\r\n").code == CODE
    assert parse_payload(f"D-AB12CD-{CODE}\n").secret == "AB12CD"


@pytest.mark.parametrize("text", [
    "", "   ", "hello world", "0912345678", "WIFI:T:WPA;S:UBND-xa;P:matkhau;;", "BEGIN:VCARD\nFN:A\nEND:VCARD",
    "https://zalo.me/g/abcdef", "https://example.com/promo/2024-11", "javascript:alert(1)//000.00.21.H42-1",
    "https://dvc.example.vn/tra-cuu?secretKey=AB12CD", f"https://x.vn/?ma={CODE}<script>",
    f"https://x.vn/?ma={CODE}&secretKey=bad secret", "D-AB12CD-", f"D--{CODE}", "www.example.com/000.00.21.H42-1",
    CODE + "\x00", "A" * 600, f"ftp://x.vn/tra-cuu/{CODE}",
])
def test_anything_else_is_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(PayloadRejected) as err:
        parse_payload(text)
    assert err.value.reason


def test_province_patterns_are_tried_first(make_config) -> None:
    cfg = make_config(scanner={"patterns": [r"HS:(?P<code>\d{6,})\|K:(?P<secret>\w+)"]})
    assert parse_with_config("HS:12345678|K:ABCD", cfg.scanner) == ParsedPayload("12345678", "ABCD", "custom")
    assert parse_with_config(CODE, cfg.scanner).kind == "bare"


def test_code_pattern_narrows_bare_codes(make_config) -> None:
    cfg = make_config(scanner={"code_pattern": r"\d{3}\.\d{2}\.\d{2}\.H\d{2}-\d{6}-\d{4}"})
    assert parse_with_config(CODE, cfg.scanner).code == CODE
    with pytest.raises(PayloadRejected):
        parse_with_config("H42.22-240101-0001", cfg.scanner)


def test_bad_pattern_is_a_config_error(make_config) -> None:
    from motcua.config import ConfigError

    with pytest.raises(ConfigError, match="named group"):
        make_config(scanner={"patterns": [r"HS:(\d+)"]})
    with pytest.raises(ConfigError, match="invalid pattern"):
        make_config(scanner={"patterns": [r"HS:(?P<code>\d+"]})
