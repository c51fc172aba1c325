"""Citizen screens: home, scan, keypad, dossier status, SMS sign-up, status slip, queue ticket.

Every input source (USB scanner wedge, camera scanner events, on-screen keypad) ends in the same
POST /lookup, and the server parses it with `kiosk.scanner.payload` whatever the browser claims.
Results are rendered straight from the POST (no redirect: one round trip, and the secret never
appears in a URL or the history).
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from kiosk.context import get_config, get_engine, get_source
from kiosk.i18n import LANGUAGES, SESSION_KEY
from kiosk.printing import jobs as printing
from kiosk.printing.states import CANNOT_PRINT, printer_message
from kiosk.queue import core as queue
from kiosk.ratings import core as ratings
from kiosk.scanner.payload import ParsedPayload, PayloadRejected, parse_with_config
from kiosk.scanner.status import read_status
from kiosk.security import is_kiosk_screen
from kiosk.sources.api import lookup as lookup_dossier
from kiosk.staff import audit
from kiosk.store import codes, dossiers
from kiosk.web import ratelimit
from kiosk.web.ratelimit import make_limiter
from kiosk.web.screens import fmt_date, freshness, status_screen
from motcua import hours
from motcua.db import reading
from motcua.phones import mask
from motcua.textnorm import clean_text

log = logging.getLogger(__name__)

bp = Blueprint("citizen", __name__, template_folder="../templates", static_folder=None)

SECRET_RX = re.compile(r"[A-Za-z0-9]{4,32}")
REQUEST_KEY_RX = re.compile(r"[0-9a-f]{32}")
MAX_FIELD = 600  # longer input is refused before parsing; a real payload is far shorter
SOURCES = ("keypad", "wedge", "camera")
GET_SCREENS = {"/", "/scan", "/code", "/ticket"}
LIMITED_VIEWS = ("citizen.lookup", "citizen.sms", "citizen.slip")
# Paths of other areas: their errors keep those areas' own form (JSON, staff pages), not the kiosk's.
OTHER_AREAS = ("/scanner", "/api", "/staff", "/queue", "/counter", "/display", "/printer", "/healthz", "/static")


def _site_context() -> dict[str, Any]:
    cfg = get_config()
    return {"site": cfg.site, "hours_lines": hours.long_lines(cfg.site.opening_hours, _)}


def _screen(template: str, status: int = 200, **ctx: Any) -> tuple[str, int]:
    return render_template(f"kiosk/{template}", **_site_context(), **ctx), status


def _switch_language() -> None:
    lang = request.values.get("lang")
    if lang in LANGUAGES:
        session[SESSION_KEY] = lang


# --- screens reached by GET ------------------------------------------------------------------------

@bp.get("/")
def home() -> Any:
    cfg = get_config()
    if not hours.is_open(cfg.site):
        return _closed()
    return _screen("home.html", screen="home")


@bp.get("/scan")
def scan() -> Any:
    camera = "starting"
    try:
        camera = read_status(get_config()).get("state", "unavailable")
    except Exception:  # the screen still works; the event stream will say what the camera does
        log.exception("could not read the scanner status")
    return _screen("scan.html", screen="scan", camera=camera)


def _closed() -> Any:
    return _screen("closed.html", screen="closed", opens_again=_opens_again(get_config().site))


def _opens_again(site: Any) -> str | None:
    """'Mở cửa lại lúc 13:30 hôm nay.' / '... ngày mai.' / '... lúc 7:30, Thứ Hai 08/12.'"""
    now = hours.local_now(site)
    opens = hours.next_opening(site, now)
    if opens is None:
        return None
    at = f"{opens.hour}:{opens.minute:02d}"
    if opens.date() == now.date():
        return _("Mở cửa lại lúc %(time)s hôm nay.", time=at)
    if opens.date() == (now + timedelta(days=1)).date():
        return _("Mở cửa lại lúc %(time)s ngày mai.", time=at)
    return _("Mở cửa lại lúc %(time)s, %(day)s %(date)s.", time=at, day=_(hours.DAYS_LONG[opens.weekday()]),
             date=f"{opens:%d/%m}")


def _agency_prefix() -> str:
    """The commune's agency prefix shown before the digits, or "" (then the full keypad is offered)."""
    cfg = get_config()
    with reading(get_engine()) as conn:
        found = codes.agency_prefixes(conn, cfg.site.agency_prefixes)
    return found[0] if found else ""


@bp.route("/code", methods=["GET", "POST"])
def code_entry() -> Any:
    """The keypad. POSTed from "not found" / "wrong code" screens, it opens with what was typed."""
    prefix = _agency_prefix()
    typed, secret = _field("code")[:64].strip(), _field("secret")[:32].strip()
    digits = bool(prefix) and request.form.get("mode", "digits") == "digits" and not secret
    if typed and not codes.compact(typed).isdigit():
        digits = False
    if digits:
        typed = codes.group_digits(typed)
    return _screen("code.html", screen="code", prefix=prefix, mode="digits" if digits else "full",
                   short_days=get_config().kiosk.short_code_days, typed=typed,
                   typed_secret=secret if SECRET_RX.fullmatch(secret or "") else "")


@bp.get("/lang/<lang>")
def language(lang: str) -> Response:
    if lang in LANGUAGES:
        session[SESSION_KEY] = lang
    target = request.args.get("next", "/")
    # Only our own GET screens: nothing from outside can steer the browser elsewhere.
    return redirect(target if target in GET_SCREENS else "/", 303)


@bp.get("/reset")
def reset() -> Response:
    """Idle timeout: forget the language choice and anything else this visit set."""
    session.clear()
    return redirect(url_for("citizen.home"), 303)


# --- dossier lookup ----------------------------------------------------------------------------

def _field(name: str) -> str:
    # NFC, and no zero-width or bidi characters (a scanner or a gadget may add them): motcua.textnorm.
    return clean_text((request.form.get(name) or "")[: MAX_FIELD + 1])


def _parse_form() -> tuple[ParsedPayload, str | None]:
    """The parsed payload and the secret from the form, or PayloadRejected. The same rules for every source."""
    cfg = get_config()
    payload, code, secret = _field("payload"), _field("code").strip(), _field("secret").strip()
    if any(len(v) > MAX_FIELD for v in (payload, code, secret)):
        raise PayloadRejected("input too long")
    parsed = parse_with_config(payload or code, cfg.scanner)
    if secret and not SECRET_RX.fullmatch(secret):
        raise PayloadRejected("typed secret has an unexpected shape")
    return parsed, (parsed.secret or secret or None)


def _parse_request() -> tuple[str, str | None]:
    """(code, secret) from the form, or PayloadRejected."""
    parsed, secret = _parse_form()
    return parsed.code, secret


def _render_status(code: str, secret: str | None, notice: str | None = None, notice_tone: str = "info", *,
                   receipt: ParsedPayload | None = None, ask_source: bool = False,
                   not_found: dict[str, Any] | None = None, print_key: str | None = None,
                   printed: bool = False) -> Any:
    """The status screen. `ask_source`: a fresh lookup, which may ask the provincial system (within
    the deadline); actions on a dossier already shown answer from the store. `not_found`: what the
    not-found screen shows instead of the bare code (the keypad's typed text)."""
    cfg = get_config()
    source = get_source() if ask_source else None
    found = lookup_dossier(cfg, get_engine(), source, code, secret)
    if found.row is None:
        shown = receipt if receipt is not None and receipt.has_receipt_details else None
        ctx = {"code": code, **(not_found or {})}
        return _screen("notfound.html", 404, screen="notfound", receipt=shown,
                       receipt_date=fmt_date(shown.appointment_date) if shown else None,
                       source_failed=found.source_failed, **ctx)
    view = dossiers.public_view(found.row, secret, hours.local_now(cfg.site).date())
    fresh = freshness(found.confirmed_at or found.row["updated_at"], cfg) if cfg.source_.kind != "none" else None
    return _screen("status.html", screen="status", s=status_screen(view, cfg), secret=secret or "",
                   secret_wrong=bool(secret) and not view.secret_ok, notice=notice, notice_tone=notice_tone,
                   kiosk_screen=is_kiosk_screen(), freshness=fresh, source_failed=found.source_failed,
                   print_key=print_key or new_request_key(), printed=printed)


@bp.post("/lookup")
def lookup() -> Any:
    _switch_language()
    source = request.form.get("source", "keypad")
    if source == "keypad":
        return _keypad_lookup()
    try:
        parsed, secret = _parse_form()
    except PayloadRejected as exc:
        log.info("lookup refused (%s): %s", source if source in SOURCES else "?", exc.reason)
        return _screen("unreadable.html", 400, screen="unreadable", typed=None)
    return _render_status(parsed.code, secret, receipt=parsed, ask_source=True)


def _keypad_lookup() -> Any:
    """Typed input: separators forgiven, the commune's short forms resolved (kiosk.store.codes); on any
    failure the screen says what was typed and the citizen can correct it instead of starting over."""
    cfg = get_config()
    typed, secret = (_field("payload") or _field("code")).strip(), _field("secret").strip()
    mode = "digits" if request.form.get("mode") == "digits" else "full"
    kept = {"typed": typed[:64], "typed_secret": secret[:32] if SECRET_RX.fullmatch(secret) else "", "mode": mode}
    if len(typed) > MAX_FIELD or len(secret) > MAX_FIELD or (secret and not SECRET_RX.fullmatch(secret)):
        log.info("keypad lookup refused: input of an unexpected shape")
        return _screen("unreadable.html", 400, screen="unreadable", **kept)
    candidate = typed
    try:
        parsed = parse_with_config(typed, cfg.scanner)
        candidate, secret = parsed.code, parsed.secret or secret
    except PayloadRejected:
        parsed = None
    today = hours.local_now(cfg.site).date()
    with reading(get_engine()) as conn:
        prefixes = codes.agency_prefixes(conn, cfg.site.agency_prefixes)
        found = codes.resolve(conn, candidate, prefixes, today, cfg.kiosk.short_code_days)
    if found:
        return _render_status(found, secret or None, ask_source=True)
    if parsed is not None and get_source() is not None:
        # A whole code the store does not know: the provincial system may.
        return _render_status(parsed.code, secret or None, ask_source=True,
                              not_found={"code": typed, "short": False, **kept})
    key = codes.compact(typed)
    if parsed is None and not (key.isdigit() and len(key) in (1, 2, 3, 4, 10) and prefixes):
        log.info("keypad lookup refused: not a dossier code")
        return _screen("unreadable.html", 400, screen="unreadable", **kept)
    short = parsed is None and len(key) <= 4
    return _screen("notfound.html", 404, screen="notfound", code=typed, short=short,
                   short_days=cfg.kiosk.short_code_days, **kept)


# --- actions on a dossier (from the status screen) -------------------------------------------

def _dossier_from_form() -> tuple[str, str | None, Any] | Response:
    """The dossier a form names (code, secret, row), or the unreadable / not-found screen."""
    try:
        code, secret = _parse_request()
    except PayloadRejected:
        return make_response(_screen("unreadable.html", 400, screen="unreadable", typed=None))
    with reading(get_engine()) as conn:
        row = dossiers.find(conn, code)
    if row is None:
        return make_response(_screen("notfound.html", 404, screen="notfound", code=code))
    return code, secret, row


def _kiosk_only() -> Any | None:
    if not is_kiosk_screen():
        return _screen("message.html", 403, screen="message", tone="warn",
                       title=_("Chỉ dùng được tại máy tra cứu"),
                       lines=[_("Việc này chỉ làm được trên màn hình tại Bộ phận Một cửa.")])
    return None


@bp.post("/slip")
def slip() -> Any:
    refused = _kiosk_only()
    if refused:
        return refused
    found = _dossier_from_form()
    if isinstance(found, Response):  # the screen's own tuple would look like a found dossier
        return found
    code, secret, _row = found
    engine = get_engine()
    with reading(engine) as conn:
        state = printing.printer_state(conn, get_config().station.id)["state"]
    if state in CANNOT_PRINT:
        return _render_status(code, secret, printer_message(state), "warn")
    key = request_key()
    with reading(engine) as conn:
        again = printing.job_for_key(conn, key) is not None  # a second tap: the same slip, not counted
    if not again and not ratelimit.allow("slip", get_config().kiosk.slip_rate, code):
        return _render_status(code, secret, _("Phiếu của hồ sơ này vừa được in. Mời bạn lấy phiếu ở khe máy in "
                                              "hoặc hỏi cán bộ."), "warn")
    with engine.begin() as conn:
        printing.submit_slip(conn, get_config(), code, request_key=key)
    # The same key again: a tap on the confirmation is the same request, never a second slip.
    return _render_status(code, secret, _("Đang in phiếu. Mời bạn lấy phiếu ở khe máy in."), "good",
                          print_key=key, printed=True)


def new_request_key() -> str:
    """An idempotency key for a page whose button prints: every tap on that page is one request."""
    return secrets.token_hex(16)


def request_key() -> str | None:
    key = request.form.get("request_key", "")
    return key if REQUEST_KEY_RX.fullmatch(key) else None


@bp.post("/sms")
def sms() -> Any:
    found = _dossier_from_form()
    if isinstance(found, Response):  # the screen's own tuple would look like a found dossier
        return found
    code, secret, row = found
    cfg = get_config()
    view = dossiers.public_view(row, secret, hours.local_now(cfg.site).date())
    if view.has_phone:
        masked = f" ({view.phone_masked})" if view.phone_masked else ""
        return _render_status(code, secret,
                              _("Khi có kết quả, chúng tôi sẽ nhắn tin đến số điện thoại trong hồ sơ%(masked)s.",
                                masked=masked), "good")
    if not view.secret_ok:
        # Without the receipt anyone could attach their number to someone else's dossier.
        return _render_status(code, secret, _("Để thêm số điện thoại, hãy quét mã QR trên giấy tiếp nhận "
                                              "hoặc nhập cả mã tra cứu."), "warn")
    refused = _kiosk_only()
    if refused:
        return refused
    return _screen("phone.html", screen="phone", code=code, secret=secret or "", error=None)


def _phone_already_set(code: str, secret: str | None) -> Any:
    log.info("kiosk phone for %s not saved: the dossier already has one", code)
    return _render_status(code, secret, _("Hồ sơ này đã có số điện thoại nhận tin nhắn. Nếu cần đổi số, "
                                          "vui lòng hỏi cán bộ."), "warn")


@bp.post("/sms/phone")
def sms_phone() -> Any:
    refused = _kiosk_only()
    if refused:
        return refused
    found = _dossier_from_form()
    if isinstance(found, Response):  # the screen's own tuple would look like a found dossier
        return found
    code, secret, row = found
    phone = _field("phone")[:40]
    cfg = get_config()
    engine = get_engine()
    view = dossiers.public_view(row, secret, hours.local_now(cfg.site).date())
    if not view.secret_ok:
        return _render_status(code, secret)
    if view.has_phone:  # another sign-up (or an official) was first: say so, as the conditional UPDATE would
        return _phone_already_set(code, secret)
    if request.form.get("consent") != "yes":
        return _screen("phone.html", 400, screen="phone", code=code, secret=secret or "", phone=phone,
                       error=_("Bạn cần đồng ý nhận tin nhắn trước khi gửi."))
    try:
        with engine.begin() as conn:
            e164 = dossiers.add_phone_once(conn, code, phone, via="kiosk", actor="kiosk: thêm số điện thoại")
            audit.record(conn, actor="kiosk", action=audit.DOSSIER_PHONE, target=code,
                         detail={"via": "kiosk", "phone": mask(e164)}, address=request.remote_addr)
    except dossiers.PhoneAlreadySet:
        return _phone_already_set(code, secret)
    except dossiers.InvalidPhone:
        log.info("kiosk phone refused for %s: not a valid mobile number", code)  # the number stays out of the log
        return _screen("phone.html", 400, screen="phone", code=code, secret=secret or "", phone=phone,
                       error=_("Số điện thoại chưa đúng. Hãy nhập số di động 10 chữ số, ví dụ 0912 345 678."))
    except LookupError:
        return _screen("notfound.html", 404, screen="notfound", code=code)
    return _render_status(code, secret, _("Đã lưu số điện thoại. Bạn sẽ nhận tin nhắn khi có kết quả."), "good")


# --- queue ticket ------------------------------------------------------------------------------

@bp.get("/ticket")
def ticket_services() -> Any:
    cfg = get_config()
    if not hours.is_open(cfg.site):
        return _closed()
    services = queue.list_services(cfg)
    priority = request.args.get("priority") == "1"
    return _screen("services.html", screen="services", services=services, request_key=new_request_key(),
                   priority=priority)


@bp.post("/ticket")
def take_ticket() -> Any:
    refused = _kiosk_only()
    if refused:
        return refused
    cfg = get_config()
    if not hours.is_open(cfg.site):
        return _closed()
    service = request.form.get("service", "")[:64]
    if service not in {s.code for s in queue.list_services(cfg)}:
        return redirect(url_for("citizen.ticket_services"), 303)
    engine = get_engine()
    with reading(engine) as conn:
        state = printing.printer_state(conn, get_config().station.id)["state"]
    if state in CANNOT_PRINT:
        return _screen("message.html", 503, screen="message", tone="warn", title=printer_message(state),
                       lines=[_("Vui lòng báo cán bộ để được phục vụ.")])
    key = request_key()
    with reading(engine) as conn:
        done = printing.job_for_key(conn, key)
    if done is None and not ratelimit.allow("ticket", cfg.kiosk.station_ticket_rate, request.remote_addr or "?"):
        return _screen("message.html", 429, screen="message", tone="warn",
                       title=_("Máy vừa phát nhiều số liên tiếp"),
                       lines=[_("Vui lòng chờ một phút rồi lấy số, hoặc hỏi cán bộ.")])
    try:
        with engine.begin() as conn:
            if key:  # two taps sending this key at once: the second waits here, then finds the first's job
                printing.one_at_a_time(conn, f"ticket-key:{key}")
            done = printing.job_for_key(conn, key)
            if done is None:
                ticket = queue.take_ticket(conn, cfg, service, priority=request.form.get("priority") == "1")
                printing.submit_ticket(conn, cfg, ticket, request_key=key)
    except queue.QueueFull as exc:
        return _queue_full(exc)
    if done is not None:  # a second tap on the service button: the number already taken, not another
        return _screen("message.html", screen="message", tone="good",
                       title=_("Bạn đã lấy số %(label)s", label=done["ref"]),
                       lines=[_("Mời bạn lấy phiếu ở khe máy in và chờ gọi số.")])
    return _screen("ticket.html", screen="ticket", ticket=ticket, printed=True)


def _queue_full(exc: Any) -> Any:
    """No number now: a sentence for the citizen, a warning for the official (log, staff health page)."""
    log.warning("queue ticket refused for service %s: %s", exc.service,
                "today's numbers are used up ([queue] number_digits)" if exc.reason == "numbers"
                else "too many waiting ([queue] max_waiting)")
    ratelimit.count_refusal(exc.reason)
    if exc.reason == "numbers":
        title = _("Đã hết số thứ tự của dịch vụ này hôm nay")
    else:
        title = _("Dịch vụ này đang có rất nhiều người chờ")
    return _screen("message.html", 503, screen="message", tone="warn", title=title,
                   lines=[_("Vui lòng báo cán bộ để được phục vụ.")])


# --- satisfaction rating ------------------------------------------------------------------------

def _rating_screen(channel: str, counter: str | None, **where: Any) -> Any:
    """One rating flow for the kiosk (after the status screen) and a counter's citizen-facing screen:
    faces -> (reasons, when the score is low) -> thanks. Anonymous: the dossier code is only used to
    read the procedure's name, and is not stored."""
    ctx = {"channel": channel, "counter": counter, "scores": ratings.SCORES, "reasons": ratings.REASONS,
           "code": _field("code")[:64] if request.method == "POST" else ""}
    if request.method == "GET" or not request.form.get("score"):
        return _screen("rate.html", screen="rate", step="faces", **ctx)
    try:
        score = int(request.form.get("score", ""))
    except ValueError:
        score = 0
    if score not in ratings.SCORES:
        return _screen("rate.html", 400, screen="rate", step="faces", **ctx)
    if score <= ratings.ASK_REASONS_AT and not request.form.get("final"):
        return _screen("rate.html", screen="rate", step="reasons", score=score, **ctx)
    cfg = get_config()
    chosen = [r for r in request.form.getlist("reason")[:len(ratings.REASONS)] if r in ratings.REASONS]
    with get_engine().begin() as conn:
        procedure = None
        if ctx["code"]:
            row = dossiers.find(conn, ctx["code"])
            procedure = row["procedure"] if row is not None else None
        ratings.record(conn, cfg, score, chosen, channel=channel, counter=counter, procedure=procedure, **where)
    return _screen("rate.html", screen="rate", step="thanks", **ctx)


@bp.route("/rate", methods=["GET", "POST"])
def rate() -> Any:
    refused = _kiosk_only()
    return refused or _rating_screen("kiosk", None)


@bp.route("/counter/<counter>/rate", methods=["GET", "POST"])
def counter_rate(counter: str) -> Any:
    """The counter's citizen-facing screen (signed in as the official, by the staff guard)."""
    cfg = get_config()
    try:
        queue.services_at_counter(cfg, counter)
    except LookupError:
        abort(404)
    with reading(get_engine()) as conn:
        service = queue.last_service_at(conn, counter)
    return _rating_screen("counter", counter, service_code=service)


@bp.errorhandler(Exception)
def _crash(exc: Exception) -> Any:
    """Never a stack trace on the kiosk: a sentence for the citizen, the details in the log."""
    if isinstance(exc, HTTPException):
        return _screen("message.html", exc.code or 500, screen="message", tone="warn",
                       title=_("Không thực hiện được"), lines=[_("Vui lòng về trang đầu và thử lại.")])
    log.exception("unhandled error on %s %s", request.method, request.path)
    try:
        return _screen("message.html", 500, screen="message", tone="bad", title=_("Xin lỗi, máy đang gặp sự cố"),
                       lines=[_("Vui lòng thử lại hoặc hỏi cán bộ.")])
    except Exception:  # the template itself failed: plain text, still no trace
        log.exception("the error screen failed too")
        return Response("Xin lỗi, máy đang gặp sự cố. Vui lòng hỏi cán bộ.", 500, mimetype="text/plain")


# --- app set-up --------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Register the citizen screens with their shared lookup limit and the kiosk's error pages."""
    cfg = app.config["MOTCUA"]
    app.register_blueprint(bp)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # a broken counter file must not stop lookups
    limiter = make_limiter(app)
    # One shared budget for everything that reveals whether a dossier exists.
    shared = limiter.shared_limit(lambda: app.config["MOTCUA"].kiosk.public_lookup_rate, scope="dossier-lookup")
    for endpoint in LIMITED_VIEWS:
        app.view_functions[endpoint] = _station_limited(shared(app.view_functions[endpoint]))
    app.extensions["motcua.limiter"] = limiter

    @app.context_processor
    def _kiosk_settings() -> dict[str, object]:
        # Only the kiosk's own screen listens to the camera scanner (the stream refuses other clients).
        return {"idle_ms": cfg.kiosk.idle_timeout_s * 1000, "kiosk_screen": is_kiosk_screen()}

    @app.errorhandler(429)
    def _too_many(exc: HTTPException):
        if not _is_citizen_page():
            return exc
        return render_template("kiosk/message.html", screen="message", tone="warn", site=cfg.site,
                               title=_("Bạn đã tra cứu quá nhiều lần"),
                               lines=[_("Vui lòng chờ một phút rồi thử lại.")]), 429

    @app.errorhandler(404)
    def _not_found(exc: HTTPException):
        if not _is_citizen_page():
            return exc
        return render_template("kiosk/message.html", screen="message", tone="warn", site=cfg.site,
                               title=_("Không có trang này"), lines=[]), 404


def _station_limited(view: Any) -> Any:
    """The LAN limit does not apply to the kiosk screen; this generous one per station does."""
    import functools

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if is_kiosk_screen() and not ratelimit.allow("lookup", get_config().kiosk.station_lookup_rate,
                                                      request.remote_addr or "?"):
            abort(429)
        return view(*args, **kwargs)

    return limited


def _is_citizen_page() -> bool:
    return not request.path.startswith(OTHER_AREAS)
