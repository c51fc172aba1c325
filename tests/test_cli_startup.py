"""The command lines start light: --help imports no config, database or subcommand module, and the
lazily listed subcommands say what their own docstrings say."""
from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

HEAVY = ["sqlalchemy", "alembic", "pydantic", "motcua.config", "motcua.db", "flask", "cv2", "numpy", "gammu",
         "escpos", "PIL"]

PROBE = """
import json, sys
from click.testing import CliRunner
from {module} import cli
result = CliRunner().invoke(cli, {args!r})
print(json.dumps({{"exit": result.exit_code, "out": result.output,
                  "loaded": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _probe(module: str, args: list[str]) -> dict:
    code = PROBE.format(module=module, args=args, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("module,args", [("kiosk.cli", ["--help"]), ("sms_gateway.cli", ["--help"]),
                                         ("kiosk.cli", ["doctor", "--help"]), ("kiosk.cli", ["scan", "--help"])])
def test_help_imports_no_config_database_or_hardware_library(module, args):
    result = _probe(module, args)
    assert result["exit"] == 0, result["out"]
    assert "Usage:" in result["out"]
    assert result["loaded"] == []


def test_kiosk_help_lists_every_subcommand_with_its_own_summary():
    from kiosk.cli import SUBCOMMANDS, cli

    out = _probe("kiosk.cli", ["--help"])["out"]
    ctx = click.Context(cli)
    for name, (_target, summary) in SUBCOMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        # The summary listed without importing the command is the command's own first docstring line.
        assert command.get_short_help_str(limit=1000) == summary
        assert name in out
    assert "serve" in out


def test_a_lazy_subcommand_runs_and_an_unknown_one_is_refused(tmp_path):
    from click.testing import CliRunner

    from kiosk.cli import cli

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    ran = CliRunner().invoke(cli, ["--config", str(cfg), "print", "status"])
    assert ran.exit_code == 0, ran.output
    refused = CliRunner().invoke(cli, ["no-such-command"])
    assert refused.exit_code == 2 and "No such command" in refused.output
