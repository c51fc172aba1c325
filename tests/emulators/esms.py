"""An SMS brandname provider in eSMS's API shape: POST /SendMultipleMessage_V4_post_json/ with
{ApiKey, SecretKey, Phone, Content, Brandname, SmsType, IsUnicode, RequestId}; CodeResult "100" and
an SMSID when accepted; as in eSMS's table of error codes: "101" bad keys, "104" brandname does not
exist, "99" a number blocked in the system (`blocked`), "103" not enough balance, "124" a RequestId
already used (the message is not sent twice).

Faults (`fault`): "500", "accept_then_hang" (message taken, answer after `delay_s`), "no_balance"
(every request refused with 103 until the fault is cleared). `messages` holds what reached phones."""
from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from tests.emulators import Emulator


class BrandnameEmulator(Emulator):
    def __init__(self, api_key: str = "esms-key", secret_key: str = "esms-secret", brandname: str = "UBND YEN HOA"):
        super().__init__()
        self.api_key, self.secret_key, self.brandname = api_key, secret_key, brandname
        self.messages: list[dict[str, Any]] = []
        self.request_ids: set[str] = set()
        self.blocked: set[str] = set()  # numbers as sent (84...)
        self._ids = itertools.count(1)
        self._data = threading.Lock()

    def route(self, method, path, query, headers, body):
        if path.rstrip("/") != "/SendMultipleMessage_V4_post_json" or method != "POST":
            return 404, self.js({"CodeResult": "99", "ErrorMessage": "not found"}), "application/json"
        req = json.loads(body)
        if req.get("ApiKey") != self.api_key or req.get("SecretKey") != self.secret_key:
            return 200, self.js({"CodeResult": "101", "ErrorMessage": "Authorize Failed"}), "application/json"
        if req.get("Brandname") != self.brandname:
            return 200, self.js({"CodeResult": "104", "ErrorMessage": "Brandname not registered"}), "application/json"
        if self.fault == "no_balance":
            return 200, self.js({"CodeResult": "103", "ErrorMessage": "Not enough balance"}), "application/json"
        if req.get("Phone") in self.blocked:
            return 200, self.js({"CodeResult": "99", "ErrorMessage": "Phone number is blocked"}), "application/json"
        with self._data:
            rid = str(req.get("RequestId") or "")
            if rid and rid in self.request_ids:
                return 200, self.js({"CodeResult": "124", "ErrorMessage": "Duplicate RequestId"}), "application/json"
            if rid:
                self.request_ids.add(rid)
            sms_id = f"sms-{next(self._ids)}"
            self.messages.append({"phone": req.get("Phone"), "content": req.get("Content"),
                                  "unicode": req.get("IsUnicode") == "1", "request_id": rid, "sms_id": sms_id})
        if self.fault == "accept_then_hang":
            self._stop.wait(self.delay_s)
        return 200, self.js({"CodeResult": "100", "SMSID": sms_id, "CountRegenerate": 0}), "application/json"
