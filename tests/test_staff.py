"""Staff pages in-process: the guard on every /staff/ and /counter/ route, CSRF, cookies, lockout,
escaping of hostile dossier data, status updates through ingest, notices, audit, accounts."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from kiosk.staff import audit, guard, users
from kiosk.staff.models import staff_audit, staff_lockouts, staff_users
from kiosk.staff.testing import LAN_ADDRESS, create_account, csrf_token, lan_client, sign_in
from kiosk.store.ingest import DossierEvent, apply_event
from kiosk.store.schema import dossier_history, dossiers
from motcua.timeutil import utcnow
from sms_gateway.schema import notices
from tests.conftest import CHEAP_HASHING

PASSWORD = "dung-mat-khau-2025"  # signed in at CHEAP_HASHING; the default cost is pinned in
# test_passwords_are_argon2id_with_the_default_cost_and_upgraded_at_sign_in


@pytest.fixture
def config(make_config):
    return make_config(staff=CHEAP_HASHING)
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "'><svg onload=alert(1)>",
]


def _dossier(engine, code="HS-001", status="processing", phone="0912345678", **extra):
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code=code, status=status, phone=phone, applicant_name="Nguyễn Văn Hùng",
                                       procedure="Đăng ký khai sinh", **extra), via="test")


def _notice_count(engine, code):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(notices)
                            .where(notices.c.dossier_code == code)).scalar_one()


def _staff_rules(app):
    for rule in app.url_map.iter_rules():
        if guard.is_staff_path(rule.rule):
            yield rule


def _build(rule):
    """A concrete URL for a rule, with placeholder values for its arguments."""
    path = rule.rule
    for name, conv in rule._converters.items():
        kind = type(conv).__name__
        value = "1" if kind in ("IntegerConverter", "FloatConverter") else "x"
        path = re.sub(r"<[^>]*\b" + name + ">", value, path)
    return path


# --- the guard ----------------------------------------------------------------------------------

def test_every_staff_and_counter_route_refuses_an_anonymous_client(app, engine):
    rules = list(_staff_rules(app))
    assert len(rules) >= 15  # the staff pages themselves are registered
    client = lan_client(app)
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(staff_audit)).scalar_one()
    checked = 0
    for rule in rules:
        if rule.endpoint == "staff.login":
            continue
        url = _build(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method)
            checked += 1
            if method == "GET":
                assert resp.status_code == 302, (method, url)
                assert resp.headers["Location"].startswith("/staff/login?next="), url
            else:
                assert resp.status_code == 401, (method, url, resp.status_code)
    assert checked >= len(rules) - 1
    with engine.connect() as conn:  # nothing happened on the way
        assert conn.execute(sa.select(sa.func.count()).select_from(staff_audit)).scalar_one() == before


def test_the_kiosk_screen_cannot_open_staff_pages_even_with_a_signed_in_cookie(app):
    staff = sign_in(app)
    assert staff.get("/staff/dossiers").status_code == 200
    kiosk = app.test_client()  # the kiosk screen's browser: 127.0.0.1, a [kiosk] kiosk_addresses entry
    kiosk.set_cookie("motcua_staff", staff.get_cookie("motcua_staff").value)
    for url in ("/staff/login", "/staff/dossiers", "/counter/", "/staff/health"):
        resp = kiosk.get(url)
        assert resp.status_code == 403, url
        assert "màn hình kiosk" in resp.get_data(as_text=True)
        assert "motcua_staff" not in resp.headers.get("Set-Cookie", "")


def test_kiosk_addresses_may_be_let_in_by_configuration(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={**CHEAP_HASHING, "allow_kiosk_addresses": True})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    assert app.test_client().get("/staff/login").status_code == 200


def test_staff_cookie_is_its_own_httponly_samesite_strict_cookie(app):
    client = lan_client(app)
    resp = client.get("/staff/login")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("motcua_staff=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie  # plain HTTP LAN
    assert "Expires" not in cookie  # ends with the browser; the server ends sessions itself
    https = client.get("/staff/login", base_url="https://staff.local")
    assert "Secure" in https.headers["Set-Cookie"]
    staff = sign_in(app)
    # The same signed value under the kiosk's session cookie name does not sign anyone in.
    other = lan_client(app)
    other.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), staff.get_cookie("motcua_staff").value)
    assert other.get("/staff/dossiers").status_code == 302


def test_cookie_secure_always(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={**CHEAP_HASHING, "cookie_secure": "always"})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    assert "Secure" in lan_client(app).get("/staff/login").headers["Set-Cookie"]


def test_staff_pages_carry_a_csp_without_inline_script_and_no_store(app):
    client = sign_in(app, role=users.ADMIN)
    for url in ("/staff/login", "/staff/dossiers", "/staff/notices", "/staff/health", "/staff/audit", "/staff/users"):
        resp = client.get(url)
        csp = resp.headers["Content-Security-Policy"]
        script = re.search(r"script-src ([^;]*)", csp) or re.search(r"default-src ([^;]*)", csp)
        assert "'unsafe-inline'" not in script.group(1) and "'self'" in script.group(1)
        assert resp.headers["Cache-Control"] == "no-store"
        body = resp.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), url  # every script is a file
        assert not [tag for tag in re.findall(r"<[^>]*>", body) if re.search(r"\son\w+\s*=", tag)], url  # no handlers
        assert not re.search(r"<[^>]*\sstyle\s*=", body), url  # no inline style either


def test_a_form_without_its_csrf_token_is_refused(app, engine):
    _dossier(engine)
    client = sign_in(app, role=users.ADMIN)
    posts = {
        "/staff/dossiers/status": {"code": "HS-001", "status": "result_ready"},
        "/staff/dossiers/phone": {"code": "HS-001", "phone": "0987654321"},
        "/staff/dossiers/slip": {"code": "HS-001"},
        "/staff/notices/1/retry": {},
        "/staff/print-jobs/1/reprint": {},
        "/staff/users": {"username": "moi", "password": "x" * 12, "role": "admin"},
        "/staff/users/1/disable": {},
        "/staff/logout": {},
        "/staff/language": {"lang": "en"},
        "/staff/account/password": {"current": "a", "new": "b", "repeat": "b"},
    }
    covered = {r.rule for r in _staff_rules(app) if "POST" in r.methods and r.endpoint.startswith("staff.")}
    assert ({re.sub(r"/\d+/\w+$", "", u) for u in posts}
            >= {re.sub(r"/<[^>]+>.*$", "", r) for r in covered} - {"/staff/login"})
    for url, data in posts.items():
        for token in (None, "forged.token.value"):
            resp = client.post(url, data=dict(data, **({"csrf_token": token} if token else {})))
            assert resp.status_code == 400, url
            assert "mã bảo vệ" in resp.get_data(as_text=True)
    with engine.connect() as conn:
        row = conn.execute(sa.select(dossiers).where(dossiers.c.code == "HS-001")).mappings().one()
        assert row["status"] == "processing" and row["phone"] == "0912345678"
        assert conn.execute(sa.select(sa.func.count()).select_from(staff_users)).scalar_one() == 1
    assert client.get("/staff/dossiers").status_code == 200  # still signed in: logout was refused too
    # The sign-in form itself needs its token.
    name, password = create_account(app)
    assert lan_client(app).post("/staff/login", data={"username": name, "password": password}).status_code == 400


def test_a_token_from_another_session_is_refused(app, engine):
    _dossier(engine)
    alice, bob = sign_in(app), sign_in(app)
    stolen = csrf_token(bob, "/staff/dossiers/view?code=HS-001")
    resp = alice.post("/staff/dossiers/status", data={"code": "HS-001", "status": "denied", "csrf_token": stolen})
    assert resp.status_code == 400


# --- sign-in, lockout, sessions -----------------------------------------------------------------

def _login(client, username, password):
    return client.post("/staff/login", data={"username": username, "password": password,
                                             "csrf_token": csrf_token(client)})


def test_lockout_after_repeated_wrong_passwords_holds_for_that_address_only(app, engine):
    create_account(app, "chi", password=PASSWORD)
    client = lan_client(app)
    for _ in range(4):
        resp = _login(client, "chi", "wrong-password")
        assert resp.status_code == 401
        assert "Sai tên đăng nhập hoặc mật khẩu" in resp.get_data(as_text=True)
    resp = _login(client, "chi", "wrong-password")  # the fifth: locked
    assert resp.status_code == 429 and "tạm khóa" in resp.get_data(as_text=True)
    assert _login(client, "chi", PASSWORD).status_code == 429  # the right password, from there: still locked
    # Unknown names lock the same way, so the message does not reveal which accounts exist.
    other = lan_client(app, "192.168.1.34")
    codes = [_login(other, "khong-co", "x" * 12).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    # A guesser locks only its own address: the official's PC still signs in.
    assert _login(lan_client(app, "192.168.1.35"), "chi", PASSWORD).status_code == 302
    with engine.begin() as conn:  # the lock runs out
        conn.execute(staff_lockouts.update().values(locked_until=utcnow() - timedelta(seconds=1)))
    assert _login(client, "chi", PASSWORD).status_code == 302
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(staff_audit.c.action).order_by(staff_audit.c.id))]
    assert actions.count(audit.LOGIN_FAILED) == 8 and actions.count(audit.LOGIN_LOCKED) == 3
    assert actions[-1] == audit.LOGIN


def test_one_address_guessing_many_names_is_refused(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={**CHEAP_HASHING, "address_failures": 3, "login_rate": "100 per minute"})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    name, password = create_account(app)
    client = lan_client(app, "10.0.0.9")
    assert [_login(client, f"ten{i}", "sai-mat-khau").status_code for i in range(3)] == [401, 401, 401]
    assert _login(client, name, password).status_code == 429  # even the right password, from there
    assert _login(lan_client(app, "10.0.0.10"), name, password).status_code == 302


def test_login_rate_limit_per_address(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={**CHEAP_HASHING, "login_rate": "3 per minute"})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    client = lan_client(app)
    codes = [_login(client, "ai-do", "sai-mat-khau").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_sign_in_ignores_a_next_that_leaves_the_staff_pages(app):
    name, password = create_account(app)
    for target, expected in [("https://evil.example/", "/staff/dossiers"), ("//evil.example/x", "/staff/dossiers"),
                             ("/api/v1/dossiers", "/staff/dossiers"), ("/staff/notices?state=failed",
                                                                        "/staff/notices?state=failed")]:
        client = lan_client(app)
        resp = client.post("/staff/login", data={"username": name, "password": password, "next": target,
                                                 "csrf_token": csrf_token(client)})
        assert resp.headers["Location"] == expected


def test_idle_session_ends_and_sign_out_invalidates_the_cookie(app, monkeypatch):
    import time as real_time

    client = sign_in(app)
    assert client.get("/staff/dossiers").status_code == 200
    now = real_time.time()
    monkeypatch.setattr(guard.time, "time", lambda: now + 31 * 60)
    resp = client.get("/staff/dossiers")
    assert resp.status_code == 302 and "/staff/login" in resp.headers["Location"]
    monkeypatch.undo()
    client = sign_in(app)
    kept = client.get_cookie("motcua_staff").value
    client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/dossiers")})
    replay = lan_client(app)
    replay.set_cookie("motcua_staff", kept)
    assert replay.get("/staff/dossiers").status_code == 302


def test_a_disabled_account_is_signed_out_at_once(app, engine):
    admin = sign_in(app, role=users.ADMIN)
    official = sign_in(app)
    with engine.connect() as conn:
        uid = users.get_by_name(conn, official.staff_username)["id"]
    token = csrf_token(admin, "/staff/users")
    assert admin.post(f"/staff/users/{uid}/disable", data={"csrf_token": token}).status_code == 302
    assert official.get("/staff/dossiers").status_code == 302


def test_officials_cannot_open_admin_pages(app):
    client = sign_in(app)
    for url in ("/staff/audit", "/staff/users"):
        assert client.get(url).status_code == 403
    assert client.post("/staff/users/1/disable",
                       data={"csrf_token": csrf_token(client, "/staff/dossiers")}).status_code == 403


# --- dossiers -----------------------------------------------------------------------------------

def test_search_by_code_name_and_phone(app, engine):
    _dossier(engine, "000.00.21.H42-251125-0001", phone="0912345678")
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code="HS-B", status="waiting", applicant_name="Trần Thị Bích",
                                       phone="0387654321"), via="test")
    client = sign_in(app)

    def found(q):
        body = client.get("/staff/dossiers", query_string={"q": q}).get_data(as_text=True)
        return set(re.findall(r'<td class="code"><a [^>]*>([^<]+)</a>', body))

    assert found("H42-251125-0001") == {"000.00.21.H42-251125-0001"}
    assert found("bích") == {"HS-B"} or found("Bích") == {"HS-B"}
    assert found("Trần Thị") == {"HS-B"}
    assert found("0912 345 678") == {"000.00.21.H42-251125-0001"}
    assert found("01687654321") == {"HS-B"}  # an old 11-digit Viettel number finds the new one
    assert found("654321") == {"HS-B"}
    assert found("100%_") == set()
    assert found("") == {"HS-B", "000.00.21.H42-251125-0001"}


def test_result_ready_twice_from_the_staff_page_sends_one_notice(app, engine):
    _dossier(engine)
    client = sign_in(app)
    token = csrf_token(client, "/staff/dossiers/view?code=HS-001")
    for _ in range(2):
        resp = client.post("/staff/dossiers/status", data={"code": "HS-001", "status": "result_ready",
                                                          "csrf_token": token})
        assert resp.status_code == 302
    assert _notice_count(engine, "HS-001") == 1
    page = client.get("/staff/dossiers/view?code=HS-001").get_data(as_text=True)
    assert "Chờ trả kết quả" in page and client.staff_username in page  # history names who did it
    with engine.connect() as conn:
        hist = conn.execute(sa.select(dossier_history).order_by(dossier_history.c.id)).mappings().all()
        assert [(h["to_status"], h["via"], h["actor"]) for h in hist][-1] == (
            "result_ready", "staff", client.staff_username)
        acts = conn.execute(sa.select(staff_audit).where(staff_audit.c.action == audit.DOSSIER_STATUS)).all()
        assert len(acts) == 2 and all(a.actor == client.staff_username and a.target == "HS-001" for a in acts)


def test_phone_is_added_corrected_and_a_bad_one_explained(app, engine):
    _dossier(engine, phone=None)
    client = sign_in(app)
    token = csrf_token(client, "/staff/dossiers/view?code=HS-001")
    resp = client.post("/staff/dossiers/phone", data={"code": "HS-001", "phone": "0123 4567", "csrf_token": token},
                       follow_redirects=True)
    assert "Số điện thoại không hợp lệ" in resp.get_data(as_text=True)
    resp = client.post("/staff/dossiers/phone", data={"code": "HS-001", "phone": "01687654321",
                                                      "csrf_token": token}, follow_redirects=True)
    assert "+84387654321" in resp.get_data(as_text=True)
    with engine.connect() as conn:
        assert conn.execute(sa.select(dossiers.c.phone)).scalar_one() == "+84387654321"


def test_status_slip_goes_to_the_print_queue_or_says_printing_is_unavailable(app, engine):
    _dossier(engine)
    client = sign_in(app)
    token = csrf_token(client, "/staff/dossiers/view?code=HS-001")
    resp = client.post("/staff/dossiers/slip", data={"code": "HS-001", "csrf_token": token}, follow_redirects=True)
    body = resp.get_data(as_text=True)
    try:
        from kiosk.printing.jobs import submit_slip
    except ImportError:
        assert "Chức năng in chưa sẵn sàng" in body
    else:
        assert callable(submit_slip)
        assert "Đã gửi phiếu trạng thái tới máy in" in body
        with engine.connect() as conn:
            assert conn.execute(sa.select(staff_audit.c.target).where(
                staff_audit.c.action == audit.DOSSIER_SLIP)).scalar_one() == "HS-001"


def _hostile_data(engine):
    """Every dossier field holding hostile text, written straight to the table (past ingest's limits)."""
    long = ("<b>dài</b>" * 1100)[:10_240]
    now = utcnow()
    rows = []
    for i, text in enumerate(HOSTILE + [long]):
        code = text[:100] if i < len(HOSTILE) else "LONG-" + "x" * 90
        rows.append(dict(code=code, secret=text[:64], procedure=text, field=text, applicant_name=text, phone=text[:32],
                         status="result_ready", source_status=text[:64], created_at=now, updated_at=now))
    with engine.begin() as conn:
        for r in rows:
            did = conn.execute(dossiers.insert().values(**r)).inserted_primary_key[0]
            conn.execute(dossier_history.insert().values(dossier_id=did, to_status="result_ready", via="test",
                                                         actor=r["procedure"][:100], changed_at=now))
            conn.execute(notices.insert().values(
                idempotency_key=f"k{did}", dossier_code=r["code"], kind="result_ready", phone_raw=r["phone"],
                params="{}", state="failed", attempts=1, last_error=r["procedure"], created_at=now, updated_at=now))
            audit.record(conn, actor=r["procedure"][:100], action="dossier_status", target=r["code"],
                         detail={"note": r["procedure"]})
    return rows


def test_hostile_strings_in_every_dossier_field_are_shown_escaped_on_every_page(app, engine):
    rows = _hostile_data(engine)
    client = sign_in(app, role=users.ADMIN)
    pages = ["/staff/dossiers", "/staff/notices", "/staff/notices?state=failed", "/staff/audit"]
    pages += [f"/staff/dossiers?q={q}" for q in ("script", "img", "javascript", "svg", "dài")]
    from urllib.parse import quote
    pages += [f"/staff/dossiers/view?code={quote(r['code'])}" for r in rows]
    for url in pages:
        resp = client.get(url)
        assert resp.status_code == 200, url
        body = resp.get_data(as_text=True)
        for text in HOSTILE:
            if text.startswith("javascript:"):  # plain text is harmless; only a link target would not be
                assert not re.search(r'(href|src|action)="\s*javascript:', body, re.I), url
            else:
                assert text not in body, (url, text)
        assert "<b>dài</b>" not in body
        assert not re.search(r"<(img|svg)\b", body)
    detail = client.get(f"/staff/dossiers/view?code={quote(rows[0]['code'])}").get_data(as_text=True)
    assert html.escape(HOSTILE[0], quote=False) in detail or "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    long_page = client.get(f"/staff/dossiers/view?code={quote(rows[-1]['code'])}").get_data(as_text=True)
    assert long_page.count("&lt;b&gt;dài&lt;/b&gt;") >= 2 * 1000  # shown in full, escaped, in several fields


# --- notices ------------------------------------------------------------------------------------

def _notice(engine, state, error=None, key=None):
    now = utcnow()
    with engine.begin() as conn:
        return conn.execute(notices.insert().values(
            idempotency_key=key or f"n-{state}-{now.timestamp()}", dossier_code="HS-001", kind="result_ready",
            phone_raw="0912345678", params="{}", state=state, attempts=3, last_error=error,
            created_at=now, updated_at=now)).inserted_primary_key[0]


def _state(engine, nid):
    with engine.connect() as conn:
        return conn.execute(sa.select(notices.c.state).where(notices.c.id == nid)).scalar_one()


def test_notices_filter_reasons_retry_cancel_and_uncertain_decisions(app, engine):
    failed = _notice(engine, "failed", "CMS 38: network out of order", "a")
    queued = _notice(engine, "queued", key="b")
    unsure1 = _notice(engine, "uncertain", "modem timeout after send", "c")
    unsure2 = _notice(engine, "uncertain", "modem timeout after send", "d")
    client = sign_in(app)
    body = client.get("/staff/notices?state=failed").get_data(as_text=True)
    assert "CMS 38: network out of order" in body and f'id="notice-{queued}"' not in body
    assert 'data-action="retry"' in body
    token = csrf_token(client, "/staff/notices")
    for nid, action, expected in [(failed, "retry", "queued"), (queued, "cancel", "cancelled"),
                                  (unsure1, "resend", "queued"), (unsure2, "mark_sent", "sent")]:
        resp = client.post(f"/staff/notices/{nid}/{action}", data={"csrf_token": token})
        assert resp.status_code == 302
        assert _state(engine, nid) == expected, action
    resp = client.post(f"/staff/notices/{unsure1}/resend", data={"csrf_token": token}, follow_redirects=True)
    assert "Không thực hiện được" in resp.get_data(as_text=True)  # already decided
    with engine.connect() as conn:
        acts = [(r.action, r.target) for r in conn.execute(
            sa.select(staff_audit).where(staff_audit.c.action.like("notice_%")).order_by(staff_audit.c.id))]
    assert acts[:4] == [(audit.NOTICE_RETRY, f"notice:{failed}"), (audit.NOTICE_CANCEL, f"notice:{queued}"),
                        (audit.NOTICE_RESEND, f"notice:{unsure1}"), (audit.NOTICE_MARK_SENT, f"notice:{unsure2}")]


@pytest.mark.clock  # "today" is the site's local day
def test_daily_counts_parts_and_cost(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={**CHEAP_HASHING, "sms_part_price_vnd": 350})
    engine = make_engine(cfg)
    app = create_app(cfg, engine, test_config={"TESTING": True})
    now = utcnow()
    with engine.begin() as conn:
        for i, parts in enumerate((1, 2, 2)):
            conn.execute(notices.insert().values(
                idempotency_key=f"s{i}", kind="result_ready", phone_raw="0912345678", params="{}", state="sent",
                parts=parts, sent_at=now, created_at=now, updated_at=now))
    body = sign_in(app).get("/staff/notices").get_data(as_text=True)
    usage = body[body.index('id="usage"'):]
    assert re.search(r"<th>Cộng</th><th>3</th><th>5</th><th>1,750</th>", usage)


# --- audit and accounts -------------------------------------------------------------------------

def test_admin_sees_who_did_what_when(app, engine):
    _dossier(engine)
    official = sign_in(app, username="can-bo-a")
    official.post("/staff/dossiers/status", data={"code": "HS-001", "status": "more_documents",
                                                 "csrf_token": csrf_token(official, "/staff/dossiers")})
    admin = sign_in(app, role=users.ADMIN)
    body = admin.get("/staff/audit").get_data(as_text=True)
    assert "can-bo-a" in body and "Cập nhật trạng thái hồ sơ" in body and "status=more_documents" in body
    assert "Đăng nhập" in body and LAN_ADDRESS in body
    assert "can-bo-a" in admin.get("/staff/audit?actor=can-bo-a").get_data(as_text=True)


def test_admin_adds_an_account_that_can_sign_in(app):
    admin = sign_in(app, role=users.ADMIN)
    token = csrf_token(admin, "/staff/users")
    resp = admin.post("/staff/users", data={"username": "Lan.Nguyen", "display_name": "Nguyễn Thị Lan",
                                            "role": "official", "password": "short", "csrf_token": token})
    assert "ít nhất" in resp.get_data(as_text=True) or "at least" in resp.get_data(as_text=True)
    resp = admin.post("/staff/users", data={"username": "Lan.Nguyen", "display_name": "Nguyễn Thị Lan",
                                            "role": "official", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    assert _login(lan_client(app), "lan.nguyen", PASSWORD).status_code == 302


def test_kiosk_user_cli_add_list_disable(make_config, tmp_path):
    from kiosk.cli import cli
    from motcua.db import make_engine

    cfg = make_config()
    path = tmp_path / "cli.toml"
    path.write_text(f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\n', encoding="utf-8")  # default cost
    runner = CliRunner()
    res = runner.invoke(cli, ["--config", str(path), "user", "add", "Quan.Tri", "--role", "admin",
                              "--name", "Quản trị"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["--config", str(path), "user", "add", "x y", "--password", PASSWORD])
    assert res.exit_code != 0 and "username" in res.output
    res = runner.invoke(cli, ["--config", str(path), "user", "add", "quan.tri", "--password", PASSWORD])
    assert res.exit_code != 0 and "already taken" in res.output
    assert "quan.tri" in runner.invoke(cli, ["--config", str(path), "user", "list"]).output
    assert runner.invoke(cli, ["--config", str(path), "user", "disable", "quan.tri"]).exit_code == 0
    engine = make_engine(cfg)
    assert not users.authenticate(engine, cfg.staff, "quan.tri", PASSWORD, "cli").ok
    with engine.begin() as conn:
        row = users.get_by_name(conn, "quan.tri")
        assert row["role"] == "admin" and not row["active"] and row["password_hash"].startswith("$argon2id$")
        actions = [r.action for r in conn.execute(sa.select(staff_audit.c.action))]
    assert actions[:2] == [audit.USER_ADD, audit.USER_DISABLE]


def test_change_own_password_ends_the_session(app):
    name, _ = create_account(app, "doi-mk", password=PASSWORD)
    client = lan_client(app)
    _login(client, name, PASSWORD)
    token = csrf_token(client, "/staff/account/password")
    resp = client.post("/staff/account/password", data={"current": PASSWORD, "new": "mat-khau-moi-2026",
                                                         "repeat": "mat-khau-moi-2026", "csrf_token": token})
    assert resp.status_code == 302
    assert client.get("/staff/dossiers").status_code == 302
    assert _login(lan_client(app), name, "mat-khau-moi-2026").status_code == 302


def test_pages_in_english_on_request(app):
    client = sign_in(app)
    client.post("/staff/language", data={"lang": "en", "csrf_token": csrf_token(client, "/staff/dossiers")})
    body = client.get("/staff/notices").get_data(as_text=True)
    assert 'lang="en"' in body and "Tiếng Việt" in body
    assert "Notices sent per day (14 days)" in body and "Số tin đã gửi theo ngày" not in body
    assert "Find a dossier" in client.get("/staff/dossiers").get_data(as_text=True)


def test_accounts_lockout_audit_and_search_on_sqlite_and_postgresql(any_engine, config):
    from kiosk.staff.views import search_dossiers

    staff = config.staff
    with any_engine.begin() as conn:
        users.create_user(conn, staff, "Lan", PASSWORD, role=users.ADMIN)
        apply_event(conn, DossierEvent(code="HS_%1", status="waiting", applicant_name="Trần Thị Lan",
                                       phone="0912345678"), via="test")
        apply_event(conn, DossierEvent(code="HS-X1", status="waiting", applicant_name="Lê Văn Tám"), via="test")
    assert users.authenticate(any_engine, staff, "LAN ", PASSWORD, "10.0.0.1").ok
    outcomes = [users.authenticate(any_engine, staff, "lan", "sai", "10.0.0.1").reason for _ in range(5)]
    assert outcomes == ["bad"] * 4 + ["locked"]
    assert users.authenticate(any_engine, staff, "lan", PASSWORD, "10.0.0.1").reason == "locked"
    with any_engine.begin() as conn:
        audit.record(conn, actor="lan", action=audit.LOGIN, detail={"note": "Tiếng Việt"}, address="10.0.0.1")
        assert audit.recent(conn, limit=1)[0]["detail"] == {"note": "Tiếng Việt"}
        assert [r["code"] for r in search_dossiers(conn, "HS_%")] == ["HS_%1"]  # LIKE wildcards are literal
        assert [r["code"] for r in search_dossiers(conn, "+84 912 345 678")] == ["HS_%1"]
        assert [r["code"] for r in search_dossiers(conn, "tám")] in (["HS-X1"], [])  # SQLite lower() is ASCII-only
        assert [r["code"] for r in search_dossiers(conn, "Tám")] == ["HS-X1"]


def test_demo_seeds_one_admin_with_a_random_password_once(config, engine):
    from kiosk.staff.demo import seed_demo_account

    name, password = seed_demo_account(engine, config)
    assert seed_demo_account(engine, config) is None  # never a second account, never a reset
    assert users.authenticate(engine, config.staff, name, password, "127.0.0.1").ok
    assert len(password) >= config.staff.min_password_length


def test_english_catalogue_covers_every_staff_text_and_is_compiled():
    from pathlib import Path

    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    ids = set()
    for sub, _method in (("kiosk/staff", "python"), ("kiosk/templates/staff", "jinja2")):
        for _file, _line, msg, _c, _ctx in extract_from_dir(root / sub, [("**.py", "python"), ("**.html", "jinja2")],
                                                            keywords=keywords):
            ids.add(msg if isinstance(msg, str) else msg[0])
    assert len(ids) > 150
    lc = root / "kiosk/translations/en/LC_MESSAGES"
    with open(lc / "staff.po", "rb") as fh:
        po = {m.id: m.string for m in read_po(fh) if m.id}
    with open(lc / "staff.mo", "rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id}
    assert not [i for i in ids if not po.get(i)], "untranslated: run the commands in docs/staff.md"
    assert mo == po


def test_counter_pages_need_sign_in_and_their_actions_are_audited(app, engine):
    anonymous = lan_client(app)
    assert anonymous.get("/counter/1").status_code == 302
    client = sign_in(app, username="quay-mot")
    assert client.get("/counter/1").status_code == 200
    token = csrf_token(client, "/counter/1")  # the counter page's forms carry the token
    assert client.post("/counter/1/next", data={}).status_code == 400
    assert client.post("/counter/1/next", data={"csrf_token": token}).status_code == 302
    with engine.connect() as conn:
        rows = conn.execute(sa.select(staff_audit).where(staff_audit.c.action == audit.COUNTER)).all()
    assert [(r.actor, r.target) for r in rows] == [("quay-mot", "/counter/1/next")]


def test_the_kiosk_address_is_recognised_through_a_dual_stack_listener(app):
    staff = sign_in(app)
    cookie = staff.get_cookie("motcua_staff").value
    for mapped in ("::ffff:127.0.0.1", "::1"):
        kiosk = lan_client(app, mapped)
        kiosk.set_cookie("motcua_staff", cookie)
        assert kiosk.get("/staff/dossiers").status_code == 403, mapped


def test_wrong_passwords_tried_at_once_all_count(config, engine):
    from concurrent.futures import ThreadPoolExecutor

    with engine.begin() as conn:
        users.create_user(conn, config.staff, "song-song", PASSWORD)
    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda i: users.authenticate(engine, config.staff, "song-song", f"sai-{i}",
                                                             "10.0.1.1").reason, range(5)))
    assert sorted(outcomes) == ["bad"] * 4 + ["locked"]
    assert users.authenticate(engine, config.staff, "song-song", PASSWORD, "10.0.1.1").reason == "locked"
    assert users.authenticate(engine, config.staff, "song-song", PASSWORD, "10.0.1.9").reason == "ok"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_forty_parallel_guesses_from_four_addresses_check_at_most_five_passwords_each(
        backend, make_config, request, monkeypatch):
    """Issue 17 case 4: the attempt is counted before the hash is checked, atomically."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from motcua.db import make_engine

    overrides = {"staff": CHEAP_HASHING}
    if backend == "postgresql":
        overrides["database"] = {"url": request.getfixturevalue("pg_database")}
    cfg = make_config(overrides)
    engine = make_engine(cfg)
    with engine.begin() as conn:
        users.create_user(conn, cfg.staff, "admin", PASSWORD, role=users.ADMIN)
    checked: dict[str, int] = {}
    lock = threading.Lock()
    real_verify = users.verify_password
    local = threading.local()

    def counting_verify(stored: str, password: str) -> bool:
        with lock:
            checked[local.address] = checked.get(local.address, 0) + 1
        return real_verify(stored, password)

    monkeypatch.setattr(users, "verify_password", counting_verify)
    start = threading.Barrier(40)

    def attempt(i: int) -> str:
        local.address = f"192.168.7.{i % 4}"
        start.wait()
        return users.authenticate(engine, cfg.staff, "admin", f"sai-{i}", local.address).reason

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert set(checked) == {f"192.168.7.{i}" for i in range(4)}
    assert all(n <= cfg.staff.lockout_failures for n in checked.values()), checked
    assert outcomes.count("bad") == 4 * (cfg.staff.lockout_failures - 1)
    for i in range(4):  # each guessing address is locked: the right password does not get in from there
        local.address = f"192.168.7.{i}"
        assert users.authenticate(engine, cfg.staff, "admin", PASSWORD, local.address).reason == "locked"
    assert all(n <= cfg.staff.lockout_failures for n in checked.values()), checked  # refused unchecked
    local.address = "192.168.1.20"  # the admin's own PC is not locked out by the guessers
    assert users.authenticate(engine, cfg.staff, "admin", PASSWORD, local.address).reason == "ok"
    engine.dispose()


def test_kiosk_user_unlock_ends_a_lockout(make_config, tmp_path):
    from kiosk.cli import cli
    from motcua.db import make_engine

    cfg = make_config(staff=CHEAP_HASHING)
    path = tmp_path / "cli.toml"
    path.write_text(f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\n', encoding="utf-8")
    engine = make_engine(cfg)
    with engine.begin() as conn:
        users.create_user(conn, cfg.staff, "admin", PASSWORD, role=users.ADMIN)
    for i in range(5):
        users.authenticate(engine, cfg.staff, "admin", f"sai-{i}", "10.9.9.9")
    assert users.authenticate(engine, cfg.staff, "admin", PASSWORD, "10.9.9.9").reason == "locked"
    runner = CliRunner()
    listed = runner.invoke(cli, ["--config", str(path), "user", "list"])
    assert "locked until" in listed.output
    result = runner.invoke(cli, ["--config", str(path), "user", "unlock", "admin"])
    assert result.exit_code == 0, result.output
    assert "unlocked admin (was locked from 10.9.9.9)" in result.output
    assert users.authenticate(engine, cfg.staff, "admin", PASSWORD, "10.9.9.9").reason == "ok"
    with engine.connect() as conn:
        row = conn.execute(sa.select(staff_audit).where(staff_audit.c.action == audit.USER_UNLOCK)).mappings().one()
    assert row["target"] == "admin" and row["actor"].startswith("cli:")
    engine.dispose()


def test_passwords_are_argon2id_with_the_default_cost_and_upgraded_at_sign_in(make_config):
    from motcua.db import make_engine

    cheap = make_config(staff=CHEAP_HASHING)
    engine = make_engine(cheap)
    with engine.begin() as conn:
        users.create_user(conn, cheap.staff, "nang-cap", PASSWORD)
        assert users.get_by_name(conn, "nang-cap")["password_hash"].startswith("$argon2id$v=19$m=8192,t=1,p=4$")
    default = make_config()
    assert users.authenticate(engine, default.staff, "nang-cap", PASSWORD, "10.0.0.1").ok
    with engine.connect() as conn:
        stored = users.get_by_name(conn, "nang-cap")["password_hash"]
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # argon2-cffi's defaults (RFC 9106 low-memory)
    assert users.authenticate(engine, default.staff, "nang-cap", PASSWORD, "10.0.0.1").ok


def test_admins_see_the_settings_without_secrets(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff=CHEAP_HASHING, kiosk={"secret_key": "khoa-bi-mat-123"}, modem={"pin": "4321"})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    assert sign_in(app).get("/staff/settings").status_code == 403
    body = sign_in(app, role=users.ADMIN).get("/staff/settings").get_data(as_text=True)
    assert "[staff]" in body and "password_memory_kib" in body and "8192" in body and "session_idle_minutes" in body
    for secret in ("khoa-bi-mat-123", "4321", "test-token-0123456789"):
        assert secret not in body
    assert body.count("••••••") >= 3


def test_old_sign_in_attempts_are_pruned_but_the_audit_log_stays(config, engine):
    from kiosk.staff.models import staff_login_attempts

    with engine.begin() as conn:
        users.create_user(conn, config.staff, "cu", PASSWORD)
        conn.execute(staff_login_attempts.insert().values(at=utcnow() - timedelta(days=40), username="cu",
                                                          address="10.0.0.1", succeeded=False))
        audit.record(conn, actor="-", action=audit.LOGIN_FAILED, target="cu")
    assert users.authenticate(engine, config.staff, "cu", PASSWORD, "10.0.0.1").ok
    with engine.connect() as conn:
        assert [r.succeeded for r in conn.execute(sa.select(staff_login_attempts))] == [True]
        assert conn.execute(sa.select(sa.func.count()).select_from(staff_audit)).scalar_one() == 1
