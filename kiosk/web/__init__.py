"""The citizen-facing kiosk screens (blueprint `citizen`). See docs/kiosk.md."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

LIMITED_VIEWS = ("citizen.lookup", "citizen.sms", "citizen.slip")
CITIZEN_PREFIXES = ("/scanner", "/api", "/staff", "/queue", "/counter", "/display", "/printer", "/healthz", "/static")


def init_app(app: Flask) -> None:
    from kiosk.web import views
    from kiosk.web.ratelimit import make_limiter

    cfg = app.config["MOTCUA"]
    app.register_blueprint(views.bp)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # a broken counter file must not stop lookups
    limiter = make_limiter(app)
    # One shared budget for everything that reveals whether a dossier exists.
    shared = limiter.shared_limit(lambda: app.config["MOTCUA"].kiosk.public_lookup_rate, scope="dossier-lookup")
    for endpoint in LIMITED_VIEWS:
        app.view_functions[endpoint] = shared(app.view_functions[endpoint])
    app.extensions["motcua.limiter"] = limiter

    @app.context_processor
    def _kiosk_settings() -> dict[str, object]:
        # Only the kiosk's own screen listens to the camera scanner (the stream refuses other clients).
        return {"idle_ms": cfg.kiosk.idle_timeout_s * 1000, "kiosk_screen": views.is_kiosk_screen()}

    @app.errorhandler(429)
    def _too_many(exc: HTTPException):
        if not _is_citizen_page():
            return exc
        return render_template("kiosk/message.html", screen="message", tone="warn", site=cfg.site,
                               title=_t("Bạn đã tra cứu quá nhiều lần"),
                               lines=[_t("Vui lòng chờ một phút rồi thử lại.")]), 429

    @app.errorhandler(404)
    def _not_found(exc: HTTPException):
        if not _is_citizen_page():
            return exc
        return render_template("kiosk/message.html", screen="message", tone="warn", site=cfg.site,
                               title=_t("Không có trang này"), lines=[]), 404


def _t(msgid: str) -> str:
    from flask_babel import gettext

    return gettext(msgid)


def _is_citizen_page() -> bool:
    return not request.path.startswith(CITIZEN_PREFIXES)
