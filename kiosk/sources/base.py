"""What every source is: fetch one dossier by code (and the citizen's secret), list changes since a cursor.

A source answers with plain records keyed by the kiosk's dossier fields (code, status, procedure,
appointment_date, ...), already checked against the source's own answer model. They reach the store
only through `kiosk.store.ingest` (`Parser` then `apply_event`), so history and the one SMS notice
work the same as for REST and file imports.

Every failure is a `SourceError` with a `kind` (unreachable, timeout, auth, refused, bad_answer,
too_big, unsupported) and a message fit for a log line: it never carries a credential, and a
source's body appears in it only as a short, printable prefix.
"""
from __future__ import annotations

import base64
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Callable, Iterable, Mapping

import httpx
from pydantic import BeforeValidator, StringConstraints

from motcua.config import Config, SourceConfig

log = logging.getLogger(__name__)
# httpx logs every request line at INFO, query string included: that would put a citizen's secretKey
# in the journal. Our own log lines say what IT staff need.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class ErrorKind(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    AUTH = "auth"
    REFUSED = "refused"
    BAD_ANSWER = "bad_answer"
    TOO_BIG = "too_big"
    UNSUPPORTED = "unsupported"


class SourceError(Exception):
    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class SourceDossier:
    """One dossier as the source told it, in the kiosk's field names (ingest validates it again)."""

    record: dict[str, Any]

    @property
    def code(self) -> str:
        return str(self.record["code"])


# What the store already knows about codes the sync lists: code -> (source status, appointment date ISO).
Known = Callable[[list[str]], Mapping[str, tuple[str | None, str | None]]]


@dataclass
class Changes:
    """One page of a change listing. `cursor` resumes after it; `done` when the pass is complete."""

    dossiers: list[SourceDossier]
    cursor: str
    done: bool
    listed: int = 0  # items the source listed on this page (read in detail or not)
    skipped: list[str] = field(default_factory=list)  # log lines for items refused as malformed
    unchanged: list[str] = field(default_factory=list)  # codes listed as the store holds them: confirmed now


class Source:
    """Base class: `kind` names it in the config and on the health page."""

    kind = "none"
    supports_fetch = True
    supports_changes = False
    # True when a complete pass of `changes` reports every change since the cursor (a real change
    # feed), so it confirms every stored dossier. False for OpenCPS, whose lists show the open
    # dossiers only: there an open dossier is confirmed by its own check (listed or read), and the
    # sync reads in detail the open ones a pass did not see.
    complete_feed = False
    status_map: Mapping[str, str] = {}  # source status code -> kiosk status, for the ingest parser

    def fetch(self, code: str, secret: str | None) -> SourceDossier | None:
        """The dossier, or None when the source does not know it (or the secret is wrong)."""
        raise SourceError(ErrorKind.UNSUPPORTED, f"{self.kind} cannot look dossiers up")

    def changes(self, cursor: str | None, known: Known) -> Changes:
        raise SourceError(ErrorKind.UNSUPPORTED, f"{self.kind} has no change listing")

    def check(self) -> str:
        """Reachability and credentials; returns a one-line description of what answered."""
        raise SourceError(ErrorKind.UNSUPPORTED, f"{self.kind} has nothing to check")

    def sample_code(self) -> str | None:
        """One code the source lists, for `kiosk source check`; None when it lists nothing."""
        return None

    # Satisfaction ratings (kiosk/ratings/push.py): only kinds whose system has a voting API take them.
    @classmethod
    def takes_ratings(cls, cfg: Config) -> bool:
        """Whether this kind, so configured, sends ratings to the provincial system."""
        return False

    def push_rating(self, score: int, comment: str) -> str:
        """Add one rating (score 1-5, a comment carrying the push's marker); returns the system's id for it."""
        raise SourceError(ErrorKind.UNSUPPORTED, f"{self.kind} has no voting API")

    def find_rating(self, marker: str) -> str | None:
        """The system's id of an earlier push whose comment carries `marker`; None if it has none."""
        raise SourceError(ErrorKind.UNSUPPORTED, f"{self.kind} has no voting API")

    def close(self) -> None:
        pass


def snippet(body: bytes | str, limit: int = 80) -> str:
    """A short printable prefix of an answer, for a log line (an HTML error page, a bare text)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise SourceError(ErrorKind.BAD_ANSWER,
                              f"HTTP {self.status} answer is not JSON ({self.content_type or 'no type'}): "
                              f"{snippet(self.body)}") from None


class Http:
    """httpx with what every provincial call needs: TLS verified, timeouts, a size cap, no redirects
    to follow blindly, and an overall time limit per call (a server trickling bytes is cut off)."""

    def __init__(self, cfg: SourceConfig, *, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None):
        verify: Any = True
        if cfg.ca_file:
            verify = ssl.create_default_context(cafile=cfg.ca_file)
        self.cfg = cfg
        self.max_bytes = cfg.max_response_bytes
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            verify=verify,
            timeout=httpx.Timeout(cfg.read_timeout_s, connect=cfg.connect_timeout_s),
            headers={"Accept": "application/json", "User-Agent": "motcua-kiosk", **(headers or {})},
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def request(self, method: str, path: str, *, total_s: float | None = None, **kwargs: Any) -> Answer:
        limit = total_s if total_s is not None else self.cfg.read_timeout_s + self.cfg.connect_timeout_s
        started = time.monotonic()
        try:
            with self.client.stream(method, path, **kwargs) as resp:
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise SourceError(ErrorKind.TOO_BIG, f"answer of {declared} bytes is over the "
                                                         f"{self.max_bytes}-byte cap")
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(ErrorKind.TOO_BIG, f"answer is over the {self.max_bytes}-byte cap")
                    if time.monotonic() - started > limit:
                        raise SourceError(ErrorKind.TIMEOUT, f"answer took longer than {limit:.1f} s")
                    chunks.append(chunk)
                return Answer(resp.status_code, b"".join(chunks), resp.headers.get("content-type", ""))
        except httpx.TimeoutException as exc:
            raise SourceError(ErrorKind.TIMEOUT, f"no answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            # The message may name the host and port, never a credential (those are in headers/body).
            raise SourceError(ErrorKind.UNREACHABLE, f"{type(exc).__name__}: {str(exc)[:160]}") from None

    def close(self) -> None:
        self.client.close()


def basic_auth(username: str, password: str) -> dict[str, str]:
    if not username:
        return {}
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def unwrap_list(value: Any) -> list[Any]:
    """Older OpenCPS JSON mappers turn a one-item list into the item and drop empty lists."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_text(value: Any) -> Any:
    """Number-like text may arrive as a number (an all-digit code, '1.001234'): give it back as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return value


# A field of a provincial answer: number-like text kept as text, trimmed and bounded.
Text = Annotated[str, BeforeValidator(as_text), StringConstraints(strip_whitespace=True, max_length=2000)]
Required = Annotated[str, BeforeValidator(as_text), StringConstraints(strip_whitespace=True, min_length=1,
                                                                      max_length=200)]


def first(items: Iterable[Any]) -> Any:
    return next(iter(items), None)
