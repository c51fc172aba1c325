"""OpenCPS v2 REST (`<site>/o/rest/v2`), as read in VietOpenCPS/opencps-v2 (DossierManagement, RestAuthFilter).

Facts this code relies on:
- `GET /dossiers/{id}` needs the `groupId` header (the site) and passes RestAuthFilter only with HTTP
  Basic credentials (401 otherwise). With `?secretKey=` a wrong secret answers HTTP 203 with the bare
  text "secretKey not sucess"; without a secret an unauthenticated call answers 203 with a JSON
  message. So only 200 means found. A positive number is taken as a dossierId in any site: an
  all-digit code is therefore never sent as a code.
- `GET /dossiers` is anonymous, answers `{total, data}` for a `start`/`end` window, filters on
  `status` (comma list) and date pairs such as `fromFinishDate` (`dd/MM/yyyy`). It has no "modified
  since" filter and its items carry no modifiedDate; they do expose the secret (`hasPassword`),
  which is never read here.
- Dates are `dd/MM/yyyy HH:mm:ss` in Asia/Ho_Chi_Minh, unset dates "". Older JSON mappers turn
  number-like text into numbers, a one-item list into an object and drop empty lists.

Sync: every pass lists the open statuses in full and the final ones from the cursor's day on; an
item whose status or due date differs from the store is read in detail (which has modifiedDate,
the version ingest orders by), and the others are marked confirmed. A restart resumes at the page
it was on. Only `done` gets a finishDate in DossierActionsImpl.updateStatus, so a dossier denied or
cancelled there is in neither list: the sync service reads the open dossiers a pass did not see.
"""
from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from kiosk.sources.base import (
    Answer,
    Changes,
    ErrorKind,
    Http,
    Known,
    Required,
    Source,
    SourceDossier,
    SourceError,
    Text,
    as_text,
    basic_auth,
    snippet,
    unwrap_list,
)
from motcua.config import Config
from motcua.hours import site_zone

log = logging.getLogger(__name__)

DATETIME_FORMAT = "%d/%m/%Y %H:%M:%S"  # APIDateTimeUtils._NORMAL_PARTTERN
DATE_FORMAT = "%d/%m/%Y"  # APIDateTimeUtils._NORMAL_DATE
# Dates are in APIDateTimeUtils._SYS_TIME_ZONE (Asia/Ho_Chi_Minh), which is the site's zone ([site] timezone).


class DossierDetail(BaseModel):
    """The fields of DossierDetailModel the kiosk uses; the others are ignored."""

    model_config = ConfigDict(extra="ignore")
    dossierNo: Required
    dossierStatus: Required
    dossierSubStatus: Text = ""
    serviceName: Text = ""
    serviceCode: Text = ""
    applicantName: Text = ""
    contactTelNo: Text = ""
    receiveDate: Text = ""
    dueDate: Text = ""
    modifiedDate: Text = ""


class ListItem(BaseModel):
    """A list item of `GET /dossiers` (DossierDataModel): only what decides whether to read the detail."""

    model_config = ConfigDict(extra="ignore")
    dossierId: int | None = None
    dossierNo: Required
    dossierStatus: Required
    dueDate: Text = ""


class ListPage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    total: int
    data: Annotated[list[dict[str, Any]], BeforeValidator(unwrap_list)] = []


def parse_time(value: str, name: str, zone: ZoneInfo) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, DATETIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise SourceError(ErrorKind.BAD_ANSWER, f"{name} {value[:30]!r} is not dd/MM/yyyy HH:mm:ss") from None


def _due(value: str, zone: ZoneInfo) -> str | None:
    t = parse_time(value, "dueDate", zone)
    return t.date().isoformat() if t else None


def record_of(d: DossierDetail, secret: str | None, zone: ZoneInfo) -> dict[str, Any]:
    """The kiosk's record for one detail. `secret` only when the source has just accepted it."""
    received = parse_time(d.receiveDate, "receiveDate", zone)
    modified = parse_time(d.modifiedDate, "modifiedDate", zone)
    return {
        "code": d.dossierNo,
        "status": d.dossierStatus,
        "secret": secret,
        "procedure": d.serviceName or None,
        "applicant_name": d.applicantName.title() or None,  # OpenCPS stores names upper-cased
        "phone": d.contactTelNo or None,
        "appointment_date": _due(d.dueDate, zone),
        "received_at": received.isoformat() if received else None,
        "source_updated_at": modified.isoformat() if modified else None,
    }


class OpenCpsSource(Source):
    kind = "opencps"
    supports_changes = True

    def __init__(self, cfg: Config, transport: Any = None):
        self.cfg = cfg
        self.opts = cfg.source_.opencps
        self.status_map = cfg.statuses.source_map
        self.zone = site_zone(cfg.site)
        headers = {"groupId": self.opts.group_id, **basic_auth(self.opts.username, self.opts.password)}
        self.http = Http(cfg.source_, headers=headers, transport=transport)

    # --- one dossier ---------------------------------------------------------------------------

    def fetch(self, code: str, secret: str | None, *, total_s: float | None = None) -> SourceDossier | None:
        if code.isdigit():
            # OpenCPS would read it as a dossierId in any site: never ask.
            log.info("opencps: code %r is all digits; not asked (it would be taken as a dossierId)", code)
            return None
        params = {"secretKey": secret} if secret else {}
        answer = self.http.request("GET", f"/dossiers/{quote(code, safe='')}", params=params, total_s=total_s)
        detail = self._detail(answer, code)
        if detail is None:
            return None
        return SourceDossier(record_of(detail, secret, self.zone))

    def _detail(self, answer: Answer, asked: str) -> DossierDetail | None:
        if answer.status == 203:  # wrong or missing secret, or not found in this site: all the same to us
            return None
        if answer.status == 404:
            return None
        if answer.status == 401:
            raise SourceError(ErrorKind.AUTH, "HTTP 401: the service account (username/password) was refused")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"HTTP {answer.status}: {snippet(answer.body)}")
        data = answer.json()
        if not isinstance(data, dict):
            raise SourceError(ErrorKind.BAD_ANSWER, f"detail is {type(data).__name__}, not an object")
        try:
            detail = DossierDetail.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise SourceError(ErrorKind.BAD_ANSWER, f"detail field {'.'.join(map(str, err['loc']))}: "
                                                    f"{err['msg']}") from None
        if detail.dossierNo != asked and str(data.get("dossierId")) != asked:
            raise SourceError(ErrorKind.BAD_ANSWER,
                              f"asked for {asked!r}, the answer is dossier {detail.dossierNo[:100]!r}")
        return detail

    # --- changes ------------------------------------------------------------------------------

    def changes(self, cursor: str | None, known: Known) -> Changes:
        state = self._cursor(cursor)
        statuses = self.opts.open_statuses if state["phase"] == "open" else self.opts.final_statuses
        start, size = state["start"], self.opts.page_size
        # No sort parameter: its field names are the server's search index's, not documented; the
        # default order is used and a dossier moved between pages is caught by the next pass.
        params: dict[str, Any] = {"status": ",".join(statuses), "start": start, "end": start + size}
        if state["phase"] == "final":
            since = datetime.fromisoformat(state["day"]) - timedelta(days=self.cfg.source_.overlap_days)
            params["fromFinishDate"] = since.strftime(DATE_FORMAT)
        answer = self.http.request("GET", "/dossiers", params=params)
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"list: HTTP {answer.status}: {snippet(answer.body)}")
        data = answer.json()
        if not isinstance(data, dict):
            raise SourceError(ErrorKind.BAD_ANSWER, "list answer is not an object")
        try:
            page = ListPage.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise SourceError(ErrorKind.BAD_ANSWER, f"list field {'.'.join(map(str, err['loc']))}: "
                                                    f"{err['msg']}") from None
        items, skipped = [], []
        for raw in page.data:
            try:
                items.append(ListItem.model_validate(raw))
            except ValidationError as exc:
                skipped.append(f"list item without a usable {exc.errors()[0]['loc'][0]}")
        stored = known([i.dossierNo for i in items])
        wanted, unchanged = [], []
        for item in items:
            try:
                fingerprint = (item.dossierStatus.lower(), _due(item.dueDate, self.zone))
            except SourceError as exc:
                skipped.append(f"{item.dossierNo[:100]}: {exc.message}")
                continue
            if stored.get(item.dossierNo) != fingerprint:
                wanted.append(item)
            else:
                unchanged.append(item.dossierNo)
        dossiers, more_skipped = self._details(wanted)
        skipped.extend(more_skipped)
        next_start = start + size
        if len(page.data) < size or next_start >= page.total:
            if state["phase"] == "open":
                state.update(phase="final", start=0)
            else:
                state.update(phase="open", start=0, day=state["pass_day"])
                state.pop("pass_day")
                return Changes(dossiers, json.dumps(state), True, listed=len(page.data), skipped=skipped,
                               unchanged=unchanged)
        else:
            state["start"] = next_start
        return Changes(dossiers, json.dumps(state), False, listed=len(page.data), skipped=skipped,
                       unchanged=unchanged)

    def _cursor(self, cursor: str | None) -> dict[str, Any]:
        today = datetime.now(self.zone).date().isoformat()
        state: dict[str, Any] = {"phase": "open", "start": 0, "day": "2000-01-01"}
        if cursor:
            try:
                loaded = json.loads(cursor)
                if isinstance(loaded, dict) and loaded.get("phase") in ("open", "final"):
                    state.update(loaded)
            except ValueError:
                log.warning("opencps: unreadable sync cursor %s; starting a full pass", snippet(cursor))
        # The day this pass began becomes the cursor's day once the pass completes.
        state.setdefault("pass_day", today)
        if state["phase"] == "open" and state["start"] == 0:
            state["pass_day"] = today
        return state

    def _details(self, items: list[ListItem]) -> tuple[list[SourceDossier], list[str]]:
        def one(item: ListItem) -> SourceDossier | str:
            ref = str(item.dossierId) if item.dossierId and item.dossierId > 0 else item.dossierNo
            try:
                answer = self.http.request("GET", f"/dossiers/{quote(ref, safe='')}")
                detail = self._detail(answer, ref)
            except SourceError as exc:
                if exc.kind == ErrorKind.BAD_ANSWER:
                    return f"{item.dossierNo[:100]}: {exc.message}"
                raise
            if detail is None:
                return f"{item.dossierNo[:100]}: listed but its detail is not readable (HTTP 203/404)"
            if detail.dossierNo != item.dossierNo:
                return f"{item.dossierNo[:100]}: detail is dossier {detail.dossierNo[:100]!r}"
            try:
                return SourceDossier(record_of(detail, None, self.zone))
            except SourceError as exc:
                return f"{item.dossierNo[:100]}: {exc.message}"

        if not items:
            return [], []
        with ThreadPoolExecutor(max_workers=min(self.opts.detail_workers, len(items))) as pool:
            results = list(pool.map(one, items))
        return ([r for r in results if isinstance(r, SourceDossier)], [r for r in results if isinstance(r, str)])

    # --- checks -------------------------------------------------------------------------------

    def check(self) -> str:
        answer = self.http.request("GET", "/ping")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"/ping answered HTTP {answer.status}: {snippet(answer.body)}")
        return f"/ping answered {snippet(answer.body, 20)}"

    def sample_code(self) -> str | None:
        answer = self.http.request("GET", "/dossiers", params={"start": 0, "end": 1})
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"list: HTTP {answer.status}: {snippet(answer.body)}")
        try:
            page = ListPage.model_validate(answer.json())
            item = ListItem.model_validate(page.data[0]) if page.data else None
        except ValidationError as exc:
            raise SourceError(ErrorKind.BAD_ANSWER, f"list: {exc.errors()[0]['msg']}") from None
        return item.dossierNo if item else None

    # --- satisfaction ratings (VotingManagement of backend-postal-api-rest) -----------------------

    @classmethod
    def takes_ratings(cls, cfg: Config) -> bool:
        return cfg.source_.opencps.voting_id > 0

    def push_rating(self, score: int, comment: str) -> str:
        """`POST /postal/votings/{id}/results` with the form fields of VotingResultInputModel (selected,
        comment, email); HTTP Basic and the groupId header as for dossiers. The answer is a
        VotingResultModel; one without votingResultId means OpenCPS stored nothing (VotingActionsImpl
        stores only for an existing voting and an account that is an employee or an applicant)."""
        selected = self.opts.voting_choices[score]
        answer = self.http.request("POST", self._voting_path(), data={
            "selected": str(selected), "comment": comment, "email": ""})
        data = self._voting_answer(answer, "add a voting result")
        ref = data.get("votingResultId") if isinstance(data, dict) else None
        if not isinstance(ref, int) or isinstance(ref, bool) or ref <= 0:
            raise SourceError(ErrorKind.REFUSED, f"voting {self.opts.voting_id} stored nothing: no such voting "
                                                 "in this site, or the service account is neither an employee "
                                                 "nor an applicant")
        return str(ref)

    def find_rating(self, marker: str) -> str | None:
        """`GET /postal/votings/{id}/results` ({total, data: [VotingResultDataModel]}): the result whose
        comment carries `marker`. OpenCPS HTML-escapes comments, so a marker is letters, digits and '-'."""
        data = self._voting_answer(self.http.request("GET", self._voting_path()), "list voting results")
        if not isinstance(data, dict):
            raise SourceError(ErrorKind.BAD_ANSWER, "voting results answer is not an object")
        for item in unwrap_list(data.get("data")):
            if isinstance(item, dict) and marker in str(item.get("comment") or ""):
                ref = as_text(item.get("votingResultId"))
                if isinstance(ref, str) and ref.isdigit():
                    return ref
        return None

    def _voting_path(self) -> str:
        # The postal application sits beside the dossiers one: <site>/o/rest/v2/postal/votings/...
        return f"/postal/votings/{self.opts.voting_id}/results"

    def _voting_answer(self, answer: Answer, what: str) -> Any:
        if answer.status == 401:
            raise SourceError(ErrorKind.AUTH, "HTTP 401: the service account (username/password) was refused")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"{what}: HTTP {answer.status}: {snippet(answer.body)}")
        return answer.json()

    def close(self) -> None:
        self.http.close()
