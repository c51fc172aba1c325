"""Queue routes: take a number (JSON), the counter page for officials, the hall display.

Sign-in for /counter/ is enforced in one place by kiosk/staff (guard); these views only do the work.
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from kiosk.context import get_config, get_engine
from kiosk.i18n import current_language
from kiosk.printing.jobs import printer_state, submit_ticket
from kiosk.queue import core
from kiosk.queue.announce import AnnouncementUnavailable, announcement_text, chime_wav, speak_wav
from kiosk.queue.schema import queue_calls
from kiosk.security import is_kiosk_screen
from kiosk.web import ratelimit
from motcua.db import reading

log = logging.getLogger(__name__)
bp = Blueprint("queue", __name__, template_folder="templates", static_folder="static",
               static_url_path="/queue/static")

# Why an action at the counter could not be done (core.QueueError's reason -> sentence for the official).
QUEUE_ERRORS = {
    "no_current": _l("Quầy chưa gọi số nào."),
    "same_service": _l("Số này đã thuộc dịch vụ đó."),
    "busy": _l("Hệ thống đang bận, vui lòng bấm lại."),
}


def _error(status: int, code: str, vi: str, en: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message_vi": vi, "message_en": en}), status


# --- taking a number ---------------------------------------------------------------------------

@bp.post("/queue/tickets")
def take() -> Any:
    """Take a number and queue its ticket for printing: JSON {"service": "HT"} -> 201 with the ticket.

    Only the kiosk screens (`[kiosk] kiosk_addresses`) may take numbers: a LAN visitor must not be
    able to fill the queue.
    """
    cfg = get_config()
    if not is_kiosk_screen():
        return _error(403, "forbidden", "Chỉ lấy số tại kiosk.", "Numbers are taken at the kiosk only.")
    data = request.get_json(silent=True)
    service = data.get("service") if isinstance(data, dict) else None
    if not isinstance(service, str) or not service.strip():
        return _error(400, "bad_request", "Thiếu dịch vụ.", 'Send JSON {"service": CODE}.')
    print_it = not (isinstance(data, dict) and data.get("print") is False)
    if not ratelimit.allow("ticket", cfg.kiosk.station_ticket_rate, request.remote_addr or "?"):
        return _error(429, "too_many", "Máy vừa phát nhiều số liên tiếp. Vui lòng chờ một phút.",
                      "Many numbers were just taken here. Please wait a minute.")
    try:
        with get_engine().begin() as conn:
            ticket = core.take_ticket(conn, cfg, service)
            job_id = submit_ticket(conn, cfg, ticket) if print_it else None
            printer = printer_state(conn, cfg.station.id)
    except LookupError:
        return _error(404, "unknown_service", "Không có dịch vụ này.", "No such service.")
    except core.QueueFull as exc:
        log.warning("queue ticket refused for service %s: %s", exc.service, exc.reason)
        ratelimit.count_refusal(exc.reason)
        if exc.reason == "numbers":
            return _error(503, "numbers_used_up", "Đã hết số thứ tự của dịch vụ này hôm nay. Vui lòng báo cán bộ.",
                          "Today's numbers for this service are used up. Please tell an official.")
        return _error(503, "too_many_waiting", "Dịch vụ này đang có rất nhiều người chờ. Vui lòng báo cán bộ.",
                      "Very many people are waiting for this service. Please tell an official.")
    log.info("ticket %s taken (%s), print job %s", ticket.label, ticket.service_code, job_id)
    return jsonify({"ticket": ticket.to_dict(), "print_job": job_id, "printer": printer}), 201


@bp.get("/queue/services")
def services() -> Any:
    with reading(get_engine()) as conn:
        return jsonify({"services": core.service_summary(conn, get_config())})


# --- counter page (officials) ------------------------------------------------------------------

@bp.get("/counter/")
def counter_index() -> Any:
    cfg = get_config()
    rows = [(c, [s for s in core.list_services(cfg) if c in s.counters]) for c in core.list_counters(cfg)]
    return render_template("queue/counter_index.html", counters=rows)


def _counter_or_404(counter: str) -> None:
    if counter not in core.list_counters(get_config()):
        abort(404)


@bp.get("/counter/<counter>")
def counter_page(counter: str) -> Any:
    _counter_or_404(counter)
    with reading(get_engine()) as conn:
        view = core.counter_view(conn, get_config(), counter)
    return render_template("queue/counter.html", view=view)


@bp.get("/counter/<counter>/state")
def counter_state(counter: str) -> Any:
    _counter_or_404(counter)
    with reading(get_engine()) as conn:
        view = core.counter_view(conn, get_config(), counter)
    current = view["current"]
    return jsonify({
        "counter": counter,
        "current": {"label": current["label"], "service_code": current["service_code"],
                    "call_count": current["call_count"]} if current else None,
        "services": view["services"],
    })


@bp.post("/counter/<counter>/<action>")
def counter_action(counter: str, action: str) -> Any:
    _counter_or_404(counter)
    cfg = get_config()
    try:
        with get_engine().begin() as conn:
            if action == "next":
                called = core.call_next(conn, cfg, counter)
                if called is None:
                    flash(_("Không còn ai đang chờ."), "info")
                else:
                    flash(_("Đã gọi số %(label)s.", label=called.label), "ok")
            elif action == "recall":
                called = core.recall(conn, cfg, counter)
                flash(_("Đã gọi lại số %(label)s.", label=called.label), "ok")
            elif action == "skip":
                called = core.skip(conn, cfg, counter)
                flash(_("Đã bỏ qua số %(label)s.", label=called.label), "ok")
            elif action == "finish":
                called = core.finish(conn, cfg, counter)
                flash(_("Đã xong số %(label)s.", label=called.label), "ok")
            elif action == "transfer":
                target = request.form.get("service", "")
                try:
                    called = core.transfer(conn, cfg, counter, target)
                except LookupError:
                    flash(_("Chọn dịch vụ để chuyển."), "error")
                else:
                    svc = core.get_service(cfg, called.service_code)
                    name = svc.name_en if current_language() == "en" and svc.name_en else svc.name_vi
                    flash(_("Đã chuyển số %(label)s sang %(service)s.", label=called.label, service=name), "ok")
            else:
                abort(404)
    except core.QueueError as exc:
        reason = QUEUE_ERRORS.get(str(exc))
        if reason is None:  # a reason without a sentence yet: the official still sees that it failed
            log.warning("queue action %s at %s failed: %s", action, counter, exc)
            reason = _l("Không thực hiện được, vui lòng bấm lại.")
        flash(str(reason), "error")
    return redirect(url_for("queue.counter_page", counter=counter))


# --- hall display ------------------------------------------------------------------------------

def _service_filter() -> list[str] | None:
    raw = request.args.get("services", "")
    codes = [c for c in (p.strip() for p in raw.split(",")) if c]
    if not codes:
        return None
    try:
        return [core.get_service(get_config(), c).code for c in codes]
    except LookupError:
        abort(404)


@bp.get("/display")
def display() -> Any:
    cfg = get_config()
    codes = _service_filter()
    with reading(get_engine()) as conn:
        state = core.display_state(conn, cfg, codes)
    return render_template("queue/display.html", state=state, cfg=cfg, services_param=",".join(codes or []))


@bp.get("/display/state")
def display_state() -> Any:
    after = request.args.get("after", type=int)
    with reading(get_engine()) as conn:
        state = core.display_state(conn, get_config(), _service_filter(), after)
    for a in state["announce"]:
        a["audio"] = url_for("queue.announcement", call_id=a["id"]) if get_config().queue.announce else None
    return jsonify(state)


@bp.get("/display/announce/<int:call_id>.wav")
def announcement(call_id: int) -> Any:
    """The spoken call for one recorded call (only real calls: no text comes from the request)."""
    cfg = get_config()
    with reading(get_engine()) as conn:
        call = conn.execute(sa.select(queue_calls).where(queue_calls.c.id == call_id)).mappings().first()
    if call is None or not cfg.queue.announce:
        abort(404)
    try:
        wav = speak_wav(announcement_text(call["label"], call["counter"]), cfg.queue.espeak_voice,
                        cfg.queue.espeak_speed)
    except AnnouncementUnavailable as exc:
        log.warning("announcement for call %s not spoken: %s", call_id, exc)
        abort(503)
    return Response(wav, mimetype="audio/wav", headers={"Cache-Control": "public, max-age=86400"})


@bp.get("/display/chime.wav")
def chime() -> Any:
    return Response(chime_wav(), mimetype="audio/wav", headers={"Cache-Control": "public, max-age=86400"})


@bp.errorhandler(404)
def _not_found(exc: Exception) -> Any:
    """404s raised by these views (unknown counter or service): a plain page, or JSON for the API."""
    if request.path.startswith("/queue/") or request.path.endswith((".wav", "/state")):
        return _error(404, "not_found", "Không tìm thấy.", "Not found.")
    return render_template("queue/not_found.html"), 404

