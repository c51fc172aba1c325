"""Languages for every screen (Flask-Babel): Vietnamese first, English on request.

Message ids ARE the Vietnamese text, so Vietnamese needs no catalogue and a missing translation
falls back to Vietnamese, never to a code. English lives in
`kiosk/translations/en/LC_MESSAGES/<domain>.mo`, one domain per area (`kiosk`, `queue`, `staff`)
so that engineers never edit the same catalogue; a domain whose .mo is missing is simply skipped.
See docs/i18n.md for extracting and compiling.
"""
from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel, lazy_gettext

from motcua.statuses import OVERDUE_LABEL_VI, STATUSES

LANGUAGES = ("vi", "en")
DOMAINS = ("kiosk", "queue", "staff")
SESSION_KEY = "lang"


def current_language() -> str:
    """The screen's language: the citizen's choice this visit, else the configured default."""
    chosen = session.get(SESSION_KEY) if request else None
    if chosen in LANGUAGES:
        return chosen
    return current_app.config["MOTCUA"].kiosk.default_language


# Dossier status labels for every screen and staff page: the vocabulary's Vietnamese wording
# (motcua/statuses.py) through the catalogue, so English comes from kiosk.po like any other text.
STATUS_LABELS = {code: lazy_gettext(s.label_vi) for code, s in STATUSES.items()}
OVERDUE_LABEL = lazy_gettext(OVERDUE_LABEL_VI)


def status_label(code: str | None) -> str:
    """The status's label in the current language; an unknown code is shown as it is."""
    label = STATUS_LABELS.get(code or "")
    return str(label) if label is not None else (code or "")


def init_app(app: Flask) -> None:
    # Flask-Babel merges one catalogue per (directory, domain) pair; both lists must be as long.
    app.config.setdefault("BABEL_DOMAIN", ";".join(DOMAINS))
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join(["translations"] * len(DOMAINS)))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "vi")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["MOTCUA"].site.timezone)
    Babel(app, locale_selector=current_language)

    @app.context_processor
    def _language() -> dict[str, object]:
        return {"lang": current_language(), "languages": LANGUAGES}
