"""The appliance's log format, for every process (journald adds the time on a Pi; stderr elsewhere).

Its own module, without click: the scanner's decode child sets up logging and imports nothing else of
the command line (click is ~3 MB there).
"""
from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
