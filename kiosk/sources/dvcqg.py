"""The national public-service portal's integration adapter, as provincial systems call it
(read in OpenCPS's DVCQGIntegrationActionImpl; no official specification was found).

- Auth: `POST <base_url><auth_path>` with `{username, password}` and the `dstcode` header answers
  `{error_code: 0, session}`; anything else means refused.
- Service: `POST <base_url><integration_path>` with `{session, madonvi, service, ...}` and the same
  header. `TraCuuHoSo` takes `mahoso` and answers `{error_code: 0, result: [ {MaHoSo, MaTTHC,
  TenTTHC, ChuHoSo, SoDienThoai, NgayTiepNhan, NgayHenTra, TrangThaiHoSo, ...} ]}`; an empty result
  means not known. Dates are `yyyyMMddHHmmss` in Asia/Ho_Chi_Minh, unset dates "".
- TrangThaiHoSo (1..10) comes from third-party data: `[source.dvcqg] status_map` maps it.

The adapter has no change listing and checks no secret: the sync service refreshes open dossiers
one by one through `fetch`, and a secret typed at the kiosk is never stored from this source.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from kiosk.sources.base import (
    ErrorKind,
    Http,
    Required,
    Source,
    SourceDossier,
    SourceError,
    Text,
    snippet,
    unwrap_list,
)
from motcua.config import Config
from motcua.hours import site_zone

log = logging.getLogger(__name__)

DATETIME_FORMAT = "%Y%m%d%H%M%S"  # LUCENE_DATE_FORMAT in DVCQGIntegrationActionImpl; in the site's zone


class HoSo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    MaHoSo: Required
    TrangThaiHoSo: Required
    MaTTHC: Text = ""
    TenTTHC: Text = ""
    TenLinhVuc: Text = ""
    ChuHoSo: Text = ""
    SoDienThoai: Text = ""
    NgayTiepNhan: Text = ""
    NgayHenTra: Text = ""


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    error_code: int
    result: Annotated[list[Any], BeforeValidator(unwrap_list)] = []


def parse_time(value: str, name: str, zone: ZoneInfo) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, DATETIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise SourceError(ErrorKind.BAD_ANSWER, f"{name} {value[:30]!r} is not yyyyMMddHHmmss") from None


class DvcqgSource(Source):
    kind = "dvcqg"

    def __init__(self, cfg: Config, transport: Any = None):
        self.opts = cfg.source_.dvcqg
        self.status_map = self.opts.status_map
        self.zone = site_zone(cfg.site)
        self.http = Http(cfg.source_, headers={"dstcode": self.opts.dstcode, "Content-Type": "application/json"},
                         transport=transport)
        self._session: str | None = None
        self._lock = threading.Lock()

    def _post(self, path: str, body: dict[str, Any], total_s: float | None) -> Reply:
        answer = self.http.request("POST", path, json=body, total_s=total_s)
        if answer.status in (401, 403):
            raise SourceError(ErrorKind.AUTH, f"HTTP {answer.status} from the adapter")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"HTTP {answer.status}: {snippet(answer.body)}")
        data = answer.json()
        try:
            return Reply.model_validate(data)
        except ValidationError as exc:
            raise SourceError(ErrorKind.BAD_ANSWER, f"answer without {exc.errors()[0]['loc'][0]}: "
                                                    f"{snippet(answer.body)}") from None

    def _login(self, total_s: float | None) -> str:
        answer = self.http.request("POST", self.opts.auth_path,
                                   json={"username": self.opts.username, "password": self.opts.password},
                                   total_s=total_s)
        if answer.status != 200:
            raise SourceError(ErrorKind.AUTH if answer.status in (401, 403) else ErrorKind.REFUSED,
                              f"auth: HTTP {answer.status}: {snippet(answer.body)}")
        data = answer.json()
        if not isinstance(data, dict) or data.get("error_code") != 0 or not isinstance(data.get("session"), str):
            code = data.get("error_code") if isinstance(data, dict) else None
            raise SourceError(ErrorKind.AUTH, f"auth refused (error_code {code!r}): check username, password "
                                              "and dstcode")
        return data["session"]

    def _service(self, body: dict[str, Any], total_s: float | None) -> Reply:
        with self._lock:
            session = self._session or self._login(total_s)
            self._session = session
        reply = self._post(self.opts.integration_path, {"session": session, "madonvi": self.opts.madonvi, **body},
                           total_s)
        if reply.error_code != 0:
            # An expired session is the usual cause: log in again once.
            with self._lock:
                self._session = self._login(total_s)
                session = self._session
            reply = self._post(self.opts.integration_path,
                               {"session": session, "madonvi": self.opts.madonvi, **body}, total_s)
            if reply.error_code != 0:
                raise SourceError(ErrorKind.REFUSED, f"{body.get('service')}: error_code {reply.error_code}")
        return reply

    def fetch(self, code: str, secret: str | None, *, total_s: float | None = None) -> SourceDossier | None:
        reply = self._service({"service": "TraCuuHoSo", "mahoso": code}, total_s)
        if not reply.result:
            return None
        raw = reply.result[0]
        if not isinstance(raw, dict):
            raise SourceError(ErrorKind.BAD_ANSWER, "TraCuuHoSo result is not an object")
        try:
            hs = HoSo.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise SourceError(ErrorKind.BAD_ANSWER, f"TraCuuHoSo field {'.'.join(map(str, err['loc']))}: "
                                                    f"{err['msg']}") from None
        if hs.MaHoSo != code:
            raise SourceError(ErrorKind.BAD_ANSWER, f"asked for {code!r}, the answer is dossier {hs.MaHoSo[:100]!r}")
        received = parse_time(hs.NgayTiepNhan, "NgayTiepNhan", self.zone)
        due = parse_time(hs.NgayHenTra, "NgayHenTra", self.zone)
        return SourceDossier({
            "code": hs.MaHoSo,
            "status": hs.TrangThaiHoSo,
            "procedure": hs.TenTTHC or None,
            "field": hs.TenLinhVuc or None,
            "applicant_name": hs.ChuHoSo or None,
            "phone": hs.SoDienThoai or None,
            "appointment_date": due.date().isoformat() if due else None,
            "received_at": received.isoformat() if received else None,
        })

    def check(self) -> str:
        with self._lock:
            self._session = self._login(None)
        return "the adapter accepted the credentials and gave a session"

    def close(self) -> None:
        self.http.close()
