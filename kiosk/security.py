"""Security headers on every response of the kiosk app (citizen screens, staff pages, API).

The kiosk is a public screen: nothing a QR code, a dossier field or a LAN visitor supplies may run
script, load from elsewhere, frame the app or leak the URL. Pages therefore use only files from
this app (`'self'`), no inline script or style attributes, and HTML is never cached (it can hold a
citizen's dossier).
"""
from __future__ import annotations

from flask import Flask, Response

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


def init_app(app: Flask) -> None:
    app.after_request(apply_headers)
