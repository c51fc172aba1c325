"""One rule decides "this request comes from the kiosk screen", and every route that asks agrees,
whether the kiosk's address arrives as IPv4 or IPv4-mapped IPv6 (a dual-stack listener)."""
from __future__ import annotations

import pytest

from kiosk.app import create_app
from kiosk.security import is_kiosk_address
from tests.conftest import CHEAP_HASHING

KIOSK, MAPPED, LAN = "127.0.0.1", "::ffff:127.0.0.1", "192.0.2.50"
ALL_WEEK = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00", "close": "00:00"}]


@pytest.fixture
def app(make_config, engine):
    cfg = make_config(site={"opening_hours": ALL_WEEK},
                      kiosk={"kiosk_addresses": [KIOSK], "public_lookup_rate": "3 per minute"},
                      staff=CHEAP_HASHING)
    return create_app(cfg, engine, test_config={"TESTING": True})


def _outcomes(app, remote: str) -> dict[str, int]:
    c = app.test_client()
    env = {"REMOTE_ADDR": remote}
    scanner = c.get("/scanner/events", environ_base=env)
    scanner.close()  # a stream: only its status matters here
    # /slip shares the lookup budget (3 per minute): slip + 3 lookups goes past it, except for the kiosk.
    slip = c.post("/slip", data={"code": "000.00.21.H42-991231-9999"}, environ_base=env).status_code
    lookups = [c.post("/lookup", data={"code": "000.00.21.H42-991231-9999"}, environ_base=env).status_code
               for _ in range(3)]
    return {
        "scanner": scanner.status_code,
        "slip": slip,
        "ticket": c.post("/ticket", data={"service": ""}, environ_base=env).status_code,
        "queue_take": c.post("/queue/tickets", json={}, environ_base=env).status_code,
        "staff": c.get("/staff/login", environ_base=env).status_code,
        "third_lookup": lookups[2],
    }


def test_ipv4_mapped_kiosk_address_is_the_kiosk_screen_on_every_route(app):
    assert _outcomes(app, MAPPED) == _outcomes(app, KIOSK) == {
        "scanner": 200, "slip": 404, "ticket": 303, "queue_take": 400, "staff": 403, "third_lookup": 404,
    }


def test_another_address_is_not_the_kiosk_screen_on_any_route(app):
    assert _outcomes(app, LAN) == {
        "scanner": 403, "slip": 403, "ticket": 403, "queue_take": 403, "staff": 200, "third_lookup": 429,
    }


@pytest.mark.parametrize("remote, expected", [
    ("127.0.0.1", True), ("::ffff:127.0.0.1", True), ("::1", True), ("fe80::1%eth0", False),
    ("192.0.2.50", False), ("", False), (None, False), ("not an address", False),
])
def test_kiosk_address_rule(remote, expected):
    assert is_kiosk_address(remote, ["127.0.0.1", "::1"]) is expected
