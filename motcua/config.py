"""The appliance's one configuration file (TOML), read by both `kiosk` and `sms-gateway`.

Where it comes from: `--config PATH`, else the `MOTCUA_CONFIG` environment variable, else
`/etc/motcua/config.toml`; when none of those exists every setting keeps its documented default,
so the demo runs with no file at all. `config.sample.toml` in the repository documents each key.

Each section is a small model. A section owned by one part of the appliance (scanner, printer,
queue, sms, ...) keeps its settings together; unknown keys are errors, so a typo is reported
instead of silently ignored.
"""
from __future__ import annotations

import os
import re
import stat
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from motcua.patterns import compile_scanner_pattern
from motcua.stations import StationRole

ENV_VAR = "MOTCUA_CONFIG"
DEFAULT_PATH = Path("/etc/motcua/config.toml")
DATA_DIR_ENV = "MOTCUA_DATA_DIR"


class ConfigError(Exception):
    """A configuration problem, worded for the IT person who edits the file."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --- site: who the appliance serves -------------------------------------------------------------

class OpeningPeriod(Section):
    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="0=Monday ... 6=Sunday")
    open: time = time(7, 30)
    close: time = time(17, 0)

    @field_validator("days")
    @classmethod
    def _days_in_week(cls, v: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in v):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return v


class SiteConfig(Section):
    commune_name: str = "UBND xã Yên Hòa"
    department_name: str = "Bộ phận Tiếp nhận và Trả kết quả"
    address: str = "Trụ sở UBND xã, tầng 1"
    hotline: str = ""
    timezone: str = "Asia/Ho_Chi_Minh"
    collect_place: str = "Quầy trả kết quả, Bộ phận Một cửa"
    agency_prefixes: list[str] = Field(
        default_factory=list,
        description="Agency part of this commune's dossier codes (e.g. 000.00.21.H42), so the keypad needs only "
                    "the date and sequence; empty: the most common one among stored codes")
    demo: bool = Field(False, description="a `kiosk demo` config: the screens say so (written by `kiosk demo`)")
    opening_hours: list[OpeningPeriod] = Field(
        default_factory=lambda: [
            OpeningPeriod(days=[0, 1, 2, 3, 4], open=time(7, 30), close=time(11, 30)),
            OpeningPeriod(days=[0, 1, 2, 3, 4], open=time(13, 30), close=time(17, 0)),
            OpeningPeriod(days=[5], open=time(7, 30), close=time(11, 30)),
        ]
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


# --- station: which box of the hall this is ----------------------------------------------------

STATION_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
DEFAULT_STATION_ID = "main"


class StationConfig(Section):
    """This box in the hall (motcua/stations.py). A single Pi keeps the defaults; every box sharing one
    PostgreSQL database needs its own id, since print jobs and devices are addressed by it."""
    id: str = Field(DEFAULT_STATION_ID, pattern=STATION_ID_PATTERN,
                    description="this box's id in the hall (lower-case letters, digits, - and _), unique per hall")
    name: str = Field("", max_length=100, description="what staff call it, e.g. 'Kiosk cửa chính'; empty: the id")
    role: StationRole = Field(
        StationRole.KIOSK, description="kiosk (screen, scanner, printer), counter, display or gateway")
    heartbeat_s: float = Field(30.0, gt=0, description="how often each service on this box says it is alive")
    stale_after_s: float = Field(
        120.0, gt=0, description="the staff health page shows a station as stale when silent this long")

    @property
    def label(self) -> str:
        return self.name or self.id


# --- storage ------------------------------------------------------------------------------------

class DatabaseConfig(Section):
    url: str = Field("", description="SQLAlchemy URL; empty means sqlite file motcua.db in data_dir")
    busy_timeout_ms: int = Field(10_000, ge=0)
    pool_size: int = Field(5, ge=1)


class PathsConfig(Section):
    data_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get(DATA_DIR_ENV, "/var/lib/motcua")),
        description="Database, print jobs, backups and demo files live here.",
    )


# --- data in ------------------------------------------------------------------------------------

DEFAULT_STATUS_MAP: dict[str, str] = {
    # OpenCPS internal codes -> the kiosk's citizen-facing statuses (see docs/statuses.md).
    "new": "waiting",
    "collecting": "waiting",
    "receiving": "waiting",
    "processing": "processing",
    "handover": "processing",
    "paying": "processing",
    "waiting": "more_documents",
    "correcting": "more_documents",
    "releasing": "result_ready",
    "posting": "result_ready",
    "done": "handed_over",
    "denied": "denied",
    "cancelled": "cancelled",
}


class StatusesConfig(Section):
    source_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATUS_MAP))

    @field_validator("source_map")
    @classmethod
    def _targets_known(cls, v: dict[str, str]) -> dict[str, str]:
        from motcua.statuses import STATUSES

        bad = {k: t for k, t in v.items() if t not in STATUSES}
        if bad:
            k, t = next(iter(bad.items()))
            raise ValueError(f"{k!r} maps to unknown status {t!r}; known: {', '.join(STATUSES)}")
        return {k.strip().lower(): t for k, t in v.items()}


class IngestConfig(Section):
    api_token: str = Field("", description="Bearer token for POST /api/v1/dossiers; empty disables the API")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    max_batch: int = Field(20_000, ge=1)


DEFAULT_IMPORT_COLUMNS: dict[str, str] = {
    "code": "Mã hồ sơ",
    "secret": "Mã tra cứu",
    "procedure": "Thủ tục",
    "field": "Lĩnh vực",
    "applicant_name": "Người nộp",
    "phone": "Số điện thoại",
    "status": "Trạng thái",
    "appointment_date": "Ngày hẹn trả",
    "received_at": "Ngày tiếp nhận",
    "source_updated_at": "Ngày cập nhật",
    "source_version": "Phiên bản",
}


class ImportConfig(Section):
    columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMPORT_COLUMNS))
    date_formats: list[str] = Field(default=["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"])
    datetime_formats: list[str] = Field(
        default=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"]
    )
    csv_delimiter: str = Field("", description="empty: detect , ; or tab")
    batch_rows: int = Field(500, ge=1, description="rows per transaction")
    # Bounds checked before an XLSX is opened (openpyxl keeps the whole shared-strings table in memory,
    # even read-only): a 1 MB file can unzip to gigabytes.
    max_xlsx_mb: int = Field(300, ge=1, description="largest total uncompressed size of an XLSX")
    max_shared_strings_mb: int = Field(50, ge=1, description="largest shared-strings table of an XLSX")
    max_cells: int = Field(20_000_000, ge=1000, description="most cells read from one file")
    max_columns: int = Field(200, ge=11, description="columns read per row; later columns are ignored")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        allowed = set(DEFAULT_IMPORT_COLUMNS)
        unknown = set(v) - allowed
        if unknown:
            raise ValueError(f"unknown dossier field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "code" not in v or "status" not in v:
            raise ValueError("columns must map at least 'code' and 'status'")
        return v


# --- the provincial system (kiosk/sources) -------------------------------------------------------

DEFAULT_DVCQG_STATUS_MAP: dict[str, str] = {
    # TrangThaiHoSo as the national portal's adapters use it (third-party data, see docs/sources.md).
    "1": "waiting", "2": "processing", "3": "denied", "4": "processing", "5": "more_documents",
    "6": "processing", "7": "cancelled", "8": "cancelled", "9": "result_ready", "10": "handed_over",
}
DEFAULT_HTTP_JSON_FIELDS: dict[str, str] = {
    # dossier field -> dotted path in the source's JSON record
    "code": "code", "status": "status", "procedure": "procedure", "field": "field",
    "applicant_name": "applicant_name", "phone": "phone", "appointment_date": "appointment_date",
    "received_at": "received_at", "source_updated_at": "updated_at",
}


class OpenCpsSourceConfig(Section):
    """OpenCPS v2 REST (`/o/rest/v2`)."""
    group_id: str = Field("", description="the site's groupId header; without it OpenCPS finds nothing")
    username: str = Field("", description="service account for HTTP Basic auth (the detail route requires it)")
    password: str = ""
    open_statuses: list[str] = Field(
        default=["new", "receiving", "processing", "waiting", "pausing", "correcting", "paying", "handover",
                 "releasing", "posting", "interoperating"],
        description="statuses the sync lists in full on every pass (dossiers that can still change)")
    final_statuses: list[str] = Field(
        default=["done", "denied", "cancelled", "unresolved"],
        description="statuses the sync lists only from the cursor's day on (fromFinishDate)")
    page_size: int = Field(200, ge=1, le=1000, description="list page size (start/end window)")
    detail_workers: int = Field(4, ge=1, le=16, description="parallel detail reads during a sync pass")
    voting_id: int = Field(0, ge=0, description="the voting (postal/votings/{id}) kiosk ratings are added to; "
                                                "0: ratings stay on the kiosk")
    voting_choices: dict[int, int] = Field(
        default_factory=lambda: {5: 1, 4: 2, 3: 3, 2: 4, 1: 5},
        description="kiosk score (1-5) -> the voting's `selected` value (OpenCPS counts choice i as i+1)")

    @field_validator("voting_choices")
    @classmethod
    def _every_score(cls, v: dict[int, int]) -> dict[int, int]:
        if set(v) != {1, 2, 3, 4, 5} or any(x < 0 for x in v.values()):
            raise ValueError("voting_choices maps each score 1..5 to a selected value >= 0")
        return v


class DvcqgSourceConfig(Section):
    """The national public-service portal's integration adapter (session + TraCuuHoSo)."""
    auth_path: str = Field("/auth", description="auth endpoint, after base_url")
    integration_path: str = Field("/integration", description="service endpoint, after base_url")
    username: str = ""
    password: str = ""
    dstcode: str = Field("", description="the dstcode header the adapter routes by")
    madonvi: str = Field("", description="the agency code sent with every request")
    status_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DVCQG_STATUS_MAP),
                                       description="TrangThaiHoSo -> kiosk status")

    @field_validator("status_map")
    @classmethod
    def _targets_known(cls, v: dict[str, str]) -> dict[str, str]:
        from motcua.statuses import STATUSES

        for k, t in v.items():
            if t not in STATUSES:
                raise ValueError(f"{k!r} maps to unknown status {t!r}; known: {', '.join(STATUSES)}")
        return {k.strip(): t for k, t in v.items()}


class HttpJsonSourceConfig(Section):
    """Any system with a JSON lookup URL; fields mapped by dotted path."""
    lookup_path: str = Field("/dossiers/{code}", description="after base_url; {code} is filled in (URL-quoted)")
    secret_param: str = Field("", description="query parameter that carries the citizen's secret; empty: none")
    changes_path: str = Field("", description="after base_url; ?since=<cursor> is added; empty: lookup only")
    items_key: str = Field("items", description="list of records in the changes answer")
    cursor_key: str = Field("next_cursor", description="the next cursor in the changes answer")
    bearer_token: str = Field("", description="sent as Authorization: Bearer <token>; empty: none")
    not_found_statuses: list[int] = Field(default=[404], description="HTTP statuses meaning 'no such dossier'")
    fields: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_HTTP_JSON_FIELDS))

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        allowed = set(DEFAULT_HTTP_JSON_FIELDS) | {"secret", "source_version"}
        unknown = set(v) - allowed
        if unknown:
            raise ValueError(f"unknown dossier field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "code" not in v or "status" not in v:
            raise ValueError("fields must map at least 'code' and 'status'")
        return v


class DropFolderSourceConfig(Section):
    """A watched folder: CSV/XLSX exports placed there are imported once ([import] columns)."""
    folder: Path | None = Field(None, description="empty: data_dir/inbox")
    settle_s: float = Field(5.0, ge=0, description="a file must be unchanged this long before it is read")


class SourceConfig(Section):
    """Where the kiosk follows the provincial system (docs/sources.md). Credentials live only here."""
    kind: Literal["none", "opencps", "dvcqg", "http_json", "dropfolder"] = "none"
    base_url: str = Field("", description="https://... of the provincial system (opencps: up to /o/rest/v2)")
    ca_file: str = Field("", description="extra CA bundle (PEM) for a provincial CA; TLS is always verified")
    connect_timeout_s: float = Field(3.0, gt=0, le=60)
    read_timeout_s: float = Field(10.0, gt=0, le=300, description="per call, for sync and checks")
    max_response_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="larger answers are refused")
    lookup_deadline_s: float = Field(2.0, gt=0, le=30,
                                     description="the kiosk answers from the store once this has passed")
    lookup_max_age_s: int = Field(300, ge=0, description="a stored dossier confirmed longer ago is fetched again")
    lookup_slots: int = Field(4, ge=1, le=32, description="on-demand fetches running at once per web worker")
    poll_s: float = Field(60.0, gt=0, description="sync: pause between two passes")
    backoff_max_s: float = Field(900.0, gt=0, description="sync: longest pause after repeated errors")
    overlap_days: int = Field(1, ge=0, le=31, description="sync: date filters reach this far before the cursor")
    refresh_batch: int = Field(200, ge=0, le=10000,
                               description="sync: stored open dossiers read again per pass, longest unchecked "
                                           "first (a source without a change feed; OpenCPS: those its lists "
                                           "did not show)")
    opencps: OpenCpsSourceConfig = Field(default_factory=lambda: OpenCpsSourceConfig())
    dvcqg: DvcqgSourceConfig = Field(default_factory=lambda: DvcqgSourceConfig())
    http_json: HttpJsonSourceConfig = Field(default_factory=lambda: HttpJsonSourceConfig())
    dropfolder: DropFolderSourceConfig = Field(default_factory=lambda: DropFolderSourceConfig())

    @model_validator(mode="after")
    def _url_for_http_kinds(self) -> "SourceConfig":
        if self.kind in ("opencps", "dvcqg", "http_json"):
            if not self.base_url.startswith(("https://", "http://")):
                raise ValueError(f"kind {self.kind!r} needs base_url = \"https://...\"")
        if "@" in self.base_url.partition("://")[2].partition("/")[0]:
            # Credentials go in their own keys, which the settings page and logs hide.
            raise ValueError("base_url must not carry a user or password; use the kind's username/password keys")
        return self


# --- the kiosk web app --------------------------------------------------------------------------

class KioskConfig(Section):
    bind: str = "127.0.0.1:8080"
    workers: int = Field(1, ge=1, description="gunicorn workers; one with `threads` threads serves a kiosk")
    threads: int = Field(16, ge=1,
                         description="threads per worker; each open event stream (scanner, hall display) holds one")
    secret_key: str = Field("", description="Flask session key; empty: generated once into data_dir")
    default_language: Literal["vi", "en"] = "vi"
    idle_timeout_s: int = Field(45, ge=2, description="Seconds without a touch before a screen returns home")
    kiosk_addresses: list[str] = Field(
        default=["127.0.0.1", "::1"], description="Clients treated as the kiosk screen itself"
    )
    public_lookup_rate: str = Field("10 per minute", description="Flask-Limiter rate for other clients")
    # Limits on the kiosk screen itself (a child at the screen, a USB HID gadget typing), per station
    # address; generous enough that a citizen never meets them.
    station_lookup_rate: str = Field("60 per minute", description="lookups (and SMS/slip screens) per kiosk station")
    station_ticket_rate: str = Field("12 per minute", description="queue tickets per kiosk station")
    slip_rate: str = Field("3 per 10 minutes", description="status slips per dossier")

    @field_validator("public_lookup_rate", "station_lookup_rate", "station_ticket_rate", "slip_rate")
    @classmethod
    def _rate_parses(cls, v: str) -> str:
        from limits import parse

        try:
            parse(v)
        except ValueError:
            raise ValueError(f"not a rate like '10 per minute': {v!r}") from None
        return v
    short_code_days: int = Field(
        7, ge=0, le=60, description="A sequence number typed alone finds a dossier received in this many recent days")


# --- parts with their own section. Each part's module reads only its own section. -------------

class ScannerConfig(Section):
    """Camera QR scanner process (kiosk/scanner)."""
    camera: str = Field("0", description="OpenCV index, or a /dev/v4l/by-id/... path")
    width: int = Field(640, ge=160)
    height: int = Field(480, ge=120)
    fps: int = Field(15, ge=1, le=60)
    socket: str = Field("", description="Unix socket for scan events and preview; empty: data_dir/scanner.sock")
    decoders: list[Literal["zxing", "zxing_retry", "zxing_unwarp", "pyzbar", "opencv"]] = Field(
        default=["zxing", "zxing_retry", "pyzbar", "zxing_unwarp"],
        description="Decoder chain, in order (see docs/scanner.md for the measurements behind it)")
    fallback_every: int = Field(
        3, ge=1, description="Run the slower fallback decoders on every Nth frame where the first finds nothing")
    fallback_cpu: float = Field(
        0.08, gt=0, le=1, description="Most of one core those blind fallbacks may use (they cost ~80 ms at 720p)")
    repeat_interval_s: float = Field(3.0, ge=0, description="The same code is reported once per this interval")
    patterns: list[str] = Field(
        default=[], description="Extra payload regexes (full match) with named groups code and optional secret")
    code_pattern: str = Field("", description="Regex a dossier code must fully match; empty: built-in loose shape")
    idle_fps: float = Field(
        6.0, ge=0, le=60, description="Frames taken per second while the camera sees an empty, unchanged scene "
        "(0: always all); the first frame that differs restores the full rate")
    sharp_edge: float = Field(
        0.4, gt=0, le=1, description="Edge steepness at or above which an unreadable code counts as sharp "
        "(creased paper or glare: the 'flatten' hint rather than 'hold still'); the scanner logs each "
        "hint with the value it measured, to set this for a softer camera")
    preview_fps: float = Field(3.0, gt=0, le=15, description="MJPEG preview frame rate for aiming")
    preview_width: int = Field(320, ge=80, description="MJPEG preview width in pixels")

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, v: list[str]) -> list[str]:
        for p in v:  # reported at load time rather than at the first scan
            compile_scanner_pattern(p)
        return v

    @field_validator("code_pattern")
    @classmethod
    def _code_pattern_compiles(cls, v: str) -> str:
        compile_scanner_pattern(v, needs_code_group=False)
        return v


class PrinterConfig(Section):
    """ESC/POS printer owned by the print worker (kiosk/printing)."""
    kind: Literal["usb", "serial", "network", "cups", "file", "dummy"] = "file"
    target: str = Field("", description="file path, device node, host, serial port or CUPS queue; "
                                    "empty: data_dir/printer.out")
    paper_dots: Literal[384, 576] = Field(576, description="384 for 58 mm paper, 576 for 80 mm")
    profile: str = Field("", description="python-escpos printer profile; empty: a generic one for paper_dots")
    usb_vendor_id: str = Field("", description="usb kind: vendor id in hex, e.g. 0x0416")
    usb_product_id: str = Field("", description="usb kind: product id in hex, e.g. 0x5011")
    usb_in_ep: int = Field(0x82, description="usb kind: input endpoint")
    usb_out_ep: int = Field(0x01, description="usb kind: output endpoint")
    baudrate: int = Field(9600, ge=1200, description="serial kind")
    network_port: int = Field(9100, ge=1, le=65535, description="network kind: raw TCP port")
    timeout_s: float = Field(5.0, gt=0, description="connect/read/write timeout for the printer")
    poll_s: float = Field(1.0, gt=0, description="how often the print worker looks for new jobs")
    status_every_s: float = Field(5.0, gt=0,
                                  description="how often the worker asks the printer for its state when idle")
    ticket_max_age_s: int = Field(1800, ge=0, description="queue tickets waiting longer than this (printer out) "
                                                          "are not printed late; 0 = always print")
    cut: bool = Field(True, description="cut the paper after each job")
    feed_lines: int = Field(3, ge=0, le=10, description="blank lines fed before the cut")


class QueueService(Section):
    """One service of the hall queue (a group of procedures served at the same counters)."""
    code: str = Field(description="short code used in URLs and the API, e.g. HT")
    name_vi: str
    name_en: str = ""
    prefix: str = Field(description="ticket letter(s), e.g. A -> A012")
    counters: list[str] = Field(default_factory=list, description="counter names serving this service, e.g. ['1', '2']")

    @field_validator("code", "prefix")
    @classmethod
    def _short_token(cls, v: str) -> str:
        v = v.strip().upper()
        if not v or len(v) > 8 or not v.isascii() or not v.isalnum():
            raise ValueError("use 1-8 letters or digits")
        return v


def _default_services() -> list[QueueService]:
    return [
        QueueService(code="HT", name_vi="Hộ tịch - Chứng thực", name_en="Civil status - Certification",
                     prefix="A", counters=["1", "2"]),
        QueueService(code="DD", name_vi="Đất đai", name_en="Land", prefix="B", counters=["3"]),
        QueueService(code="LD", name_vi="Lao động - Thương binh và Xã hội",
                     name_en="Labour, war invalids and social affairs", prefix="C", counters=["4"]),
    ]


class QueueConfig(Section):
    """Hall queue: services, prefixes and counters (kiosk/queue)."""
    services: list[QueueService] = Field(default_factory=_default_services)
    number_digits: int = Field(3, ge=1, le=5, description="A7 -> A007 with 3; past 999 numbers are refused")
    max_waiting: int = Field(150, ge=1, description="tickets waiting per service before new ones are refused")
    default_service_min: float = Field(5.0, gt=0, description="minutes per citizen before there is history")
    estimate_window: int = Field(20, ge=1, description="recent served tickets used for the wait estimate")
    display_calls: int = Field(4, ge=1, le=12, description="recent calls shown per service on the hall display")
    priority_every: int = Field(
        2, ge=0, le=20, description="call one priority ticket (elderly, disabled, pregnant) after at most this "
                                    "many regular ones; 0: priority tickets always first")
    display_poll_ms: int = Field(1500, ge=300, description="how often the hall display refreshes")
    announce: bool = Field(True, description="chime and spoken Vietnamese announcement (espeak-ng) on the display")
    espeak_voice: str = Field("vi", description="espeak-ng voice for announcements")
    espeak_speed: int = Field(140, ge=80, le=300, description="espeak-ng words per minute")

    @model_validator(mode="after")
    def _unique(self) -> "QueueConfig":
        if not self.services:
            raise ValueError("at least one service is needed")
        seen: dict[str, str] = {}
        for svc in self.services:
            for token in {svc.code, svc.prefix}:
                if seen.get(token, svc.code) != svc.code:
                    raise ValueError(f"{token!r} is used by services {seen[token]} and {svc.code}")
                seen[token] = svc.code
        return self


DEFAULT_SMS_TEMPLATES: dict[str, str] = {
    # Placeholders: {commune} {code} {procedure} {place} {hours} {appointment_date} {hotline} {text} {status}.
    # {procedure} is shortened (never the code) when the notice would need more than max_parts parts.
    "result_ready": "{commune}: Hồ sơ {code} ({procedure}) đã có kết quả. Mời nhận tại {place}, {hours}.",
    "more_documents": "{commune}: Hồ sơ {code} ({procedure}) cần bổ sung giấy tờ. Mời đến {place}, {hours}.",
    "denied": "{commune}: Hồ sơ {code} ({procedure}) bị từ chối. Xin liên hệ {place}, {hours}.",
    "text": "{text}",
    # Answers to text-in (sms_gateway/incoming.py); {status} is the kiosk's status wording. Never a name.
    "reply_status": "{commune}: Hồ sơ {code}: {status}. Gửi kèm mã bí mật trên giấy tiếp nhận để biết ngày hẹn trả.",
    "reply_status_secret": "{commune}: Hồ sơ {code}: {status}. Ngày hẹn trả: {appointment_date}.",
    "reply_help": "{commune}: Không tìm thấy hồ sơ. Soạn HS <mã hồ sơ> <mã bí mật> gửi số này để tra cứu; "
                  "HUY để ngừng nhận tin. Hỗ trợ: {hotline}.",
    # Reminders (sms_gateway/reminders.py), at most one of each per dossier.
    "reminder_appointment": "{commune}: Nhắc lịch: ngày mai {appointment_date} là ngày hẹn trả hồ sơ {code} "
                            "({procedure}). {place}, {hours}.",
    "reminder_uncollected": "{commune}: Hồ sơ {code} ({procedure}) đã có kết quả nhưng chưa được nhận. "
                            "Mời nhận tại {place}, {hours}.",
    "reply_opted_out": "{commune}: Số này sẽ không nhận tin báo hồ sơ nữa. Muốn nhận lại, xin báo {place}.",
}


class SmsConfig(Section):
    """Notices and their texts (sms_gateway)."""
    encoding: Literal["ascii", "ucs2"] = Field(
        "ascii", description="ascii: fold Vietnamese to plain letters (160 chars/part); "
                             "ucs2: full Vietnamese (70 chars/part)")
    max_parts: int = Field(1, ge=1, le=6, description="shorten {procedure} so a notice fits this many parts")
    templates: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SMS_TEMPLATES),
                                      description="text per notice kind (dossier status), Vietnamese")
    place: str = Field("", description="where to collect, as written in SMS; empty: site.collect_place")
    hours: str = Field("", description="opening hours as written in SMS; empty: derived from site.opening_hours")
    quiet_start: time = Field(time(21, 0), description="no sending from this local time ...")
    quiet_end: time = Field(time(7, 0), description="... until this local time (site timezone)")
    pace_s: float = Field(6.0, ge=0, description="pause between two messages")
    pace_jitter_s: float = Field(4.0, ge=0, description="random extra pause, 0..this")
    retry_base_s: float = Field(60.0, gt=0, description="first retry delay after a temporary error; doubles each time")
    retry_max_s: float = Field(3600.0, gt=0, description="longest retry delay")
    max_attempts: int = Field(8, ge=1, description="temporary errors after this many attempts fail the notice")
    delivery_reports: bool = Field(True, description="ask the network for delivery reports")
    resolve_window_s: float = Field(2 * 86400, gt=0, description="an uncertain notice whose number gets an "
                                    "unmatched delivery report within this is marked sent")
    resolve_wait_s: float = Field(1800, gt=0, description="an uncertain notice with no report this long, while "
                                  "reports arrive for later messages, is sent again once automatically")
    resolve_min_reports: int = Field(3, ge=1, description="... reports for at least this many later messages")
    reminder_appointment: bool = Field(True, description="an SMS the day before the appointment date")
    reminder_uncollected_days: int = Field(3, ge=0, description="an SMS when a ready result is not collected "
                                           "after this many days (0: never)")
    text_in: bool = Field(True, description="read citizens' SMS to the hall's number and answer lookups and HUY/STOP")
    text_in_replies_per_hour: int = Field(5, ge=0, description="answers to one number per hour at most")
    poll_s: float = Field(2.0, gt=0, description="how often an idle gateway looks at the outbox and the modem")
    holder_stale_s: float = Field(
        300.0, gt=0, description="a notice another gateway is sending becomes uncertain once that gateway's "
                                 "heartbeat is older than this (it died); more than twice [modem] send_timeout_s")
    balance_ussd: str = Field("*101#", description="USSD code for the prepaid balance; empty disables the check")
    balance_every_s: float = Field(6 * 3600, gt=0, description="how often to ask the balance")
    balance_low_below: float = Field(10_000, ge=0, description="warn on the staff health page below this amount (VND)")
    balance_pattern: str = Field(r"(\d[\d.,]*)\s*(?:d|đ|vnd|dong|đồng)\b",
                                 description="regex whose first group is the main balance in the USSD answer")

    @field_validator("templates")
    @classmethod
    def _templates_complete(cls, v: dict[str, str]) -> dict[str, str]:
        merged = {**DEFAULT_SMS_TEMPLATES, **v}
        for kind, text in merged.items():
            try:
                text.format(commune="", code="", procedure="", place="", hours="", appointment_date="",
                            hotline="", text="", status="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"template {kind!r}: unknown or malformed placeholder {exc}") from None
        return merged


class ModemConfig(Section):
    """Passed to Gammu unchanged: device, connection, model (sms_gateway)."""
    device: str = ""
    connection: str = "none"
    model: str = "dummy"
    smsc: str = Field("", description="SMS centre number, pinned (Gammu forgets it after an unplug); empty: the SIM's")
    pin: str = Field("", description="SIM PIN, entered when the SIM asks for one")
    send_timeout_s: float = Field(60.0, gt=0, description="abort a send the modem has not answered after this")
    command_timeout_s: float = Field(10.0, gt=0, description="abort any other modem command unanswered after this "
                                                             "(an unplugged modem is noticed then, not after 40 s)")
    reconnect_s: float = Field(10.0, gt=0,
                               description="first wait before reconnecting a lost modem; doubles up to 5 min")
    health_every_s: float = Field(60.0, gt=0, description="how often to read SIM, network and signal")
    name: str = Field("modem", pattern=STATION_ID_PATTERN,
                      description="this modem's name on its station; the gateway is `station id/name` in the hall")
    daily_cap: int = Field(0, ge=0, description="most SMS parts this SIM sends per local day (operators lock SIMs "
                                                 "that look like spammers); at the cap the gateway stops claiming "
                                                 "until midnight; 0: no cap")


class ZnsConfig(Section):
    """Zalo ZNS: template notices to the citizen's Zalo account (sms_gateway/channels/zns.py)."""
    enabled: bool = Field(False, description="send notices by ZNS first; SMS when ZNS fails")
    api_url: str = Field("https://business.openapi.zalo.me", description="ZNS API base (POST /message/template)")
    oauth_url: str = Field("https://oauth.zaloapp.com", description="OAuth base (POST /v4/oa/access_token)")
    app_id: str = ""
    secret_key: str = Field("", description="the Zalo app's secret key, for token refresh")
    refresh_token: str = Field("", description="first refresh token; later ones are kept in data_dir")
    templates: dict[str, str] = Field(default_factory=dict,
                                      description="ZNS template_id per notice kind (kinds without one go by SMS)")
    timeout_s: float = Field(10.0, gt=0, description="timeout of every ZNS request")
    # Delivery callbacks: Zalo POSTs `user_received_message` to the OA's webhook (POST /api/v1/zalo/webhook
    # on the kiosk web app), signed with the OA secret key (sms_gateway/zns_delivery.py).
    oa_secret_key: str = Field("", description="the Official Account's secret key: checks the webhook's signature")
    delivery_callbacks: bool = Field(False, description="the webhook is set up: a ZNS notice not reported "
                                     "delivered within delivery_wait_s goes once by SMS")
    delivery_wait_s: float = Field(900.0, gt=0, description="how long a sent ZNS notice waits for its delivery "
                                   "callback before the SMS fallback")


class BrandnameConfig(Section):
    """An HTTP SMS brandname provider (eSMS-style API) used instead of the modem (channels/brandname.py)."""
    enabled: bool = Field(False, description="send SMS through the brandname provider, not the modem")
    api_url: str = Field("https://rest.esms.vn/MainService.svc/json", description="provider API base")
    api_key: str = ""
    secret_key: str = ""
    brandname: str = Field("", description="the registered sender name")
    sms_type: int = Field(2, description="provider SmsType (2: customer care brandname)")
    timeout_s: float = Field(10.0, gt=0, description="timeout of every request")


class StaffConfig(Section):
    """Staff pages (kiosk/staff)."""
    allow_kiosk_addresses: bool = Field(
        False, description="Let the kiosk screen's own addresses ([kiosk] kiosk_addresses) open staff pages"
    )
    cookie_name: str = Field("motcua_staff", description="Staff session cookie (separate from the kiosk screen's)")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="Secure flag on the staff cookie; auto: when the request came over HTTPS"
    )
    session_idle_minutes: int = Field(30, ge=1, description="Sign out after this long without a request")
    session_max_hours: int = Field(10, ge=1, description="Sign out this long after signing in, whatever happens")
    login_rate: str = Field("10 per minute", description="Flask-Limiter rate for sign-in attempts per address")
    lockout_failures: int = Field(5, ge=1, description="Wrong passwords in a row that lock an account")
    lockout_minutes: int = Field(15, ge=1, description="How long a locked account stays locked")
    address_failures: int = Field(
        20, ge=1, description="Failed sign-ins from one address within lockout_minutes before it is refused"
    )
    min_password_length: int = Field(10, ge=8)
    password_time_cost: int = Field(3, ge=1, description="argon2id passes (argon2-cffi default)")
    password_memory_kib: int = Field(
        65536, ge=8192, description="argon2id memory per hash in KiB (64 MiB, the argon2-cffi default)"
    )
    sms_part_price_vnd: int = Field(
        0, ge=0, description="Price of one SMS part on the SIM's plan, for the cost column; 0 hides it"
    )
    disk_warn_mb: int = Field(500, ge=0, description="Device health warns below this much free space in data_dir")
    disk_error_mb: int = Field(100, ge=0, description="Device health reports an error below this")
    ingest_stale_hours: int = Field(26, ge=1, description="Warn when the last ingest finished longer ago")
    quick_check_interval_s: int = Field(300, ge=0, description="Run SQLite PRAGMA quick_check at most this often")


class Config(Section):
    station: StationConfig = Field(default_factory=StationConfig)
    site: SiteConfig = Field(default_factory=SiteConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    statuses: StatusesConfig = Field(default_factory=StatusesConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    import_: ImportConfig = Field(default_factory=ImportConfig, alias="import")
    source_: SourceConfig = Field(default_factory=lambda: SourceConfig(), alias="source")
    kiosk: KioskConfig = Field(default_factory=KioskConfig)
    scanner: ScannerConfig = Field(default_factory=lambda: ScannerConfig())
    printer: PrinterConfig = Field(default_factory=lambda: PrinterConfig())
    queue: QueueConfig = Field(default_factory=lambda: QueueConfig())
    sms: SmsConfig = Field(default_factory=lambda: SmsConfig())
    modem: ModemConfig = Field(default_factory=lambda: ModemConfig())
    zns: ZnsConfig = Field(default_factory=lambda: ZnsConfig())
    brandname: BrandnameConfig = Field(default_factory=lambda: BrandnameConfig())
    staff: StaffConfig = Field(default_factory=lambda: StaffConfig())

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # The file this was read from (None: built-in defaults). Not a setting: `[source]` is `source_`.
    _file: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        return self._file

    @source.setter
    def source(self, path: Path | None) -> None:
        self._file = path

    @model_validator(mode="after")
    def _holder_outlives_a_send(self) -> "Config":
        # A live gateway writes no heartbeat while one send hangs up to send_timeout_s; a shorter
        # staleness would let another gateway declare it dead in the middle of its send.
        if self.sms.holder_stale_s <= 2 * self.modem.send_timeout_s:
            raise ValueError(f"[sms] holder_stale_s ({self.sms.holder_stale_s:g}) must be more than twice "
                             f"[modem] send_timeout_s ({self.modem.send_timeout_s:g})")
        return self

    @model_validator(mode="after")
    def _default_db(self) -> "Config":
        if not self.database.url:
            self.database.url = f"sqlite:///{self.paths.data_dir / 'motcua.db'}"
        return self


def _describe(exc: ValidationError, prefix: str = "", source: Path | None = None) -> str:
    err = exc.errors()[0]
    aliases = {"import_": "import", "source_": "source"}
    loc = [aliases.get(str(p), str(p)) for p in err["loc"]]
    key = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting (check the spelling against config.sample.toml)"
    where = f" in {source}" if source else ""
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return f"config error{where}: {key}: {msg}{more}"


def resolve_path(explicit: str | os.PathLike[str] | None) -> tuple[Path | None, bool]:
    """Return (path, must_exist): explicit and env paths must exist; the default path may not."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env), True
    return DEFAULT_PATH, False


def load_config(explicit: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None) -> Config:
    path, must_exist = resolve_path(explicit)
    data: dict[str, Any] = {}
    source = None
    if path is not None and path.exists():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config error in {path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config error: cannot read {path}: {exc.strerror}") from None
        source = path
    elif must_exist:
        raise ConfigError(f"config error: file {path} does not exist")
    if overrides:
        data = _merge(data, overrides)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source=source)) from None
    cfg.source = source
    return cfg


# Setting names that hold credentials: the staff settings page masks them, and the file holding them
# must not be readable by others (hardware/setup.sh installs it 0640 root:motcua).
SECRET_SETTING = re.compile(r"^(secret_key|api_token|pin|password|secret)$|_(token|secret|password)$")
CONFIG_MODE = 0o640


def credentials_in(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the non-empty credential settings in a (parsed) config file."""
    names = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            names.extend(credentials_in(value, f"{name}."))
        elif SECRET_SETTING.search(key) and value not in ("", None):
            names.append(name)
    return names


def exposed_credentials(path: Path | None) -> str | None:
    """One sentence when the config file holds credentials and its mode is wider than 0640; else None."""
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        with path.open("rb") as fh:
            names = credentials_in(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the config check itself says why the file cannot be read
    if not names or not mode & ~CONFIG_MODE:
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    fix = f"run `chmod 0640 {path}` (owner root, group motcua)"
    if mode & stat.S_IROTH:
        return (f"{path} is mode {mode:04o}, so every user of this machine can read the credentials in it "
                f"({shown}): {fix}")
    return f"{path} holds credentials ({shown}) and is mode {mode:04o}, wider than 0640: {fix}"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
