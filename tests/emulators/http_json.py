"""A generic JSON system: GET /api/hoso/<code>?key=<secret> answers a nested record, GET
/api/changes?since=<n> a page of records after sequence n with the next cursor (empty page at the end)."""
from __future__ import annotations

import threading
from typing import Any

from tests.emulators import Emulator


class HttpJsonEmulator(Emulator):
    def __init__(self, token: str = "json-token-9", page: int = 2) -> None:
        super().__init__()
        self.token, self.page = token, page
        self.records: dict[str, dict[str, Any]] = {}
        self.log: list[str] = []  # codes in change order (the sequence is the index + 1)
        self._data_lock = threading.Lock()

    def put(self, code: str, trang_thai: str, secret: str = "K1234", **extra: Any) -> None:
        with self._data_lock:
            updated = f"2026-11-25T08:{len(self.log):02d}:00+07:00"
            self.records[code] = {"hoSo": {"ma": code, "trangThai": trang_thai, "thuTuc": "Chứng thực bản sao",
                                           "henTra": "2026-12-09", "capNhat": updated, **extra}, "key": secret}
            self.log.append(code)

    def route(self, method, path, query, headers, body):
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, self.js({"error": "unauthorized"}), "application/json"
        if path.startswith("/api/hoso/"):
            with self._data_lock:
                rec = self.records.get(path.rsplit("/", 1)[1])
            if rec is None or (query.get("key") and query["key"] != rec["key"]):
                return 404, self.js({"error": "not found"}), "application/json"
            out = rec["hoSo"]
            if self.fault == "renamed":
                out = {k if k != "trangThai" else "status": v for k, v in out.items()}
            return 200, self.js({"hoSo": out}), "application/json"
        if path == "/api/changes":
            since = int(query.get("since") or 0)
            with self._data_lock:
                seqs = list(range(since, min(since + self.page, len(self.log))))
                items = [{"hoSo": self.records[self.log[i]]["hoSo"]} for i in seqs]
            return 200, self.js({"items": items, "next_cursor": str(since + len(items))}), "application/json"
        return 404, self.js({"error": "no route"}), "application/json"
