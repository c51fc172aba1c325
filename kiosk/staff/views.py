"""Staff pages: sign-in, dossiers, notices, device health, audit log, accounts."""
from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime
from functools import wraps
from typing import Any, Callable

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from kiosk import health
from kiosk.context import get_config, get_engine
from kiosk.i18n import status_label
from kiosk.printing import jobs as print_jobs
from kiosk.printing.jobs import submit_slip
from kiosk.printing.states import JobState
from kiosk.ratings import api as ratings
from kiosk.staff import audit, users
from kiosk.staff.forms import ActionForm, LanguageForm, LoginForm, PasswordForm, PhoneForm, StatusForm, UserAddForm
from kiosk.staff.guard import LOGIN_AT_KEY, SEEN_KEY, StaffUser, client_address, safe_next
from kiosk.staff.health_text import check_sentence
from kiosk.staff.models import staff_users
from kiosk.store import dossiers as store
from kiosk.store.schema import dossiers
from motcua import stations
from motcua.config import SECRET_SETTING as SECRET_KEYS  # the one rule for which settings are credentials
from motcua.db import reading
from motcua.hours import local_now, site_zone
from motcua.phones import InvalidPhone, normalise_vn_mobile
from motcua.textnorm import clean_text
from sms_gateway import api as sms

log = logging.getLogger(__name__)
bp = Blueprint("staff", __name__, url_prefix="/staff")

SEARCH_LIMIT = 50
NOTICE_LIMIT = 200
NOTICE_STATES = tuple(sms.NoticeState)
AUDIT_PAGE = 100

NOTICE_STATE_LABELS = {
    sms.NoticeState.QUEUED: _l("Chờ gửi"),
    sms.NoticeState.SENDING: _l("Đang gửi"),
    sms.NoticeState.SENT: _l("Đã gửi"),
    sms.NoticeState.RETRY: _l("Chờ gửi lại"),
    sms.NoticeState.FAILED: _l("Gửi lỗi"),
    sms.NoticeState.UNCERTAIN: _l("Chưa rõ đã gửi chưa"),
    sms.NoticeState.CANCELLED: _l("Đã hủy"),
}
# The gateway words each modem state once (sms_gateway.api); shown here through the staff catalogue.
MODEM_STATE_LABELS = {state: _l(label) for state, label in sms.MODEM_STATE_LABELS.items()}
ACTION_LABELS = {
    audit.LOGIN: _l("Đăng nhập"),
    audit.LOGIN_FAILED: _l("Đăng nhập sai"),
    audit.LOGIN_LOCKED: _l("Đăng nhập bị chặn (khóa tạm thời)"),
    audit.LOGOUT: _l("Đăng xuất"),
    audit.SESSION_EXPIRED: _l("Hết phiên làm việc"),
    audit.DOSSIER_STATUS: _l("Cập nhật trạng thái hồ sơ"),
    audit.DOSSIER_PHONE: _l("Sửa số điện thoại"),
    audit.DOSSIER_SLIP: _l("In phiếu trạng thái"),
    audit.NOTICE_RETRY: _l("Gửi lại tin nhắn"),
    audit.NOTICE_CANCEL: _l("Hủy tin nhắn"),
    audit.NOTICE_RESEND: _l("Tin chưa rõ: gửi lại"),
    audit.NOTICE_MARK_SENT: _l("Tin chưa rõ: đánh dấu đã gửi"),
    audit.USER_ADD: _l("Thêm tài khoản"),
    audit.USER_DISABLE: _l("Khóa tài khoản"),
    audit.USER_ENABLE: _l("Mở khóa tài khoản"),
    audit.USER_PASSWORD: _l("Đổi mật khẩu"),
    audit.USER_UNLOCK: _l("Gỡ khóa đăng nhập sai"),
    audit.PRINT_REPRINT: _l("In lại phiếu"),
    audit.COUNTER: _l("Thao tác tại quầy"),
    audit.PAGE_ACTION: _l("Thao tác khác"),
}
CHECK_LABELS = {
    "camera": _l("Camera quét mã"),
    "printer": _l("Máy in phiếu"),
    "modem": _l("Modem SMS"),
    "disk": _l("Dung lượng lưu trữ"),
    "database": _l("Cơ sở dữ liệu"),
    "last_ingest": _l("Lần nhận dữ liệu gần nhất"),
    "source": _l("Đồng bộ với hệ thống của tỉnh"),
    "outbox": _l("Hàng đợi tin nhắn"),
    "limits": _l("Giới hạn tại kiosk (số bị từ chối hôm nay)"),
}
HEALTH_LABELS = {
    health.OK: _l("Bình thường"),
    health.WARNING: _l("Cần chú ý"),
    health.ERROR: _l("Lỗi"),
    health.UNKNOWN: _l("Không rõ"),
}
ROLE_LABELS = {users.OFFICIAL: _l("Cán bộ"), users.ADMIN: _l("Quản trị")}
STATION_ROLE_LABELS = {
    stations.StationRole.KIOSK: _l("Kiosk tra cứu"),
    stations.StationRole.COUNTER: _l("Quầy"),
    stations.StationRole.DISPLAY: _l("Màn hình sảnh"),
    stations.StationRole.GATEWAY: _l("Cổng SMS"),
}
# The scanner's camera states (kiosk/scanner/service.py writes these words).
CAMERA_STATE_LABELS = {"ok": _l("Bình thường"), "starting": _l("Đang khởi động"), "unavailable": _l("Không dùng được")}
# Notice buttons: action -> (gateway call, audit action, states it applies to)
NOTICE_ACTIONS: dict[str, tuple[Callable[..., Any], str, tuple[str, ...]]] = {
    "retry": (sms.retry, audit.NOTICE_RETRY, sms.RETRYABLE),
    "cancel": (sms.cancel, audit.NOTICE_CANCEL, sms.CANCELLABLE),
    "resend": (lambda conn, nid, actor: sms.resolve_uncertain(conn, nid, True, actor), audit.NOTICE_RESEND,
               sms.RESOLVABLE),
    "mark_sent": (lambda conn, nid, actor: sms.resolve_uncertain(conn, nid, False, actor),
                  audit.NOTICE_MARK_SENT, sms.RESOLVABLE),
}


# --- helpers ------------------------------------------------------------------------------------

def _actor() -> str:
    return current_user.username


def _write(action: str, target: str | None, detail: dict[str, Any] | None, fn: Callable[[sa.Connection], Any]) -> Any:
    """Do one staff action and its audit row in one transaction."""
    with get_engine().begin() as conn:
        result = fn(conn)
        audit.record(conn, actor=_actor(), action=action, target=target, detail=detail, address=client_address())
        return result


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            return render_template("staff/refused.html", title=_("Không có quyền"),
                                   message=_("Trang này chỉ dành cho quản trị viên.")), 403
        return view(*args, **kwargs)

    return wrapped


def _login_limiter() -> tuple[FixedWindowRateLimiter, Any]:
    app = current_app
    key = "motcua.staff.login_limiter"
    if key not in app.extensions:
        # Flask-Limiter's engine (`limits`) on the app's shared rate-limit storage when the kiosk
        # screens configured one (kiosk/web/ratelimit.py: one SQLite file for every worker), else
        # in memory per worker. The database lockout behind it holds across workers and restarts.
        uri = app.config.get("RATELIMIT_STORAGE_URI")
        try:
            storage = storage_from_string(uri) if uri else MemoryStorage()
        except Exception:  # an unknown scheme: still limit, per worker
            log.warning("rate-limit storage %r unusable for sign-in; using memory", uri)
            storage = MemoryStorage()
        app.extensions[key] = (FixedWindowRateLimiter(storage), parse(get_config().staff.login_rate))
    return app.extensions[key]


@bp.app_template_filter("localtime")
def localtime(value: Any, fmt: str = "%d/%m/%Y %H:%M") -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if hasattr(value, "astimezone"):
        return value.astimezone(site_zone(get_config().site)).strftime(fmt)
    return str(value)


@bp.app_template_filter("vndate")
def vndate(value: Any) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


@bp.context_processor
def _helpers() -> dict[str, Any]:
    english = str(get_locale() or "vi").startswith("en")

    return {
        "status_label": status_label,
        "notice_state_label": lambda s: NOTICE_STATE_LABELS.get(s, s),
        "modem_state_label": lambda s: MODEM_STATE_LABELS.get(s, s),
        "action_label": lambda a: ACTION_LABELS.get(a, a),
        "check_label": lambda c: CHECK_LABELS.get(c, c),
        "health_label": lambda s: HEALTH_LABELS.get(s, s),
        "role_label": lambda r: ROLE_LABELS.get(r, r),
        "station_role_label": lambda r: STATION_ROLE_LABELS.get(r, r),
        "device_state_label": _device_state_label,
        "age_label": _age_label,
        "check_sentence": check_sentence,
        "english": english,
    }


# --- sign-in ------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("staff.dossier_search"))
        form.next.data = safe_next(request.args.get("next")) or ""
        return render_template("staff/login.html", form=form)
    limiter, rate = _login_limiter()
    if not limiter.hit(rate, "staff-login", client_address()):
        return render_template("staff/login.html", form=form,
                               error=_("Quá nhiều lần đăng nhập. Vui lòng đợi một phút rồi thử lại.")), 429
    if not form.validate_on_submit():
        return render_template("staff/login.html", form=form, error=_("Vui lòng nhập tên đăng nhập và mật khẩu.")), 400
    cfg = get_config()
    outcome = users.authenticate(get_engine(), cfg.staff, form.username.data, form.password.data, client_address())
    name = users.normalise_username(form.username.data) or "-"
    with get_engine().begin() as conn:
        if outcome.ok:
            audit.record(conn, actor=name, action=audit.LOGIN, address=client_address())
        else:
            audit.record(conn, actor="-", action=audit.LOGIN_LOCKED if outcome.reason != "bad" else audit.LOGIN_FAILED,
                         target=name, detail={"reason": outcome.reason}, address=client_address())
    if outcome.ok:
        session.clear()  # a fresh session: nothing from before sign-in carries over
        login_user(StaffUser(outcome.user))
        now = time.time()
        session[LOGIN_AT_KEY] = now
        session[SEEN_KEY] = now
        return redirect(safe_next(form.next.data) or url_for("staff.dossier_search"))
    if outcome.reason == "bad":
        return render_template("staff/login.html", form=form, error=_("Sai tên đăng nhập hoặc mật khẩu.")), 401
    if outcome.reason == "locked":
        minutes = cfg.staff.lockout_minutes
        return render_template("staff/login.html", form=form, error=_(
            "Tài khoản tạm khóa vì nhập sai mật khẩu nhiều lần. Vui lòng thử lại sau %(minutes)d phút "
            "hoặc nhờ quản trị viên mở khóa.", minutes=minutes)), 429
    return render_template("staff/login.html", form=form, error=_(
        "Máy này đã nhập sai quá nhiều lần. Vui lòng thử lại sau %(minutes)d phút.",
        minutes=cfg.staff.lockout_minutes)), 429


@bp.post("/logout")
def logout():
    uid = current_user.id
    # Bumping the epoch makes this signed cookie worthless even if someone kept a copy.
    _write(audit.LOGOUT, None, None, lambda conn: conn.execute(
        staff_users.update().where(staff_users.c.id == uid).values(session_epoch=staff_users.c.session_epoch + 1)))
    logout_user()
    session.clear()
    flash(_("Đã đăng xuất."), "info")
    return redirect(url_for("staff.login"))


@bp.post("/language")
def language():
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in ("vi", "en"):
        session["lang"] = form.lang.data
    # The page asked from (no Referer: the app sends Referrer-Policy no-referrer).
    return redirect(safe_next(request.form.get("next")) or url_for("staff.dossier_search"))


@bp.get("/")
def index():
    return redirect(url_for("staff.dossier_search"))


# --- dossiers -----------------------------------------------------------------------------------

_LIKE_ESCAPE = re.compile(r"([\\%_])")


def search_dossiers(conn: sa.Connection, q: str, limit: int = SEARCH_LIMIT) -> list[Any]:
    """By code, applicant name or phone; newest changes first. Empty query: the latest changes.

    An exact code or a whole phone number is answered from an index; anything else is a scan
    (newest first, so it stops after `limit` matches; a query matching nothing reads every row).
    """
    newest = sa.select(dossiers).order_by(dossiers.c.updated_at.desc(), dossiers.c.id.desc()).limit(limit)
    q = clean_text(q).strip()[:100]  # stored text is NFC (motcua.textnorm): so is the query
    if not q:
        return list(conn.execute(newest).mappings())
    exact = conn.execute(sa.select(dossiers).where(dossiers.c.code == q)).mappings().first()
    if exact is not None:
        return [exact]
    digits = re.sub(r"\D", "", q)
    phone_like = len(digits) >= 4 and len(digits) >= len(re.sub(r"[\s.\-()+/]", "", q))
    if phone_like:
        try:
            e164 = normalise_vn_mobile(q)
        except InvalidPhone:
            pass
        else:  # stored as the source gave it: +84912..., 0912..., 84912...
            forms = [e164, "0" + e164[3:], e164[1:]]
            return list(conn.execute(newest.where(dossiers.c.phone.in_(forms))).mappings())
    pattern = "%" + _LIKE_ESCAPE.sub(r"\\\1", q) + "%"
    if conn.dialect.name == "sqlite":  # SQLite's LIKE already ignores ASCII case (and lower() is ASCII-only)
        def match(col):
            return col.like(pattern, escape="\\")
    else:
        def match(col):
            return col.ilike(pattern, escape="\\")
    conds = [match(dossiers.c.code), match(dossiers.c.applicant_name)]
    if phone_like:  # part of a number: stored as +84... or 0..., so drop the trunk 0
        tail = digits[1:] if digits.startswith("0") else digits
        conds.append(dossiers.c.phone.like(f"%{tail}%"))
    return list(conn.execute(newest.where(sa.or_(*conds))).mappings())


@bp.get("/dossiers")
def dossier_search():
    q = request.args.get("q", "")
    with reading(get_engine()) as conn:
        rows = search_dossiers(conn, q)
    return render_template("staff/dossiers.html", q=q[:100], rows=rows, limit=SEARCH_LIMIT)


@bp.get("/dossiers/view")
def dossier_view():
    code = request.args.get("code", "")[:100]
    with reading(get_engine()) as conn:
        row = store.find(conn, code)
        if row is None:
            return render_template("staff/refused.html", title=_("Không tìm thấy hồ sơ"),
                                   message=_("Không có hồ sơ với mã này."), back=url_for("staff.dossier_search")), 404
        hist = store.history(conn, row["id"])
        sent = sms.list_notices(conn, dossier_code=code, limit=50)
    status_form = StatusForm(code=code, status=row["status"])
    phone_form = PhoneForm(code=code, phone=row["phone"] or "")
    return render_template("staff/dossier.html", d=row, history=hist, notices=sent, status_form=status_form,
                           phone_form=phone_form, slip_form=ActionForm(code=code))


def _back_to(code: str):
    return redirect(url_for("staff.dossier_view", code=code))


@bp.post("/dossiers/status")
def dossier_status():
    form = StatusForm()
    if not form.validate_on_submit():
        flash(_("Trạng thái không hợp lệ."), "error")
        return _back_to(form.code.data or "")
    code, status = form.code.data, form.status.data
    try:
        outcome = _write(audit.DOSSIER_STATUS, code, {"status": status},
                         lambda conn: store.set_status(conn, code, status, via="staff", actor=_actor()))
    except LookupError:
        abort(404)
    if outcome == "unchanged":
        flash(_("Hồ sơ đã ở trạng thái này; không có gì thay đổi."), "info")
    else:
        flash(_("Đã cập nhật trạng thái."), "success")
    return _back_to(code)


@bp.post("/dossiers/phone")
def dossier_phone():
    form = PhoneForm()
    code = form.code.data or ""
    if not form.validate_on_submit():
        flash(_("Vui lòng nhập số điện thoại."), "error")
        return _back_to(code)
    try:
        e164 = _write(audit.DOSSIER_PHONE, code, {"phone": form.phone.data.strip()[:32]},
                      lambda conn: store.set_phone(conn, code, form.phone.data, via="staff", actor=_actor()))
    except InvalidPhone as exc:
        flash(_("Số điện thoại không hợp lệ: %(reason)s", reason=str(exc)), "error")
        return _back_to(code)
    except LookupError:
        abort(404)
    flash(_("Đã lưu số điện thoại %(phone)s.", phone=e164), "success")
    return _back_to(code)


@bp.post("/dossiers/slip")
def dossier_slip():
    form = ActionForm()
    code = form.code.data or ""
    cfg = get_config()
    try:
        _write(audit.DOSSIER_SLIP, code, None, lambda conn: submit_slip(conn, cfg, code, source="staff"))
    except LookupError:
        abort(404)
    except Exception as exc:  # the printer area's own errors: tell the official, log the detail
        log.exception("status slip for %s failed", code)
        flash(_("Không gửi được lệnh in: %(reason)s", reason=str(exc)[:200]), "error")
        return _back_to(code)
    flash(_("Đã gửi phiếu trạng thái tới máy in."), "success")
    return _back_to(code)


# --- notices ------------------------------------------------------------------------------------

INCOMING_LIMIT = 100
# What carried a notice (sms_gateway.api.Channel; NULL: the modem) and what a citizen's SMS asked.
CHANNEL_LABELS = {
    sms.Channel.MODEM: _l("SMS (modem)"),
    sms.Channel.ZNS: _l("Zalo ZNS"),
    sms.Channel.BRANDNAME: _l("SMS thương hiệu"),
}
INCOMING_LABELS = {
    sms.IncomingCommand.LOOKUP: _l("Tra cứu hồ sơ"),
    sms.IncomingCommand.STOP: _l("Ngừng nhận tin"),
    sms.IncomingCommand.UNKNOWN: _l("Không rõ yêu cầu"),
}


@bp.get("/notices")
def notice_list():
    state = request.args.get("state", "")
    if state not in NOTICE_STATES:
        state = ""
    cfg = get_config()
    with reading(get_engine()) as conn:
        rows = sms.list_notices(conn, state=state or None, limit=NOTICE_LIMIT)
        counts = sms.counts_by_state(conn)
        usage = sms.daily_usage(conn, 14, cfg.site.timezone)
        incoming = sms.list_incoming(conn, limit=INCOMING_LIMIT)
        opt_outs = sms.list_opt_outs(conn)
    price = cfg.staff.sms_part_price_vnd
    return render_template("staff/notices.html", rows=rows, state=state, states=NOTICE_STATES, counts=counts,
                           usage=list(reversed(usage)), price=price, actions=NOTICE_ACTIONS, form=ActionForm(),
                           total_parts=sum(d["parts"] for d in usage), total_sent=sum(d["sent"] for d in usage),
                           limit=NOTICE_LIMIT, incoming=incoming, opt_outs=opt_outs, channels=CHANNEL_LABELS,
                           commands=INCOMING_LABELS)


@bp.post("/notices/<int:notice_id>/<action>")
def notice_action(notice_id: int, action: str):
    if action not in NOTICE_ACTIONS:
        abort(404)
    fn, audit_action, _states = NOTICE_ACTIONS[action]
    try:
        _write(audit_action, f"notice:{notice_id}", None, lambda conn: fn(conn, notice_id, _actor()))
    except ValueError as exc:
        flash(_("Không thực hiện được: %(reason)s", reason=str(exc)), "error")
    else:
        flash(_("Đã cập nhật tin nhắn số %(id)d.", id=notice_id), "success")
    state = request.args.get("state", "")
    return redirect(url_for("staff.notice_list", state=state if state in NOTICE_STATES else None))


# --- print jobs ---------------------------------------------------------------------------------

PRINT_JOB_LIMIT = 50
JOB_STATE_LABELS = {
    JobState.PENDING: _l("Đang chờ in"),
    JobState.PRINTING: _l("Đang in"),
    JobState.DONE: _l("Đã in"),
    JobState.UNCERTAIN: _l("Chưa rõ đã in chưa"),
    JobState.EXPIRED: _l("Quá lâu, không in"),
    JobState.FAILED: _l("Lỗi, không in được"),
}
JOB_KIND_LABELS = {"ticket": _l("Số thứ tự"), "slip": _l("Phiếu trạng thái"), "test": _l("In thử")}
# A job still waiting or printing will come out by itself: reprinting it would print it twice.
REPRINTABLE = frozenset({JobState.DONE, JobState.UNCERTAIN, JobState.EXPIRED, JobState.FAILED})


@bp.get("/print-jobs")
def print_job_list():
    """Recent tickets and slips, so an official can reprint a lost or uncertain one."""
    with reading(get_engine()) as conn:
        rows = print_jobs.recent_jobs(conn, PRINT_JOB_LIMIT)
    return render_template("staff/print_jobs.html", rows=rows, form=ActionForm(), reprintable=REPRINTABLE,
                           state_labels=JOB_STATE_LABELS, kind_labels=JOB_KIND_LABELS)


@bp.post("/print-jobs/<int:job_id>/reprint")
def print_job_reprint(job_id: int):
    try:
        new_id = _write(audit.PRINT_REPRINT, f"print_job:{job_id}", None,
                        lambda conn: print_jobs.reprint(conn, job_id, source="staff"))
    except LookupError:
        abort(404)
    flash(_("Đã gửi lệnh in lại (lệnh số %(id)d).", id=new_id), "success")
    return redirect(url_for("staff.print_job_list"))


# --- satisfaction ratings -----------------------------------------------------------------------

RATING_GROUP_LABELS = {"day": _l("Theo ngày"), "month": _l("Theo tháng"), "counter": _l("Theo quầy")}


def _rating_query() -> tuple[str, Any, Any]:
    from datetime import date, timedelta

    group = request.args.get("by", "day")
    group = group if group in ratings.GROUPS else "day"
    today = local_now(get_config().site).date()

    def day(name: str, default: date) -> date:
        try:
            return date.fromisoformat(request.args.get(name, "")[:10])
        except ValueError:
            return default
    return group, day("from", today - timedelta(days=30)), day("to", today)


@bp.get("/ratings")
def rating_report():
    """Citizen satisfaction by day, month or counter, with a CSV export of the same figures."""
    group, start, end = _rating_query()
    with reading(get_engine()) as conn:
        lines = ratings.report(conn, group, start, end)
    return render_template("staff/ratings.html", lines=lines, group=group, start=start, end=end,
                           groups=RATING_GROUP_LABELS, scores=ratings.SCORES, reasons=ratings.REASONS,
                           push=ratings.push_status(get_config(), get_engine()))


@bp.get("/ratings.csv")
def rating_csv():
    group, start, end = _rating_query()
    with reading(get_engine()) as conn:
        body = ratings.to_csv(ratings.report(conn, group, start, end), group)
    return current_app.response_class(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="danh-gia-{group}-{start:%Y%m%d}-{end:%Y%m%d}.csv"'})


# --- device health ------------------------------------------------------------------------------

def _device_state_label(kind: str, state: str | None) -> str:
    from kiosk.printing.states import printer_message

    if state is None:
        return "—"
    if kind == stations.Device.PRINTER:
        return printer_message(state)
    if kind == stations.Device.MODEM:
        return str(MODEM_STATE_LABELS.get(state, state))
    return str(CAMERA_STATE_LABELS.get(state, state))


def _age_label(seconds: float) -> str:
    if seconds < 120:
        return _("%(n)s giây trước", n=int(seconds))
    if seconds < 7200:
        return _("%(n)s phút trước", n=int(seconds // 60))
    return _("%(n)s giờ trước", n=int(seconds // 3600))


def _hall() -> list[stations.Station]:
    """Every station of the hall, stale ones included ([station] stale_after_s of this box's config)."""
    try:
        return stations.list_stations(get_engine(), stale_after_s=get_config().station.stale_after_s)
    except sa.exc.SQLAlchemyError:  # the device checks above already say the database is down
        log.exception("cannot read the station list")
        return []


@bp.get("/health")
def health_page():
    report = health.gather(get_config(), get_engine())
    return render_template("staff/health.html", report=report, hall=_hall(), this_station=get_config().station.id)


@bp.get("/health.json")
def health_json():
    """The full report with details, for signed-in staff (/healthz has states and numbers only)."""
    report = health.gather(get_config(), get_engine())
    report["stations"] = [
        {"id": s.id, "name": s.name, "role": s.role, "age_s": round(s.age_s, 1), "stale": s.stale,
         "services": [{"service": b.service, "version": b.version, "host": b.host, "device": b.device,
                       "device_state": b.device_state, "age_s": round(b.age_s, 1), "stale": b.stale}
                      for b in s.services]}
        for s in _hall()]
    return jsonify(report)


# --- audit log (admins) -------------------------------------------------------------------------

@bp.get("/audit")
@admin_required
def audit_log():
    before = request.args.get("before", type=int)
    actor = request.args.get("actor", "")[:100] or None
    with reading(get_engine()) as conn:
        rows = audit.recent(conn, limit=AUDIT_PAGE, before_id=before, actor=actor)
    older = rows[-1]["id"] if len(rows) == AUDIT_PAGE else None
    return render_template("staff/audit.html", rows=rows, older=older, actor=actor or "")


# --- accounts -----------------------------------------------------------------------------------

@bp.route("/users", methods=["GET", "POST"])
@admin_required
def user_list():
    form = UserAddForm()
    if request.method == "POST" and form.validate_on_submit():
        cfg = get_config()
        try:
            _write(audit.USER_ADD, users.normalise_username(form.username.data), {"role": form.role.data},
                   lambda conn: users.create_user(conn, cfg.staff, form.username.data, form.password.data,
                                                  role=form.role.data, display_name=form.display_name.data or ""))
        except users.UserError as exc:
            flash(_("Không thêm được tài khoản: %(reason)s", reason=str(exc)), "error")
        else:
            flash(_("Đã thêm tài khoản."), "success")
            return redirect(url_for("staff.user_list"))
    with reading(get_engine()) as conn:
        rows = users.list_users(conn)
    return render_template("staff/users.html", rows=rows, form=form, action_form=ActionForm())


@bp.post("/users/<int:user_id>/<action>")
@admin_required
def user_action(user_id: int, action: str):
    calls = {
        "disable": (audit.USER_DISABLE, lambda conn: users.set_active(conn, user_id, False)),
        "enable": (audit.USER_ENABLE, lambda conn: users.set_active(conn, user_id, True)),
        "unlock": (audit.USER_UNLOCK, lambda conn: users.unlock(conn, user_id)),
    }
    if action not in calls:
        abort(404)
    if user_id == current_user.id and action == "disable":
        flash(_("Không thể tự khóa tài khoản của mình."), "error")
        return redirect(url_for("staff.user_list"))
    with reading(get_engine()) as conn:
        row = users.get(conn, user_id)
    if row is None:
        abort(404)
    audit_action, fn = calls[action]
    _write(audit_action, row["username"], None, fn)
    flash(_("Đã cập nhật tài khoản %(name)s.", name=row["username"]), "success")
    return redirect(url_for("staff.user_list"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    form = PasswordForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        cfg = get_config()
        with reading(get_engine()) as conn:
            row = users.get(conn, current_user.id)
        if not users.verify_password(row["password_hash"], form.current.data):
            error = _("Mật khẩu hiện tại không đúng.")
        elif form.new.data != form.repeat.data:
            error = _("Hai lần nhập mật khẩu mới không khớp.")
        else:
            try:
                _write(audit.USER_PASSWORD, row["username"], None,
                       lambda conn: users.set_password(conn, cfg.staff, row["id"], form.new.data))
            except users.UserError as exc:
                error = _("Mật khẩu mới chưa đạt yêu cầu: %(reason)s", reason=str(exc))
            else:
                logout_user()
                session.clear()
                flash(_("Đã đổi mật khẩu. Vui lòng đăng nhập lại bằng mật khẩu mới."), "success")
                return redirect(url_for("staff.login"))
    return render_template("staff/password.html", form=form, error=error), (400 if error else 200)


# --- settings (admins; read-only) -----------------------------------------------------------------


def settings_view(cfg: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every section's effective settings, flattened, with secrets replaced by a mark."""
    out = []
    for section, body in cfg.model_dump(mode="json", by_alias=True).items():
        if not isinstance(body, dict):
            continue
        rows = []
        # Sub-tables ([source.opencps] ...) are flattened so that their secrets are masked too.
        flat: dict[str, Any] = {}
        for key, value in body.items():
            if isinstance(value, dict) and any(isinstance(v, dict) or SECRET_KEYS.search(k) for k, v in value.items()):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        for key, value in flat.items():
            if SECRET_KEYS.search(key.rpartition(".")[2]):
                shown = "••••••" if value else ""
            elif key == "url" and isinstance(value, str):
                shown = str(sa.make_url(value).render_as_string(hide_password=True)) if value else ""
            elif isinstance(value, (dict, list)):
                shown = json.dumps(value, ensure_ascii=False)
            else:
                shown = "" if value is None else str(value)
            rows.append((key, shown))
        out.append((section, rows))
    return out


@bp.get("/settings")
@admin_required
def settings():
    cfg = get_config()
    return render_template("staff/settings.html", sections=settings_view(cfg), source=cfg.source)
