"""The check of a province's scanner payload pattern, shared by the config and the scanner.

Its own module so that the scanner's decode child parses payloads without importing the config
models (pydantic, ~14 MB in a process that otherwise needs only OpenCV and the decoders).
"""
from __future__ import annotations

import re


def compile_scanner_pattern(pattern: str, needs_code_group: bool = True) -> re.Pattern[str]:
    """Compile a province's payload pattern; the one check used at config load and at scan time."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None
    if needs_code_group and "code" not in rx.groupindex:
        raise ValueError(f"pattern {pattern!r} needs a named group (?P<code>...)")
    return rx
