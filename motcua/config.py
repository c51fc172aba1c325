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
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


# --- the kiosk web app --------------------------------------------------------------------------

class KioskConfig(Section):
    bind: str = "127.0.0.1:8080"
    workers: int = Field(2, ge=1)
    threads: int = Field(8, ge=1)
    secret_key: str = Field("", description="Flask session key; empty: generated once into data_dir")
    default_language: Literal["vi", "en"] = "vi"
    idle_timeout_s: int = Field(45, ge=5)
    kiosk_addresses: list[str] = Field(
        default=["127.0.0.1", "::1"], description="Clients treated as the kiosk screen itself"
    )
    public_lookup_rate: str = Field("10 per minute", description="Flask-Limiter rate for other clients")


# --- parts with their own section. Each part's module reads only its own section. -------------

class ScannerConfig(Section):
    """Camera QR scanner process (kiosk/scanner)."""
    camera: str = Field("0", description="OpenCV index, or a /dev/v4l/by-id/... path")
    width: int = Field(640, ge=160)
    height: int = Field(480, ge=120)
    fps: int = Field(15, ge=1, le=60)
    listen: str = Field("127.0.0.1:8765", description="scan events (SSE) and preview for the kiosk screen")


class PrinterConfig(Section):
    """ESC/POS printer owned by the print worker (kiosk/printing)."""
    kind: Literal["usb", "serial", "network", "cups", "file", "dummy"] = "file"
    target: str = Field("", description="file path, device node, host, serial port or CUPS queue; empty: data_dir/printer.out")
    paper_dots: int = Field(576, description="384 for 58 mm paper, 576 for 80 mm")


class QueueConfig(Section):
    """Hall queue: services, prefixes and counters (kiosk/queue)."""


class SmsConfig(Section):
    """Notices and their texts (sms_gateway)."""


class ModemConfig(Section):
    """Passed to Gammu unchanged: device, connection, model (sms_gateway)."""
    device: str = ""
    connection: str = "none"
    model: str = "dummy"


class StaffConfig(Section):
    """Staff pages (kiosk/staff)."""


class Config(Section):
    site: SiteConfig = Field(default_factory=SiteConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    statuses: StatusesConfig = Field(default_factory=StatusesConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    import_: ImportConfig = Field(default_factory=ImportConfig, alias="import")
    kiosk: KioskConfig = Field(default_factory=KioskConfig)
    scanner: ScannerConfig = Field(default_factory=lambda: ScannerConfig())
    printer: PrinterConfig = Field(default_factory=lambda: PrinterConfig())
    queue: QueueConfig = Field(default_factory=lambda: QueueConfig())
    sms: SmsConfig = Field(default_factory=lambda: SmsConfig())
    modem: ModemConfig = Field(default_factory=lambda: ModemConfig())
    staff: StaffConfig = Field(default_factory=lambda: StaffConfig())

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _default_db(self) -> "Config":
        if not self.database.url:
            self.database.url = f"sqlite:///{self.paths.data_dir / 'motcua.db'}"
        return self


def _describe(exc: ValidationError, prefix: str = "", source: Path | None = None) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if p != "import_"]
    key = ".".join(([prefix] if prefix else []) + loc) or "(top level)"
    key = key.replace("import_", "import")
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


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
