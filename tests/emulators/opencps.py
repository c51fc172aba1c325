"""OpenCPS v2 REST emulator (`/o/rest/v2`), from VietOpenCPS/opencps-v2 at 2c719850c:
DossierManagement(Impl) for routes and status codes, RestAuthFilter for HTTP Basic on the detail
route (the list is in its IGNORE_PATTERN, so anonymous), DossierDetailModel/DossierDataModel for field
names, APIDateTimeUtils for `dd/MM/yyyy HH:mm:ss` in Asia/Ho_Chi_Minh.

Votings (satisfaction ratings), from backend-postal-api-rest (VotingManagement(Impl),
VotingResultInputModel, VotingResultModel) and backend-feedback (VotingActionsImpl.addVotingResult,
the F_votingId_userId finder): `POST /postal/votings/{id}/results` binds the form fields selected,
comment, email (@BeanParam of @FormParam: a JSON body binds nothing), HTML-escapes them, and keeps ONE
result per account and voting: an employee's second answer updates the first (same votingResultId).
An account that is neither an employee nor an applicant, or a voting that does not exist, stores
nothing and still answers 200 with an empty model. Not in RestAuthFilter's IGNORE_PATTERN: HTTP Basic.
`fault = "store_then_hang"` stores a result and then never answers (a lost answer).

Not emulated: RestAuthFilter lets requests from 127.0.0.1 through without credentials; a kiosk
is never on the provincial server, so here credentials are always required.
"""
from __future__ import annotations

import base64
import html
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote
from zoneinfo import ZoneInfo

from tests.emulators import Emulator

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FMT = "%d/%m/%Y %H:%M:%S"
FINAL = ("done", "denied", "cancelled", "unresolved")
SECRET_WRONG = b"secretKey not sucess"  # sic, MessageUtil's DOSSIER_MESSAGE_SECRETKEYNOTSUCCESS


@dataclass
class Dossier:
    dossierId: int
    dossierNo: str
    dossierStatus: str
    password: str
    groupId: int
    serviceName: str = "Đăng ký khai sinh"
    serviceCode: str = "1.001193"
    applicantName: str = "NGUYỄN VĂN HÙNG"
    contactTelNo: str = "0912345678"
    receiveDate: datetime | None = None
    dueDate: datetime | None = None
    finishDate: datetime | None = None
    releaseDate: datetime | None = None
    modifiedDate: datetime = field(default_factory=lambda: datetime(2026, 11, 25, 8, 0, tzinfo=ZONE))


def fmt(t: datetime | None) -> str:
    return t.astimezone(ZONE).strftime(FMT) if t else ""


class OpenCpsEmulator(Emulator):
    def __init__(self, group_id: int = 35417, username: str = "kiosk", password: str = "s3cret-pass",
                 quirky: bool = False) -> None:
        super().__init__()
        self.group_id, self.username, self.password, self.quirky = group_id, username, password, quirky
        self.dossiers: dict[int, Dossier] = {}
        self._next = 100
        self._data_lock = threading.Lock()
        self._version = 0  # bumped on every change: list results are cached per query until then
        self._lists: dict[tuple[Any, ...], tuple[int, list[Dossier]]] = {}
        # votingId -> its choices and results (dicts in VotingResultModel's field names)
        self.votings: dict[int, dict[str, Any]] = {}
        self.account_is_employee = True  # False: the account is neither employee nor applicant
        self._next_result = 5000

    def add(self, code: str, status: str = "processing", secret: str = "AB12CD", *, group_id: int | None = None,
            due: datetime | None = None, modified: datetime | None = None, **kw: Any) -> Dossier:
        with self._data_lock:
            self._next += 1
            d = Dossier(self._next, code, status, secret, group_id or self.group_id,
                        receiveDate=datetime(2026, 11, 25, 8, 0, tzinfo=ZONE),
                        dueDate=due or datetime(2026, 12, 9, 17, 0, tzinfo=ZONE), **kw)
            if modified:
                d.modifiedDate = modified
            if status in FINAL:
                d.finishDate = d.modifiedDate
            self.dossiers[d.dossierId] = d
            self._version += 1
            return d

    def set_status(self, code: str, status: str, *, when: datetime | None = None) -> None:
        """A step of the dossier's process, as DossierActionsImpl.updateStatus writes it: only `done` gets
        a finishDate there, so a dossier denied or cancelled this way is in no fromFinishDate list."""
        with self._data_lock:
            d = next(x for x in self.dossiers.values() if x.dossierNo == code)
            d.dossierStatus = status
            d.modifiedDate = when or d.modifiedDate + timedelta(minutes=5)
            if status == "releasing":
                d.releaseDate = d.modifiedDate
            if status == "done":
                d.finishDate = d.modifiedDate
                d.releaseDate = d.releaseDate or d.modifiedDate
            self._version += 1

    def bump(self) -> None:
        """Call after changing dossiers directly (a benchmark changing 100,000 at once)."""
        with self._data_lock:
            self._version += 1

    # --- models -----------------------------------------------------------------------------

    def detail(self, d: Dossier) -> dict[str, Any]:
        out = {
            "dossierId": d.dossierId, "groupId": d.groupId, "dossierNo": d.dossierNo,
            "referenceUid": f"ref-{d.dossierId}",
            "dossierStatus": d.dossierStatus, "dossierStatusText": d.dossierStatus.title(), "dossierSubStatus": "",
            "serviceCode": d.serviceCode, "serviceName": d.serviceName, "govAgencyName": "UBND xã Yên Hòa",
            "applicantName": d.applicantName, "applicantIdType": "citizen", "contactTelNo": d.contactTelNo,
            "createDate": fmt(d.receiveDate), "modifiedDate": fmt(d.modifiedDate), "receiveDate": fmt(d.receiveDate),
            "dueDate": fmt(d.dueDate), "finishDate": fmt(d.finishDate), "releaseDate": fmt(d.releaseDate),
            "lastActionNote": "", "stepName": "Thụ lý hồ sơ", "submitting": "false", "online": "false",
        }
        if self.quirky:  # older JSON mappers: number-like text becomes a number
            out["serviceCode"] = float(d.serviceCode) if d.serviceCode.replace(".", "").isdigit() else d.serviceCode
        if self.fault == "renamed":
            out["status"] = out.pop("dossierStatus")
        if self.fault == "wrong_code":
            out["dossierNo"] = "000.00.21.H42-251125-9999"
        return out

    def list_item(self, d: Dossier) -> dict[str, Any]:
        return {
            "dossierId": d.dossierId, "dossierNo": d.dossierNo, "dossierStatus": d.dossierStatus,
            "dossierStatusText": d.dossierStatus.title(), "dossierSubStatus": "", "serviceCode": d.serviceCode,
            "serviceName": d.serviceName, "govAgencyName": "UBND xã Yên Hòa", "domainName": "Hộ tịch",
            "applicantName": d.applicantName, "contactTelNo": d.contactTelNo, "receiveDate": fmt(d.receiveDate),
            "dueDate": fmt(d.dueDate), "finishDate": fmt(d.finishDate), "releaseDate": fmt(d.releaseDate),
            "hasPassword": d.password,  # the real list exposes it
        }

    def add_voting(self, voting_id: int = 301, choices: tuple[str, ...] = (
            "Rất hài lòng", "Hài lòng", "Bình thường", "Không hài lòng", "Rất không hài lòng")) -> int:
        with self._data_lock:
            self.votings[voting_id] = {"choices": list(choices), "results": []}
        return voting_id

    def voting_results(self, voting_id: int = 301) -> list[dict[str, Any]]:
        with self._data_lock:
            return [dict(r) for r in self.votings[voting_id]["results"]]

    def _votings(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        parts = path.split("/")  # ["", "postal", "votings", id, "results"]
        if len(parts) != 5 or parts[4] != "results" or not parts[3].isdigit():
            return 404, self.js({"message": "Not Found"}), "application/json"
        if not self._authorised(headers):
            return 401, self.js({"timestamp": fmt(datetime.now(ZONE)), "message": "permission denied",
                                 "details": ""}), "application/json"
        voting_id = int(parts[3])
        with self._data_lock:
            voting = self.votings.get(voting_id)
            if method == "GET":
                rows = voting["results"] if voting else []
                return 200, self.js({"total": len(rows), "data": [dict(r) for r in rows]}), "application/json"
            form: dict[str, str] = {}
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            if voting is None or not self.account_is_employee:
                return 200, self.js({}), "application/json"  # nothing stored, the empty model
            now = datetime.now(ZONE).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            mine = next((r for r in voting["results"] if r["userName"] == self.username), None)
            if mine is None:  # fetchByF_votingId_userId found nothing: a new result
                self._next_result += 1
                mine = {"votingResultId": self._next_result, "userId": 20123, "userName": self.username,
                        "fullName": "Kiosk Một cửa", "email": "", "createDate": now, "currentUser": True}
                voting["results"].append(mine)
            selected = form.get("selected")
            mine.update(modifiedDate=now, comment=html.escape(form.get("comment") or ""),
                        selected=int(selected) if selected and selected.isdigit() else 0)
            answer = dict(mine)
        if self.fault == "store_then_hang":
            self._stop.wait(120)
        return 200, self.js(answer), "application/json"

    # --- routes -----------------------------------------------------------------------------

    def _authorised(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, pw) == (self.username, self.password)

    def _find(self, ident: str, group: int) -> Dossier | None:
        with self._data_lock:
            if ident.isdigit() and int(ident) > 0:
                return self.dossiers.get(int(ident))  # a dossierId, in any site
            for d in self.dossiers.values():
                if d.groupId == group and (d.dossierNo == ident or f"ref-{d.dossierId}" == ident):
                    return d
        return None

    def route(self, method, path, query, headers, body):
        base = "/o/rest/v2"
        if path.startswith(base + "/postal/votings/"):
            return self._votings(method, path[len(base):], headers, body)
        if method != "GET" or not path.startswith(base):
            return 404, self.js({"message": "Not Found"}), "application/json"
        path = path[len(base):]
        if path == "/ping":
            return 200, b"ok", "text/plain"
        try:
            group = int(headers.get("groupid") or 0)
        except ValueError:
            group = 0
        if path == "/dossiers":
            return self._list(query, group)
        if path.startswith("/dossiers/") and path.count("/") == 2:
            if not self._authorised(headers):
                return 401, self.js({"message": "Unauthorized", "code": 401}), "application/json"
            d = self._find(unquote(path.split("/")[2]), group)
            secret = query.get("secretKey") or headers.get("secretcode")
            if secret:
                if d is None or d.password.upper() != secret.upper():
                    return 203, SECRET_WRONG, "text/plain"
                return 200, self.js(self.detail(d)), "application/json"
            if d is None:
                return 404, self.js({"code": 404, "message": "Not Found", "description": "Dossier not found"}), \
                    "application/json"
            return 200, self.js(self.detail(d)), "application/json"
        return 404, self.js({"message": "Not Found"}), "application/json"

    def _list(self, query: dict[str, str], group: int) -> tuple[int, bytes, str]:
        statuses = [s for s in (query.get("status") or "").split(",") if s]
        since = query.get("fromFinishDate")
        since_d = datetime.strptime(since, "%d/%m/%Y").replace(tzinfo=ZONE) if since else None
        prefix = query.get("dossierNo") or ""
        key = (group, tuple(statuses), since, prefix)
        with self._data_lock:
            cached = self._lists.get(key)
            if cached and cached[0] == self._version:
                rows = cached[1]
            else:
                rows = [d for d in self.dossiers.values()  # insertion order is dossierId order
                        if d.groupId == group and (not statuses or d.dossierStatus in statuses)
                        and (since_d is None or (d.finishDate is not None and d.finishDate >= since_d))
                        and d.dossierNo.startswith(prefix)]
                self._lists[key] = (self._version, rows)
            start, end = int(query.get("start") or 0), int(query.get("end") or 15)
            page = [self.list_item(d) for d in rows[start:end]]
        if self.fault == "renamed":
            return 200, self.js({"totalCount": len(rows), "items": page}), "application/json"
        if self.quirky and len(page) == 1:
            return 200, self.js({"total": len(rows), "data": page[0]}), "application/json"
        if self.quirky and not page:
            return 200, self.js({"total": len(rows)}), "application/json"
        return 200, self.js({"total": len(rows), "data": page}), "application/json"
