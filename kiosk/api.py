"""REST ingest for the provincial system: `POST /api/v1/dossiers`, and its OpenAPI document; Zalo's
ZNS delivery webhook, `POST /api/v1/zalo/webhook` (the work is sms_gateway.api.zns_callback's).

Every failure is a JSON body `{"error": "...", ...}` with a 4xx status naming the problem; a batch
is validated whole before anything is written, so a bad batch writes nothing.
"""
from __future__ import annotations

import hmac
import json
import logging
import re

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from kiosk.context import get_config, get_engine
from kiosk.openapi import openapi_document
from kiosk.store.ingest import Parser, ingest_batch
from sms_gateway import api as sms

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")

# A batch is {"dossiers": [{...}]}: three levels. json.loads recurses once per level (100,000 levels
# is a RecursionError) and turns a 5,000-digit number into a ValueError, so both are bounded first.
MAX_DEPTH = 16
MAX_INT_DIGITS = 20
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


class JsonRefused(ValueError):
    """The body is JSON we will not parse (too deep, a number too long); the message says which."""


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Does the JSON text nest [ and { deeper than `limit`? Brackets inside strings are ignored.

    Each pass removes the innermost empty pairs (C-speed regex, no recursion): whatever remains
    after `limit` passes was deeper.
    """
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    for _ in range(limit):
        inner = _EMPTY_PAIR.sub(b"", brackets)
        if inner == brackets:
            break
        brackets = inner
    opened = brackets.count(b"[") + brackets.count(b"{")
    return bool(brackets) and opened * 2 == len(brackets)  # unbalanced: json.loads says where


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonRefused(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def loads_bounded(raw: bytes) -> object:
    """json.loads with a nesting limit and a digit limit; JsonRefused or JSONDecodeError otherwise."""
    if too_deep(raw):
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels")
    return json.loads(raw, parse_int=_bounded_int)


def _error(status: int, message: str, **extra) -> Response:
    resp = jsonify({"error": message, **extra})
    resp.status_code = status
    return resp


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        limit = get_config().ingest.max_body_bytes
        return _error(413, f"request body larger than the limit of {limit} bytes ([ingest] max_body_bytes)")
    return _error(exc.code or 500, exc.description or exc.name)


def _authorised() -> Response | None:
    token = get_config().ingest.api_token
    if not token:
        return _error(403, "the ingest API is disabled: set [ingest] api_token in the configuration")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        resp = _error(401, "missing bearer token (Authorization: Bearer <token>)")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="motcua"'
        return resp
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        resp = _error(401, "wrong bearer token")
        resp.headers["WWW-Authenticate"] = 'Bearer realm="motcua", error="invalid_token"'
        return resp
    return None


@bp.post("/dossiers")
def ingest_dossiers() -> Response:
    denied = _authorised()
    if denied is not None:
        return denied
    cfg = get_config()
    if request.content_length is not None and request.content_length > cfg.ingest.max_body_bytes:
        return _http_error(RequestEntityTooLarge())
    if request.mimetype != "application/json":
        return _error(415, "send the batch as application/json")
    raw = request.get_data(cache=False)
    try:
        body = loads_bounded(raw)
    except JsonRefused as exc:
        return _error(400, f"JSON refused: {exc}")
    except UnicodeDecodeError:
        return _error(400, "malformed JSON: the body is not UTF-8")
    except json.JSONDecodeError as exc:
        return _error(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    records = body.get("dossiers") if isinstance(body, dict) else body
    if not isinstance(records, list):
        return _error(400, 'the body must be {"dossiers": [...]} or a JSON array of dossiers')
    if len(records) > cfg.ingest.max_batch:
        return _error(413, f"batch of {len(records)} dossiers exceeds [ingest] max_batch = {cfg.ingest.max_batch}")
    report = ingest_batch(get_engine(), Parser.from_config(cfg), records, via="api", source=request.remote_addr)
    if report.errors:
        first = report.errors[0]
        return _error(
            422,
            f"{len(report.errors)} invalid dossier(s), nothing was written; first: "
            f"#{first['index']} {first['field']}: {first['error']}",
            errors=report.errors[:100],
        )
    log.info("ingest from %s: %s", request.remote_addr, report.as_dict())
    return jsonify(report.as_dict())


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(get_config()))


@bp.post("/zalo/webhook")
def zalo_webhook() -> Response:
    """Zalo's callbacks for the OA (ZNS delivered...): checked and kept by the SMS gateway's api. The
    web app is only the door, so the appliance runs no extra server for it."""
    limit = sms.ZNS_CALLBACK_MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"callback larger than {limit} bytes")
    raw = request.stream.read(limit + 1)  # a body without a length is not read past the limit either
    status, answer = sms.zns_callback(get_config(), get_engine(), raw, request.headers)
    if status != 200:
        log.warning("ZNS webhook from %s refused (%d): %s", request.remote_addr, status, answer.get("error"))
        return _error(status, answer.get("error", "refused"))
    return jsonify(answer)
