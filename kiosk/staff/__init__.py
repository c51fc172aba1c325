"""Staff pages (/staff/): sign-in, dossiers, notices, device health, audit log, accounts.

`init_app(app)` installs the guard (kiosk/staff/guard.py) that also covers the counter pages
under /counter/, and registers the pages (kiosk/staff/views.py). See docs/staff.md.
"""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from kiosk.staff import guard, views

    guard.init_app(app)
    app.register_blueprint(views.bp)
