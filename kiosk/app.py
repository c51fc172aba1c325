"""The kiosk web app factory (Flask), shaped like Flask's tutorial app: one blueprint per area,
each imported here and registered in `create_app`. Request helpers live in kiosk/context.py."""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from kiosk import api, health, i18n, security
from kiosk.context import CONFIG_KEY, ENGINE_KEY, SOURCE_KEY
from kiosk.printing import web as printing_web
from kiosk.queue import web as queue_web
from kiosk.scanner import web as scanner_web
from kiosk.sources.api import make_source
from kiosk.staff import guard as staff_guard
from kiosk.staff import views as staff_views
from kiosk.web import views as citizen_views
from motcua.config import Config, load_config
from motcua.db import make_engine

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, engine: sa.Engine | None = None,
               test_config: dict[str, Any] | None = None) -> Flask:
    cfg = config or load_config()
    app = Flask(__name__)
    app.config.update(
        {CONFIG_KEY: cfg},
        SECRET_KEY=cfg.kiosk.secret_key or _persistent_secret(cfg.paths.data_dir),
        MAX_CONTENT_LENGTH=cfg.ingest.max_body_bytes,
        JSON_AS_ASCII=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions[ENGINE_KEY] = engine or make_engine(cfg)
    # The provincial system's client, made here (in each gunicorn worker, after the fork) so that its
    # set-up (TLS context, CA bundle) never counts against a citizen's lookup deadline.
    app.extensions[SOURCE_KEY] = make_source(cfg)

    app.register_blueprint(api.bp)
    security.init_app(app)  # headers on every response
    i18n.init_app(app)  # Flask-Babel: Vietnamese first, English on request
    citizen_views.init_app(app)  # the citizen screens, their lookup rate limit and error pages
    app.register_blueprint(scanner_web.bp)
    app.register_blueprint(printing_web.bp)
    app.register_blueprint(queue_web.bp)
    staff_guard.init_app(app)  # sign-in, sessions and CSRF for /staff/ and /counter/
    app.register_blueprint(staff_views.bp)
    app.register_blueprint(health.bp)
    return app


def _persistent_secret(data_dir: Path) -> str:
    """Generate the session key once, so every gunicorn worker and restart shares it."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        with open(path, "x") as fh:  # the first worker wins; the others read its key
            fh.write(key)
        path.chmod(0o600)
        return key
    except FileExistsError:
        return path.read_text().strip()
