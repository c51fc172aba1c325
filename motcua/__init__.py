"""Shared base of the appliance: configuration, database engine and migrations, status vocabulary.

Both `kiosk` and `sms_gateway` import this package; it imports neither of them.
"""

import sys as _sys


def skip_httpx_cli() -> None:
    """httpx imports its command-line client (rich and pygments, ~6 MB in every process that imports httpx)
    unless that import fails, and no process of the appliance runs httpx's CLI: make it fail. `kiosk` and
    `sms_gateway` call this first thing (their package __init__)."""
    _sys.modules.setdefault("httpx._main", None)  # None in sys.modules: that import raises ImportError
