"""An HTTP SMS brandname provider (the eSMS API shape: SendMultipleMessage_V4_post_json).

Request: {ApiKey, SecretKey, Phone, Content, Brandname, SmsType, IsUnicode, RequestId}; answer
{"CodeResult": "100", "SMSID": ...} when accepted. Any other CodeResult is refused; a RequestId the
provider has already seen is refused as a duplicate, which for us means "the first one went": so a
timeout after the request was sent is ambiguous, and the resend with the same RequestId is safe.
"""
from __future__ import annotations

import httpx

from motcua.config import BrandnameConfig
from sms_gateway.channels import Channel, Outgoing, request_key
from sms_gateway.modem import AMBIGUOUS, PERMANENT, TEMPORARY, SendError

# CodeResult values from eSMS's "Table of error codes" (developers.esms.vn/en/esms-api/table-of-error-codes;
# the same table is esms-api/table-of-error-codes.md in github.com/devesms/gitbook_esms_for_develop_v2_en).
ACCEPTED = "100"  # "successfully sent to ViHAT": taken, not yet delivered
DUPLICATE = "124"  # "Duplicate RequestId."
# Codes no retry can change: the number (99 "blocked in the system", 108 "not in correct format"), the
# account (101 wrong ApiKey/SecretKey, 102 no price list, 104 brandname does not exist, 140 IP not
# whitelisted) or the message (118 unsupported message type, 146 wrong customer-care template, 177 the
# network is not registered for the brandname). 103 "Not enough balance" is temporary: once the hall tops
# up, the retries go out. A code not in the table is temporary too (retried, failed after max_attempts).
PERMANENT_CODES = {"99", "101", "102", "104", "108", "118", "140", "146", "177"}
PATH = "/SendMultipleMessage_V4_post_json/"


class BrandnameTransport:
    channel = Channel.BRANDNAME

    def __init__(self, cfg: BrandnameConfig, client: httpx.Client | None = None):
        self.cfg = cfg
        self.client = client or httpx.Client(timeout=cfg.timeout_s)

    def accepts(self, notice: Outgoing) -> bool:
        return True

    def send(self, notice: Outgoing) -> str:
        body = {
            "ApiKey": self.cfg.api_key, "SecretKey": self.cfg.secret_key, "Phone": notice.phone_e164.lstrip("+"),
            "Content": notice.text, "Brandname": self.cfg.brandname, "SmsType": str(self.cfg.sms_type),
            "IsUnicode": "1" if notice.unicode else "0", "RequestId": request_key(notice),
        }
        try:
            resp = self.client.post(self.cfg.api_url.rstrip("/") + PATH, json=body, timeout=self.cfg.timeout_s)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise SendError(TEMPORARY, f"brandname provider unreachable ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # sent, no answer: it may have been taken
            raise SendError(AMBIGUOUS, f"brandname provider did not answer ({type(exc).__name__}); "
                            "the resend carries the same RequestId") from None
        if resp.status_code >= 500:
            raise SendError(TEMPORARY, f"brandname provider error HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            raise SendError(TEMPORARY, f"brandname provider answered HTTP {resp.status_code} without JSON") from None
        code = str(data.get("CodeResult"))
        if code == ACCEPTED:
            return str(data.get("SMSID") or "")
        if code == DUPLICATE:
            return f"duplicate:{body['RequestId']}"  # the earlier, ambiguous request was taken
        detail = f"brandname provider refused: CodeResult {code} {data.get('ErrorMessage') or ''}".strip()
        raise SendError(PERMANENT if code in PERMANENT_CODES else TEMPORARY, detail)

    def close(self) -> None:
        self.client.close()
