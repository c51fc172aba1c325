"""Dependencies that say the truth: every package the code imports is declared in setup.cfg (not left to
arrive through another), constraints.txt pins what setup.cfg admits, and a PostgreSQL config without the
optional driver gets one clear line instead of a traceback."""
from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# Our own modules: the packages, and the helper modules that tests/, bench/ and scripts/ import by name.
OWN = {"kiosk", "motcua", "sms_gateway", "tests"} | {
    p.stem for d in ("tests", "bench", "scripts") for p in (REPO / d).rglob("*.py")}


def _declared() -> tuple[set[str], set[str], set[str]]:
    """install_requires, the postgresql extra, the test extra (canonical distribution names)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")

    def names(text: str) -> set[str]:
        lines = [ln.strip() for ln in text.splitlines()]
        return {canonicalize_name(Requirement(ln).name) for ln in lines if ln and not ln.startswith("#")}

    extras = cfg["options.extras_require"]
    return names(cfg["options"]["install_requires"]), names(extras["postgresql"]), names(extras["test"])


def _imported(*dirs: str) -> dict[str, str]:
    """Top-level names imported anywhere in dirs (also inside functions) -> one file that does it."""
    found: dict[str, str] = {}
    for d in dirs:
        for path in sorted((REPO / d).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for m in mods:
                    top = m.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return found


def _undeclared(imported: dict[str, str], declared: set[str]) -> list[str]:
    dists = packages_distributions()
    missing = []
    for top, where in sorted(imported.items()):
        owners = {canonicalize_name(d) for d in dists.get(top, [])}
        if not owners & declared:
            missing.append(f"{top} (imported in {where}; installed by {sorted(owners) or 'nothing'})")
    return missing


def test_every_package_the_appliance_imports_is_declared_in_install_requires():
    runtime, postgresql, _ = _declared()
    imported = _imported("kiosk", "motcua", "sms_gateway")
    assert {"click", "numpy", "werkzeug", "wtforms", "flask", "cv2"} <= set(imported)  # the scan really ran
    # psycopg is the one optional import (motcua/db.py checks for it and names the extra)
    assert _undeclared(imported, runtime | postgresql) == []
    assert _undeclared(imported, runtime) == ["psycopg (imported in motcua/db.py; installed by ['psycopg'])"]


def test_every_package_the_tests_and_benchmarks_import_is_declared_for_them():
    runtime, _, test = _declared()
    imported = _imported("tests", "bench", "scripts")
    assert {"pytest", "playwright", "grimp", "babel"} <= set(imported)
    assert _undeclared(imported, runtime | test) == []


def test_constraints_pin_one_exact_version_of_every_declared_package():
    runtime, _, test = _declared()
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            spec = str(req.specifier)
            assert spec.startswith("==") and "," not in spec, line
            pins[canonicalize_name(req.name)] = spec[2:]
    assert runtime | test <= set(pins), sorted(runtime | test - set(pins))
    assert "motcua-kiosk" not in pins
    # and each pin lies inside the range setup.cfg admits (else the constraint could never be met)
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    text = cfg["options"]["install_requires"] + cfg["options.extras_require"]["test"]
    for ln in (ln.strip() for ln in text.splitlines()):
        if ln and not ln.startswith("#"):
            req = Requirement(ln)
            assert req.specifier.contains(pins[canonicalize_name(req.name)]), (ln, pins[canonicalize_name(req.name)])


def test_a_postgresql_url_without_the_driver_says_which_extra_to_install(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{tmp_path}"\n[database]\nurl = "postgresql://motcua@127.0.0.1:9/motcua"\n',
                   encoding="utf-8")
    # sys.modules[...] = None makes `import psycopg` fail exactly as if the package were not installed.
    code = ("import sys; sys.modules['psycopg'] = None; sys.argv = ['kiosk', '--config', sys.argv[1], 'serve']; "
            "from kiosk.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "install motcua-kiosk[postgresql]" in last, res.stderr


def test_pi_setup_installs_the_postgresql_extra_only_when_the_config_names_postgresql(tmp_path):
    """The check hardware/setup.sh runs (with the system python3) before installing the application."""
    script = (REPO / "hardware/setup.sh").read_text(encoding="utf-8")
    start = script.index("<<'EOF'\nimport sys\nimport tomllib") + len("<<'EOF'\n")
    check = script[start:script.index("\nEOF\n", start)]

    def names_postgresql(text: str | None) -> bool:
        cfg = tmp_path / "config.toml"
        cfg.unlink(missing_ok=True)
        if text is not None:
            cfg.write_text(text, encoding="utf-8")
        res = subprocess.run([sys.executable, "-", str(cfg)], input=check, capture_output=True, text=True,
                             timeout=60)
        assert res.stderr == ""
        return res.returncode == 0

    assert names_postgresql('[database]\nurl = "postgresql://motcua:pw@db-host/motcua"\n')
    assert names_postgresql('[database]\nurl = "postgresql+psycopg://motcua@db-host/motcua"\n')
    assert not names_postgresql('[database]\nurl = ""\n')
    assert not names_postgresql('[database]\nurl = "sqlite:////var/lib/motcua/motcua.db"\n')
    assert not names_postgresql(None)  # first run: no config yet, the sample (SQLite) is copied later
    assert not names_postgresql("[database\nurl = ")  # broken: setup reports it when it loads the config
