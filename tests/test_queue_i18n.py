"""English for the queue area (domain `queue`): every Vietnamese msgid of kiosk/queue has a translation,
the compiled .mo matches the .po, a msgid shared with another domain does not conflict when Flask-Babel
merges them, and the counter page and hall display really show English once English is chosen."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from kiosk.staff.testing import csrf_token, sign_in

ROOT = Path(__file__).resolve().parent.parent
LC = ROOT / "kiosk/translations/en/LC_MESSAGES"
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "_t": None}


def _queue_msgids() -> set[str]:
    """What `pybabel extract` finds in the queue area's code and templates (same as the staff test)."""
    ids = set()
    for _file, _line, msg, _c, _ctx in extract_from_dir(ROOT / "kiosk/queue",
                                                        [("**.py", "python"), ("**.html", "jinja2")],
                                                        keywords=KEYWORDS):
        ids.add(msg if isinstance(msg, str) else msg[0])
    return ids


def _po(domain: str) -> dict[str, str]:
    with open(LC / f"{domain}.po", "rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id}


def test_english_catalogue_covers_every_queue_text_and_is_compiled():
    ids = _queue_msgids()
    assert {"Gọi số tiếp theo", "Màn hình gọi số", "Đang chờ", "Quầy"} <= ids  # the extraction found the templates
    po = _po("queue")
    untranslated = sorted(i for i in ids if not po.get(i, "").strip())
    assert not untranslated, f"untranslated (see docs/i18n.md): {untranslated}"
    assert all(po[i] != i for i in ids), "an English msgstr that is still the Vietnamese msgid"
    with open(LC / "queue.mo", "rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id}
    assert mo == po, "queue.mo is stale: run pybabel compile -D queue -l en -d kiosk/translations"


def test_msgids_shared_with_other_domains_translate_the_same(app):
    """Flask-Babel merges the domains into one catalogue (a later domain overwrites an earlier one),
    so a msgid in two catalogues must have one English text, and the app must serve queue's."""
    from flask_babel import force_locale, gettext

    queue = _po("queue")
    others = sorted(p.stem for p in LC.glob("*.po") if p.stem != "queue")
    assert "kiosk" in others
    conflicts = [(d, i, queue[i], s) for d in others for i, s in _po(d).items()
                 if i in queue and s and s != queue[i]]
    assert not conflicts, conflicts
    with app.test_request_context("/display"), force_locale("en"):
        assert {i: gettext(i) for i in queue} == queue


def test_hall_display_in_english_after_the_language_switch(client):
    html = client.get("/display").get_data(as_text=True)
    assert "<title>Màn hình gọi số</title>" in html and "Đang chờ" in html
    assert client.get("/lang/en").status_code == 303  # the kiosk's English button
    html = client.get("/display").get_data(as_text=True)
    assert "<title>Hall display</title>" in html
    assert "Waiting:" in html and "Turn on sound" in html and "Đang chờ" not in html
    client.get("/lang/vi")
    assert "<title>Màn hình gọi số</title>" in client.get("/display").get_data(as_text=True)


def test_counter_page_in_english_after_the_official_chooses_english(app):
    official = sign_in(app)
    html = official.get("/counter/1").get_data(as_text=True)
    assert "Gọi số tiếp theo" in html
    # Counter pages share the staff session, so the staff pages' language switch applies to them.
    resp = official.post("/staff/language", data={"lang": "en", "next": "/counter/1",
                                                  "csrf_token": csrf_token(official, "/counter/1")})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/counter/1")
    html = official.get("/counter/1").get_data(as_text=True)
    for english in ("Call next number", "Now serving", "Expected wait", "Change counter", "No number called yet."):
        assert english in html, english
    assert "Gọi số tiếp theo" not in html and "Đang phục vụ" not in html
    html = official.get("/counter/").get_data(as_text=True)
    assert "Choose your counter" in html and "Chọn quầy của bạn" not in html


def test_english_page_hides_the_second_english_line(client):
    client.get("/lang/en")
    html = client.get("/display").get_data(as_text=True)
    assert '<html lang="en">' in html
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+queue\.css)"', html).group(1)
    assert 'html[lang="en"] body [lang="en"] { display: none; }' in client.get(stylesheet).get_data(as_text=True)
    client.get("/lang/vi")
    assert '<html lang="vi">' in client.get("/display").get_data(as_text=True)


def test_counter_messages_come_from_the_catalogue_in_the_officials_language(app):
    official = sign_in(app)
    token = csrf_token(official, "/counter/1")
    html = official.post("/counter/1/next", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Không còn ai đang chờ." in html and "Nobody is waiting" not in html  # Vietnamese only, no " · en"
    html = official.post("/counter/1/recall", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Quầy chưa gọi số nào." in html
    official.post("/staff/language", data={"lang": "en", "next": "/counter/1", "csrf_token": token})
    html = official.post("/counter/1/next", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Nobody is waiting." in html and "Không còn ai" not in html
    html = official.post("/counter/1/recall", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "This counter has no called number." in html
