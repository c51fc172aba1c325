"""What other parts of the appliance use from `kiosk.sources`."""
from __future__ import annotations

from typing import Any

from kiosk.sources.base import ErrorKind, Source, SourceDossier, SourceError
from kiosk.sources.dropfolder import DropFolderSource
from kiosk.sources.dvcqg import DvcqgSource
from kiosk.sources.http_json import HttpJsonSource
from kiosk.sources.lookup import LookupResult, lookup
from kiosk.sources.opencps import OpenCpsSource
from kiosk.sources.store import sync_health
from motcua.config import Config

KINDS: dict[str, type[Source]] = {
    "opencps": OpenCpsSource, "dvcqg": DvcqgSource, "http_json": HttpJsonSource, "dropfolder": DropFolderSource,
}


def takes_ratings(cfg: Config) -> bool:
    """Whether the configured source sends satisfaction ratings on (without opening a connection)."""
    kind = KINDS.get(cfg.source_.kind)
    return bool(kind and kind.takes_ratings(cfg))


def make_source(cfg: Config, transport: Any = None) -> Source | None:
    """The configured source, or None for kind = "none". `transport` is for tests only."""
    kind = KINDS.get(cfg.source_.kind)
    return kind(cfg, transport) if kind else None


__all__ = ["ErrorKind", "LookupResult", "Source", "SourceDossier", "SourceError", "lookup", "make_source",
           "sync_health", "takes_ratings"]
