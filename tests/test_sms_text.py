"""Notice texts: NFC, the UCS-2 / ASCII-fold policy and the part count."""
from __future__ import annotations

import unicodedata

import pytest

from sms_gateway.text import GSM7, UCS2, count_parts, fold, prepare, render_notice, septets

LONG_PROCEDURE = "Đăng ký khai sinh có yếu tố nước ngoài kết hợp nhận cha, mẹ, con"


def test_fold_is_clean_ascii_never_half_stripped():
    assert fold("Hồ sơ đã có kết quả. ĐỒNG Ý, ỳ ỹ ự") == "Ho so da co ket qua. DONG Y, y y u"
    assert fold("“Trả” – kết quả…") == '"Tra" - ket qua...'
    assert fold("mã 😀") == "ma ?"


def test_nfd_input_is_normalised_before_counting():
    nfd = unicodedata.normalize("NFD", "Mời ông bà nhận kết quả hồ sơ tại Bộ phận Một cửa")
    r = prepare(nfd, "ucs2")
    assert r.text == unicodedata.normalize("NFC", nfd) and r.encoding == UCS2 and r.parts == 1


def test_part_counts_at_the_boundaries():
    assert count_parts("a" * 160, GSM7) == 1 and count_parts("a" * 161, GSM7) == 2
    assert count_parts("a" * 306, GSM7) == 2 and count_parts("a" * 307, GSM7) == 3
    assert count_parts("[" * 80, GSM7) == 1 and count_parts("[" * 81, GSM7) == 2  # extension chars cost 2
    assert count_parts("ơ" * 70, UCS2) == 1 and count_parts("ơ" * 71, UCS2) == 2 and count_parts("ơ" * 135, UCS2) == 3
    with pytest.raises(ValueError):
        count_parts("ơ", GSM7)


def test_128_char_notice_one_part_folded_two_in_ucs2():
    text = ("Hồ sơ H42-0001 đã có kết quả. Mời ông/bà đến Bộ phận Một cửa UBND xã nhận kết quả "
            "trong giờ hành chính. Trân trọng cảm ơn.")[:128]
    assert prepare(text, "ascii").parts == 1
    assert prepare(text, "ucs2").parts == 2


def test_default_result_ready_fits_one_part_when_folded(make_config):
    cfg = make_config(sms={"encoding": "ascii"})
    r = render_notice(cfg, "result_ready", {"code": "000.00.21.H42-251125-0001", "procedure": LONG_PROCEDURE})
    assert r.parts == 1 and r.encoding == GSM7
    assert "000.00.21.H42-251125-0001" in r.text and "Quay tra ket qua" in r.text
    assert "T2-T6 7:30-11:30, 13:30-17:00; T7 7:30-11:30" in r.text  # motcua.hours' short form, folded
    assert r.text.isascii()


def test_procedure_is_shortened_never_the_code(make_config):
    cfg = make_config(sms={"encoding": "ascii"}, site={"commune_name": "Xã A"})
    r = render_notice(cfg, "result_ready", {"code": "H42.0001", "procedure": LONG_PROCEDURE})
    assert r.parts == 1 and "H42.0001" in r.text and "(Dang ky khai sinh" in r.text and "...)" in r.text


def test_ucs2_keeps_full_vietnamese(make_config):
    cfg = make_config(sms={"encoding": "ucs2", "max_parts": 3})
    r = render_notice(cfg, "result_ready", {"code": "H1", "procedure": "Cấp bản sao trích lục hộ tịch"})
    assert r.encoding == UCS2 and "Hồ sơ H1 (Cấp bản sao trích lục hộ tịch) đã có kết quả" in r.text
    assert r.parts == count_parts(r.text, UCS2) == 3


def test_unknown_kind_and_bad_template_are_clear_errors(make_config):
    from motcua.config import ConfigError

    with pytest.raises(ValueError, match="no SMS template"):
        render_notice(make_config(), "holiday", {})
    with pytest.raises(ConfigError, match="placeholder"):
        make_config(sms={"templates": {"result_ready": "{nope}"}})


def test_ascii_fast_paths_agree_with_the_character_by_character_rules():
    """fold() and septets() skip their per-character work for plain ASCII; on every mix of ASCII
    (control characters, the backtick, GSM extension characters) and Vietnamese they must give what
    the per-character rules give."""
    import random
    import unicodedata

    from sms_gateway import text as t

    def septets_slow(s):
        n = 0
        for ch in s:
            if ch in t._GSM_BASIC:
                n += 1
            elif ch in t._GSM_EXT:
                n += 2
            else:
                return None
        return n

    def fold_slow(s):
        return "".join(map(t._fold_char, unicodedata.normalize("NFD", s)))

    rng = random.Random(6)
    alphabet = [chr(i) for i in range(128)] + list("đĐàáảãạ€£“”…\u00a0")
    samples = ["", "`", "a`b", "x\ty", "{[~]}|^\\", "\f", "Ho so H42 da co ket qua.\n"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(20000)]
    for s in samples:
        assert septets(s) == septets_slow(s), repr(s)
        assert fold(s) == fold_slow(s), repr(s)


def test_every_status_that_notifies_has_a_template_in_the_screens_vocabulary():
    from motcua.config import DEFAULT_SMS_TEMPLATES
    from motcua.statuses import NOTIFY_STATUSES, STATUSES

    # The words the SMS shares with the status label the screen and the slip show (motcua/statuses.py).
    shared = {"result_ready": "kết quả", "more_documents": "bổ sung giấy tờ", "denied": "từ chối"}
    assert set(shared) == set(NOTIFY_STATUSES)
    for code, words in shared.items():
        assert words in STATUSES[code].label_vi.lower() and words in DEFAULT_SMS_TEMPLATES[code], code
