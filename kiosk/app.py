"""The kiosk web app factory (Flask). One blueprint per area; see kiosk/*/views.py and kiosk/api.py."""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from motcua.config import Config, load_config
from motcua.db import make_engine

log = logging.getLogger(__name__)


def create_app(config: Config | None = None, engine: sa.Engine | None = None,
               test_config: dict[str, Any] | None = None) -> Flask:
    cfg = config or load_config()
    app = Flask(__name__)
    app.config.update(
        MOTCUA=cfg,
        SECRET_KEY=cfg.kiosk.secret_key or _persistent_secret(cfg.paths.data_dir),
        MAX_CONTENT_LENGTH=cfg.ingest.max_body_bytes,
        JSON_AS_ASCII=False,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["motcua.engine"] = engine or make_engine(cfg)

    from kiosk import api

    app.register_blueprint(api.bp)
    _register_optional_blueprints(app)
    return app


def _register_optional_blueprints(app: Flask) -> None:
    """Areas built in their own packages register here through `init_app(app)`."""
    import importlib

    for name in ("kiosk.security", "kiosk.i18n", "kiosk.web", "kiosk.scanner.web", "kiosk.printing.web",
                 "kiosk.queue.web", "kiosk.staff", "kiosk.health"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that area is not part of this build
            raise
        init = getattr(module, "init_app", None)
        if init is not None:  # a package without init_app has no routes of its own
            init(app)


def get_engine() -> sa.Engine:
    return current_app.extensions["motcua.engine"]


def get_config() -> Config:
    return current_app.config["MOTCUA"]


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
