"""Zalo ZNS, as its API is documented: POST /message/template with an `access_token` header and
{phone, template_id, template_data, tracking_id}; POST /v4/oa/access_token (header secret_key, form
app_id, grant_type=refresh_token, refresh_token) gives a new access token and a new refresh token
(the old one stops working). Errors are in the JSON `error` field (-124: access token invalid; -108
phone number invalid and -109 template ID invalid as in Zalo's table of error codes).

Faults (`fault`): "500", "accept_then_hang" (message taken, answer after `delay_s`), "expire" (the
current access token stops working once). A repeated tracking_id returns the first msg_id and sends
nothing new. `messages` holds what reached citizens' Zalo.

Delivery: `callback(msg_id)` is the request Zalo makes to the OA's webhook when that message reached
the phone (event `user_received_message`, header X-ZEvent-Signature = sha256(appId + body + timestamp +
OA secret key), X-ZEvent-Server: ZNS); `deliver(url, msg_id)` POSTs it."""
from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from tests.emulators import Emulator


class ZnsEmulator(Emulator):
    def __init__(self, app_id: str = "app-1", secret_key: str = "zalo-secret", refresh_token: str = "rt-0",
                 templates: tuple[str, ...] = ("tpl-ready",), oa_id: str = "2893352839501541173",
                 oa_secret_key: str = "oa-secret") -> None:
        super().__init__()
        self.app_id, self.secret_key = app_id, secret_key
        self.oa_id, self.oa_secret_key = oa_id, oa_secret_key
        self.refresh_token = refresh_token
        self.access_token = ""  # none issued yet
        self.templates = set(templates)
        self.messages: list[dict[str, Any]] = []
        self.by_tracking: dict[str, str] = {}
        self.refreshes = 0
        self._ids = itertools.count(1)
        self._data = threading.Lock()

    def route(self, method, path, query, headers, body):
        if path == "/v4/oa/access_token":
            form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
            if headers.get("secret_key") != self.secret_key or form.get("app_id") != self.app_id:
                return 200, self.js({"error": -14003, "error_description": "invalid app"}), "application/json"
            with self._data:
                if form.get("refresh_token") != self.refresh_token or form.get("grant_type") != "refresh_token":
                    return 200, self.js({"error": -14014, "error_description": "Invalid refresh token"}), \
                        "application/json"
                self.refreshes += 1
                self.access_token = f"at-{self.refreshes}"
                self.refresh_token = f"rt-{self.refreshes}"
            return 200, self.js({"access_token": self.access_token, "refresh_token": self.refresh_token,
                                 "expires_in": "90000"}), "application/json"
        if path != "/message/template" or method != "POST":
            return 404, self.js({"error": -201, "message": "not found"}), "application/json"
        if self.fault == "expire":
            self.fault = None
            with self._data:
                self.access_token = "expired"
        if not headers.get("access_token") or headers.get("access_token") != self.access_token:
            return 200, self.js({"error": -124, "message": "Access token is invalid"}), "application/json"
        req = json.loads(body)
        if req.get("template_id") not in self.templates:
            return 200, self.js({"error": -109, "message": "Template ID invalid"}), "application/json"
        phone = str(req.get("phone") or "")
        if not (phone.startswith("84") and phone.isdigit() and len(phone) == 11):
            return 200, self.js({"error": -108, "message": "Phone number is invalid"}), "application/json"
        with self._data:
            tracking = str(req.get("tracking_id") or "")
            msg_id = self.by_tracking.get(tracking) if tracking else None
            if msg_id is None:
                msg_id = f"zns-{next(self._ids)}"
                self.messages.append({"phone": phone, "template_id": req["template_id"],
                                      "data": req.get("template_data"), "tracking_id": tracking, "msg_id": msg_id})
                if tracking:
                    self.by_tracking[tracking] = msg_id
        if self.fault == "accept_then_hang":
            self._stop.wait(self.delay_s)
        return 200, self.js({"error": 0, "message": "Success", "data": {"msg_id": msg_id, "sent_time": "1"}}), \
            "application/json"

    def callback(self, msg_id: str, *, delivered_ms: int | None = None,
                 secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """Zalo's webhook request for a delivered message: (body, headers), signed as Zalo signs it."""
        msg = next(m for m in self.messages if m["msg_id"] == msg_id)
        now_ms = int(time.time() * 1000)
        body = json.dumps({
            "sender": {"id": self.oa_id}, "recipient": {"id": msg["phone"]}, "event_name": "user_received_message",
            "message": {"delivery_time": str(delivered_ms or now_ms), "msg_id": msg_id,
                        "tracking_id": msg["tracking_id"]},
            "app_id": self.app_id, "timestamp": str(now_ms),
        }).encode()
        timestamp = json.loads(body)["timestamp"]
        mac = hashlib.sha256(self.app_id.encode() + body + timestamp.encode()
                             + (self.oa_secret_key if secret is None else secret).encode()).hexdigest()
        return body, {"Content-Type": "application/json", "X-ZEvent-Signature": f"mac={mac}",
                      "X-ZEvent-Server": "ZNS"}

    def deliver(self, url: str, msg_id: str, **kw: Any) -> int:
        """POST the delivery callback to the OA's webhook, as Zalo does; the HTTP status."""
        import httpx

        body, headers = self.callback(msg_id, **kw)
        return httpx.post(url, content=body, headers=headers, timeout=5).status_code
