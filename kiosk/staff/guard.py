"""Who may open staff pages, decided in one place for every route under /staff/ and /counter/.

- The kiosk screen's own browser (its addresses, `[kiosk] kiosk_addresses`) is refused outright,
  so a citizen at the touchscreen can never reach them, signed in or not.
- Staff pages keep their session in their own cookie (`[staff] cookie_name`, HttpOnly,
  SameSite=Strict, Secure over HTTPS): the kiosk screen's session never carries a sign-in.
- Every other request must be signed in; sessions end after `session_idle_minutes` without a
  request and `session_max_hours` after sign-in.
- Every state-changing request carries a CSRF token (Flask-WTF), checked here, so counter pages
  built elsewhere are covered too.
"""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, flash, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin, LoginManager, current_user, logout_user
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from kiosk.context import get_config, get_engine
from kiosk.security import is_kiosk_screen
from kiosk.staff import audit, users
from kiosk.staff.users import ADMIN
from motcua.db import reading

log = logging.getLogger(__name__)

PREFIXES = ("/staff", "/counter")
PUBLIC_ENDPOINTS = frozenset({"staff.login"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SEEN_KEY, LOGIN_AT_KEY = "staff_seen", "staff_login_at"


def is_staff_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


class StaffSessionInterface(SecureCookieSessionInterface):
    """Staff paths get their own signed cookie; every other path keeps the app's usual session."""

    salt = "motcua-staff-session"

    def __init__(self, fallback: SessionInterface):
        self.fallback = fallback

    def open_session(self, app: Flask, request: Request):
        if not is_staff_path(request.path):
            return self.fallback.open_session(app, request)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session, response: Response) -> None:
        if not is_staff_path(request.path):
            return self.fallback.save_session(app, session, response)
        return super().save_session(app, session, response)

    def is_null_session(self, obj: object) -> bool:
        return self.fallback.is_null_session(obj) or super().is_null_session(obj)

    def get_cookie_name(self, app: Flask) -> str:
        return app.config["MOTCUA"].staff.cookie_name

    def get_cookie_path(self, app: Flask) -> str:
        return "/"  # /staff and /counter share it

    def get_cookie_domain(self, app: Flask) -> str | None:
        return None

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = app.config["MOTCUA"].staff.cookie_secure
        return mode == "always" or (mode == "auto" and request.is_secure)

    def get_expiration_time(self, app: Flask, session) -> None:
        return None  # a browser-session cookie; the server ends sessions itself (see guard)

    def should_set_cookie(self, app: Flask, session) -> bool:
        return session.modified


class StaffUser:
    """The signed-in person, as Flask-Login wants it."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, row: Any):
        self.id = row["id"]
        self.username = row["username"]
        self.display_name = row["display_name"] or row["username"]
        self.role = row["role"]
        self.epoch = row["session_epoch"]

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def get_id(self) -> str:
        # The epoch ends every session of the account when it is bumped (password, disable, logout).
        return f"{self.id}:{self.epoch}"


class Anonymous(AnonymousUserMixin):
    username = "-"
    is_admin = False


def load_user(token: str) -> StaffUser | None:
    try:
        uid, epoch = (int(p) for p in token.split(":", 1))
    except ValueError:
        return None
    with reading(get_engine()) as conn:
        row = users.get(conn, uid)
    if row is None or not row["active"] or row["session_epoch"] != epoch:
        return None
    return StaffUser(row)


def client_address() -> str:
    return request.remote_addr or "-"


def from_kiosk_screen() -> bool:
    """The kiosk screen, unless `[staff] allow_kiosk_addresses` lets it open staff pages."""
    return not get_config().staff.allow_kiosk_addresses and is_kiosk_screen()


def safe_next(target: str | None) -> str | None:
    """Only a local staff path may follow sign-in (no open redirect)."""
    if not target:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):  # CR/LF would split the Location header
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target if is_staff_path(parts.path) else None


def _refuse(status: int, title: str, message: str, bare: bool = False) -> Response:
    return Response(render_template("staff/refused.html", title=title, message=message, bare=bare), status=status)


def guard() -> Response | None:
    """Runs before every request; only acts on staff paths."""
    if not is_staff_path(request.path):
        return None
    if from_kiosk_screen():
        log.warning("staff page %s refused to the kiosk screen's address %s", request.path, client_address())
        return _refuse(403, _("Không mở được trang này"),
                       _("Trang dành cho cán bộ không mở được từ màn hình kiosk."), bare=True)
    now = time.time()
    if current_user.is_authenticated:
        staff = get_config().staff
        seen = session.get(SEEN_KEY, 0)
        login_at = session.get(LOGIN_AT_KEY, 0)
        if now - seen > staff.session_idle_minutes * 60 or now - login_at > staff.session_max_hours * 3600:
            _expire_session()
            if request.method in ("GET", "HEAD"):
                flash(_("Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại."), "warning")
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            return _refuse(401, _("Phiên làm việc đã hết hạn"), _("Vui lòng đăng nhập lại."))
        session[SEEN_KEY] = now
    elif request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
        return _refuse(401, _("Cần đăng nhập"), _("Vui lòng đăng nhập để tiếp tục."))
    if request.method in UNSAFE_METHODS:
        token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
        try:
            validate_csrf(token)
        except ValidationError as exc:
            log.info("CSRF check failed on %s from %s: %s", request.path, client_address(), exc)
            return _refuse(400, _("Biểu mẫu không hợp lệ"),
                           _("Biểu mẫu đã hết hạn hoặc thiếu mã bảo vệ. Vui lòng tải lại trang và thử lại."))
    return None


def _expire_session() -> None:
    name = current_user.username
    with get_engine().begin() as conn:
        audit.record(conn, actor=name, action=audit.SESSION_EXPIRED, address=client_address())
    logout_user()
    session.clear()


def audit_other_pages(response: Response) -> Response:
    """Staff pages audit their own actions with the action; other areas' pages behind the guard
    (the counter's call/recall/transfer ...) are recorded here: who, which page, when."""
    if (request.method in UNSAFE_METHODS and is_staff_path(request.path) and request.blueprint != "staff"
            and response.status_code < 400 and current_user.is_authenticated):
        try:
            with get_engine().begin() as conn:
                audit.record(conn, actor=current_user.username,
                             action=audit.COUNTER if request.path.startswith("/counter") else audit.PAGE_ACTION,
                             target=request.path, detail={"status": response.status_code}, address=client_address())
        except Exception:  # the action is done; a missing audit row is logged, not shown as a failure
            log.exception("could not audit %s %s", request.method, request.path)
    return response


def staff_headers(response: Response) -> Response:
    if is_staff_path(request.path):
        response.headers["Cache-Control"] = "no-store"
        # kiosk/security.py sets the app-wide policy; this is the floor if it is ever missing.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def init_app(app: Flask) -> None:
    app.session_interface = StaffSessionInterface(app.session_interface)
    manager = LoginManager()
    manager.user_loader(load_user)
    manager.anonymous_user = Anonymous
    manager.session_protection = None  # our own idle/absolute limits and the epoch replace it
    manager.init_app(app)
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
    app.before_request(guard)
    app.after_request(staff_headers)
    app.after_request(audit_other_pages)


__all__ = ["init_app", "is_staff_path", "StaffUser", "safe_next", "client_address"]
