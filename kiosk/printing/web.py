"""Printer state as JSON for the kiosk screens and staff pages: GET /printer/state."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify

bp = Blueprint("printing", __name__)


@bp.get("/printer/state")
def state() -> Any:
    from kiosk.app import get_engine
    from kiosk.printing.jobs import printer_state
    from motcua.db import reading

    with reading(get_engine()) as conn:
        return jsonify(printer_state(conn))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
