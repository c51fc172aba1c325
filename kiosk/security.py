"""Security headers on every response of the kiosk app, and who counts as the kiosk screen.

The kiosk is a public screen: nothing a QR code, a dossier field or a LAN visitor supplies may run
script, load from elsewhere, frame the app or leak the URL. Pages therefore use only files from
this app (`'self'`), no inline script or style attributes, and HTML is never cached (it can hold a
citizen's dossier).

`is_kiosk_screen()` is the one answer to "is this request from the kiosk's own screen": the staff
guard, the scanner stream, the slip, SMS sign-up and ticket routes and the lookup limit all ask it.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import Flask, Response, request

from kiosk.context import get_config

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "media-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "frame-src 'none'",
    "worker-src 'none'",
    "manifest-src 'self'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # The camera belongs to the scanner process, never to the browser.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
}

NO_STORE_TYPES = ("text/html", "application/json")


def apply_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype in NO_STORE_TYPES and "Cache-Control" not in response.headers:
        # A dossier page must not come back from the cache or the back/forward cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def _ip(text: str) -> IPAddress | None:
    try:
        addr = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    # A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d.
    return getattr(addr, "ipv4_mapped", None) or addr


def is_kiosk_address(remote: str | None, kiosk_addresses: Iterable[str]) -> bool:
    """True when `remote` is one of the kiosk screen's addresses, IPv4-mapped IPv6 included."""
    ip = _ip(remote) if remote else None
    return ip is not None and any(_ip(k) == ip for k in kiosk_addresses)


def is_kiosk_screen() -> bool:
    """True when the current request comes from the kiosk's own screen (`[kiosk] kiosk_addresses`)."""
    return is_kiosk_address(request.remote_addr, get_config().kiosk.kiosk_addresses)


def init_app(app: Flask) -> None:
    app.after_request(apply_headers)
