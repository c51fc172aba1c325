"""The commune hall kiosk: web app, scanner, printing, queue and staff pages."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from motcua import skip_httpx_cli

skip_httpx_cli()


def python_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment to run `python -m module args` on the code this process runs: `-P` keeps the
    working directory (the data directory under systemd) off sys.path, and this kiosk package's parent
    goes first on PYTHONPATH. `env` defaults to this process's environment."""
    env = dict(os.environ if env is None else env)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    return [sys.executable, "-P", "-m", module, *args], env
