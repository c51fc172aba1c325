"""Transports beside the modem, behind one small interface: Zalo ZNS and an HTTP SMS brandname provider.

A transport takes one notice and either returns the provider's message id or raises
`sms_gateway.modem.SendError` with the same outcomes as the modem (temporary, permanent, ambiguous),
so the outbox and its states are the same whatever carried the notice. Each request carries a key
derived from the notice (ZNS `tracking_id`, the brandname `RequestId`), so sending the same notice
again after an ambiguous timeout cannot make a second message: the provider recognises it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Channel(StrEnum):
    """What carried a notice; stored in notices.channel."""
    MODEM = "modem"
    ZNS = "zns"
    BRANDNAME = "brandname"


@dataclass(frozen=True)
class Outgoing:
    notice_id: int
    key: str  # the notice's idempotency key: the provider-side dedupe key is derived from it
    phone_e164: str
    kind: str
    params: dict[str, Any]
    text: str  # the rendered SMS text (brandname); ZNS sends template data instead
    unicode: bool


class Transport(Protocol):
    channel: Channel

    def accepts(self, notice: Outgoing) -> bool:
        """Whether this transport can carry this notice at all (a ZNS template for its kind...)."""
        ...

    def send(self, notice: Outgoing) -> str:
        """Send; the provider's message id. Raises SendError."""
        ...

    def close(self) -> None: ...


def request_key(notice: Outgoing) -> str:
    """A provider-side key for this notice: the same on every attempt, so a resend is recognised."""
    import hashlib

    return "mc" + hashlib.sha256(notice.key.encode("utf-8")).hexdigest()[:30]
