"""For tests of pages behind the staff guard (/staff/, /counter/): a signed-in Flask test client.

    from kiosk.staff.testing import sign_in
    client = sign_in(app, role="official")      # then client.get("/counter/...")
    client.post(url, data={..., "csrf_token": csrf_token(client, "/counter/page")})
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kiosk.staff import users

LAN_ADDRESS = "192.168.1.20"  # a counter PC, not the kiosk screen
_TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/staff/login") -> str:
    """The CSRF token of the client's current session, read from a page's form."""
    html = client.get(page).get_data(as_text=True)
    match = _TOKEN_RE.search(html)
    if not match:
        raise AssertionError(f"no csrf_token on {page}")
    return match.group(1)


def lan_client(app: Flask, address: str = LAN_ADDRESS) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def create_account(app: Flask, username: str | None = None, role: str = users.OFFICIAL,
                   password: str | None = None) -> tuple[str, str]:
    engine = app.extensions["motcua.engine"]
    username = username or f"{role}{secrets.token_hex(3)}"
    password = password or secrets.token_urlsafe(12)
    with engine.begin() as conn:
        users.create_user(conn, app.config["MOTCUA"].staff, username, password, role=role,
                          display_name=username.title())
    return username, password


def sign_in(app: Flask, role: str = users.OFFICIAL, username: str | None = None, **client_kw: Any) -> FlaskClient:
    """A new account with `role`, signed in on a client from a LAN address."""
    name, password = create_account(app, username, role)
    client = lan_client(app, **client_kw)
    resp = client.post("/staff/login", data={"username": name, "password": password,
                                             "csrf_token": csrf_token(client)})
    if resp.status_code != 302:
        raise AssertionError(f"sign-in failed: {resp.status_code}")
    client.staff_username = name  # type: ignore[attr-defined]
    return client
