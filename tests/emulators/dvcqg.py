"""The national portal's integration adapter, emulated as OpenCPS's DVCQGIntegrationActionImpl calls it:
POST <auth> {username, password} with the `dstcode` header -> {error_code: 0, session}; POST
<integration> {session, madonvi, service, ...} with the same header -> {error_code, result: [...]}.
`TraCuuHoSo` takes `mahoso`. Dates `yyyyMMddHHmmss`. Sessions expire when `expire_sessions()` is called.
"""
from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from tests.emulators import Emulator


class DvcqgEmulator(Emulator):
    def __init__(self, username: str = "kiosk-yh", password: str = "cong-pass-1", dstcode: str = "000.00.21.H42",
                 madonvi: str = "000.00.21.H42") -> None:
        super().__init__()
        self.username, self.password, self.dstcode, self.madonvi = username, password, dstcode, madonvi
        self.hoso: dict[str, dict[str, Any]] = {}
        self.sessions: set[str] = set()
        self._data_lock = threading.Lock()

    def add(self, code: str, trang_thai: str = "4", **fields: Any) -> dict[str, Any]:
        record = {"MaHoSo": code, "MaTTHC": "1.001193", "TenTTHC": "Đăng ký khai sinh", "MaLinhVuc": "HT",
                  "TenLinhVuc": "Hộ tịch", "ChuHoSo": "Trần Thị Mai", "SoDienThoai": "0987654321",
                  "NgayTiepNhan": "20261125080000", "NgayHenTra": "20261209170000", "TrangThaiHoSo": trang_thai,
                  "NgayTra": "", "LoaiDoiTuong": "1", **fields}
        with self._data_lock:
            self.hoso[code] = record
        return record

    def expire_sessions(self) -> None:
        with self._data_lock:
            self.sessions.clear()

    def route(self, method, path, query, headers, body):
        if method != "POST":
            return 405, self.js({"error_code": -1, "message": "method"}), "application/json"
        if headers.get("dstcode") != self.dstcode:
            return 403, self.js({"error_code": 403, "message": "dstcode"}), "application/json"
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 400, self.js({"error_code": -1}), "application/json"
        if path == "/auth":
            if (data.get("username"), data.get("password")) != (self.username, self.password):
                return 200, self.js({"error_code": 1, "message": "Sai tên đăng nhập hoặc mật khẩu"}), \
                    "application/json"
            session = secrets.token_hex(16)
            with self._data_lock:
                self.sessions.add(session)
            return 200, self.js({"error_code": 0, "session": session}), "application/json"
        if path == "/integration":
            with self._data_lock:
                if data.get("session") not in self.sessions or data.get("madonvi") != self.madonvi:
                    return 200, self.js({"error_code": 2, "message": "Phiên làm việc hết hạn"}), "application/json"
                if data.get("service") != "TraCuuHoSo":
                    return 200, self.js({"error_code": 3, "message": "service"}), "application/json"
                found = self.hoso.get(str(data.get("mahoso")))
                result = [dict(found)] if found else []
            if self.fault == "renamed" and result:
                result[0]["TrangThai"] = result[0].pop("TrangThaiHoSo")
            if self.fault == "wrong_code" and result:
                result[0]["MaHoSo"] = "000.00.21.H42-251125-9999"
            return 200, self.js({"error_code": 0, "result": result}), "application/json"
        return 404, self.js({"error_code": -1}), "application/json"
