"""Zalo ZNS: template notices (POST {api}/message/template, header `access_token`).

Body {phone: "84...", template_id, template_data, tracking_id}; answer {"error": 0, "data": {"msg_id"}}
or a negative `error` code. tracking_id is derived from the notice, so a retry after a timeout is
recognised. The access token lives about 25 h: on "token expired/invalid" it is refreshed once with
the refresh token (POST {oauth}/v4/oa/access_token, header `secret_key`, form app_id, grant_type,
refresh_token) and the request repeated; Zalo returns a new refresh token each time, so both are kept
in data_dir/sms-gateway/zns-token.json (the configured refresh_token only starts the chain).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from motcua.config import ZnsConfig
from sms_gateway.channels import Channel, Outgoing, request_key
from sms_gateway.modem import AMBIGUOUS, PERMANENT, TEMPORARY, SendError

# Error codes. Zalo's own table ("Cách xử lý mã lỗi", zalo.cloud/zns/guidelines/handle-error-code) was
# read from -100 to -112 only; the rest is from integrations, as marked.
# -124 "Access token invalid": not in the part of Zalo's table read, but the code every integration found
# refreshes on. -216 is the OA API's "access token is invalid", unconfirmed for ZNS; kept, since one
# needless refresh costs one request while a missed one stops ZNS until the next -124.
TOKEN_ERRORS = {-124, -216}
# No retry of this request can succeed (Zalo's table): -101..-105 the app (invalid, not existed, not
# activated, secret key invalid, not linked to an OA), -106 method unsupported, -107 message ID invalid,
# -108 phone number invalid, -109 template ID invalid, -110 the citizen's Zalo version unsupported, -111
# template data empty, -112 template data invalid. From integrations: -114 "User is inactive, or reject the
# message, or using an outdated Zalo version" (eSMS's ZNS callback sample), -118 "Zalo account not existed".
# -100 "Unknown error ... try again later" and anything else are temporary. Either way the notice goes by
# SMS at once (gateway._send): the class only words the failure.
PERMANENT_ERRORS = {-101, -102, -103, -104, -105, -106, -107, -108, -109, -110, -111, -112, -114, -118}
TEMPLATE_PATH = "/message/template"
TOKEN_PATH = "/v4/oa/access_token"


class ZnsTransport:
    channel = Channel.ZNS

    def __init__(self, cfg: ZnsConfig, workdir: Path, client: httpx.Client | None = None):
        self.cfg = cfg
        self.token_path = workdir / "zns-token.json"
        self.client = client or httpx.Client(timeout=cfg.timeout_s)
        self._tokens = self._load()

    def accepts(self, notice: Outgoing) -> bool:
        return notice.kind in self.cfg.templates

    # --- tokens ----------------------------------------------------------------------------------
    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self.token_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {"access_token": "", "refresh_token": self.cfg.refresh_token}

    def _save(self) -> None:
        self.token_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.token_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._tokens), encoding="utf-8")
        os.replace(tmp, self.token_path)

    def refresh(self) -> None:
        """A new access token (and refresh token) from Zalo's OAuth endpoint."""
        try:
            resp = self.client.post(self.cfg.oauth_url.rstrip("/") + TOKEN_PATH, timeout=self.cfg.timeout_s,
                                    headers={"secret_key": self.cfg.secret_key},
                                    data={"app_id": self.cfg.app_id, "grant_type": "refresh_token",
                                          "refresh_token": self._tokens.get("refresh_token", "")})
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SendError(TEMPORARY, f"ZNS token refresh failed ({type(exc).__name__})") from None
        if not data.get("access_token"):
            raise SendError(TEMPORARY, f"ZNS token refresh refused: {data.get('error_description') or data}")
        self._tokens = {"access_token": data["access_token"],
                        "refresh_token": data.get("refresh_token") or self._tokens.get("refresh_token", "")}
        self._save()

    # --- sending ---------------------------------------------------------------------------------
    def send(self, notice: Outgoing) -> str:
        if not self._tokens.get("access_token"):
            self.refresh()
        data = self._post(notice)
        if data.get("error") in TOKEN_ERRORS:
            self.refresh()
            data = self._post(notice)
        error = data.get("error")
        if error == 0:
            return str((data.get("data") or {}).get("msg_id") or "")
        detail = f"ZNS refused: error {error} {data.get('message') or ''}".strip()
        raise SendError(PERMANENT if error in PERMANENT_ERRORS else TEMPORARY, detail)

    def _post(self, notice: Outgoing) -> dict:
        body = {"phone": notice.phone_e164.lstrip("+"), "template_id": self.cfg.templates[notice.kind],
                "template_data": {k: str(v) for k, v in notice.params.items()},
                "tracking_id": request_key(notice)}
        try:
            resp = self.client.post(self.cfg.api_url.rstrip("/") + TEMPLATE_PATH, json=body,
                                    headers={"access_token": self._tokens["access_token"]},
                                    timeout=self.cfg.timeout_s)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(TEMPORARY, f"ZNS unreachable ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise SendError(AMBIGUOUS, f"ZNS did not answer ({type(exc).__name__}); the resend carries "
                            "the same tracking_id") from None
        if resp.status_code >= 500:
            raise SendError(TEMPORARY, f"ZNS error HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise SendError(TEMPORARY, f"ZNS answered HTTP {resp.status_code} without JSON") from None

    def close(self) -> None:
        self.client.close()
