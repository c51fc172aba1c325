"""The one marker for translatable message ids defined away from a request (state labels, printer
and modem wordings, rating faces): the Vietnamese text is the id, the catalogues hold the English."""
from __future__ import annotations


def N_(msgid: str) -> str:
    """Mark a message id for extraction (pybabel's default keywords include N_); no translation here."""
    return msgid
