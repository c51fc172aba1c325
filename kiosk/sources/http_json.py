"""A generic JSON source for systems without an adapter: one lookup URL, an optional change feed,
and a field mapping (`[source.http_json] fields`: dossier field -> dotted path in the record).

Lookup: `GET <base_url><lookup_path>` with `{code}` filled in (and the secret as `secret_param` when
set); 200 with the record is found, a status in `not_found_statuses` is not known. Changes:
`GET <base_url><changes_path>?since=<cursor>` answers `{<items_key>: [records], <cursor_key>: "..."}`;
an empty page ends the pass.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kiosk.sources.base import Changes, ErrorKind, Http, Known, Source, SourceDossier, SourceError, as_text, snippet
from motcua.config import Config

SCALARS = (str, int, float)


def dig(record: Any, path: str) -> Any:
    """The value at a dotted path ('hoSo.trangThai'), or None where the path does not exist."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class HttpJsonSource(Source):
    kind = "http_json"

    def __init__(self, cfg: Config, transport: Any = None):
        self.opts = cfg.source_.http_json
        self.status_map = cfg.statuses.source_map
        self.supports_changes = self.complete_feed = bool(self.opts.changes_path)
        headers = {"Authorization": f"Bearer {self.opts.bearer_token}"} if self.opts.bearer_token else {}
        self.http = Http(cfg.source_, headers=headers, transport=transport)

    def record(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise SourceError(ErrorKind.BAD_ANSWER, f"record is {type(raw).__name__}, not an object")
        out: dict[str, Any] = {}
        for name, path in self.opts.fields.items():
            value = dig(raw, path)
            if value is not None and (isinstance(value, bool) or not isinstance(value, SCALARS)):
                raise SourceError(ErrorKind.BAD_ANSWER, f"{path} is {type(value).__name__}, not a value")
            out[name] = as_text(value) if name != "source_version" else value
        for name in ("code", "status"):
            if out.get(name) in (None, ""):
                raise SourceError(ErrorKind.BAD_ANSWER, f"record has no {self.opts.fields[name]!r} "
                                                        f"(renamed or missing field?)")
        return out

    def fetch(self, code: str, secret: str | None, *, total_s: float | None = None) -> SourceDossier | None:
        path = self.opts.lookup_path.replace("{code}", quote(code, safe=""))
        params = {self.opts.secret_param: secret} if self.opts.secret_param and secret else {}
        answer = self.http.request("GET", path, params=params, total_s=total_s)
        if answer.status in self.opts.not_found_statuses:
            return None
        if answer.status in (401, 403):
            raise SourceError(ErrorKind.AUTH, f"HTTP {answer.status}: the token was refused")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"HTTP {answer.status}: {snippet(answer.body)}")
        rec = self.record(answer.json())
        if str(rec["code"]) != code:
            raise SourceError(ErrorKind.BAD_ANSWER,
                              f"asked for {code!r}, the answer is dossier {str(rec['code'])[:100]!r}")
        if self.opts.secret_param and secret:
            rec["secret"] = secret  # the source checked it
        else:
            rec.pop("secret", None)
        return SourceDossier(rec)

    def changes(self, cursor: str | None, known: Known) -> Changes:
        if not self.supports_changes:
            return super().changes(cursor, known)
        answer = self.http.request("GET", self.opts.changes_path, params={"since": cursor or ""})
        if answer.status in (401, 403):
            raise SourceError(ErrorKind.AUTH, f"HTTP {answer.status}: the token was refused")
        if answer.status != 200:
            raise SourceError(ErrorKind.REFUSED, f"changes: HTTP {answer.status}: {snippet(answer.body)}")
        data = answer.json()
        items = dig(data, self.opts.items_key)
        nxt = dig(data, self.opts.cursor_key)
        if not isinstance(items, list) or not isinstance(nxt, (str, int)):
            raise SourceError(ErrorKind.BAD_ANSWER, f"changes answer lacks a list {self.opts.items_key!r} and a "
                                                    f"cursor {self.opts.cursor_key!r}")
        dossiers, skipped = [], []
        for raw in items:
            try:
                rec = self.record(raw)
                rec.pop("secret", None)
                dossiers.append(SourceDossier(rec))
            except SourceError as exc:
                skipped.append(exc.message)
        return Changes(dossiers, str(nxt), done=not items, listed=len(items), skipped=skipped)

    def check(self) -> str:
        answer = self.http.request("GET", self.opts.lookup_path.replace("{code}", "motcua-check"))
        if answer.status in (401, 403):
            raise SourceError(ErrorKind.AUTH, f"HTTP {answer.status}: the token was refused")
        if answer.status >= 500:
            raise SourceError(ErrorKind.REFUSED, f"HTTP {answer.status}: {snippet(answer.body)}")
        return f"lookup URL answered HTTP {answer.status}"

    def sample_code(self) -> str | None:
        if not self.supports_changes:
            return None
        page = self.changes(None, lambda codes: {})
        return page.dossiers[0].code if page.dossiers else None

    def close(self) -> None:
        self.http.close()
