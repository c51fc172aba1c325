"""Printer state as JSON for the kiosk screens and staff pages: GET /printer/state.

The state is this web app's own station's printer ([station] id): each kiosk's web app runs on that
kiosk's Pi, so the screen that asks is the screen beside that printer (docs/stations.md)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from kiosk.context import get_config, get_engine
from kiosk.printing.jobs import printer_state
from motcua.db import reading

bp = Blueprint("printing", __name__)


@bp.get("/printer/state")
def state() -> Any:
    with reading(get_engine()) as conn:
        return jsonify(printer_state(conn, get_config().station.id))
