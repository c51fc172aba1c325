"""scripts/check_imports.py on small real packages: it finds cycles (also through function-level imports)
and layering violations, and an allowlisted cycle passes while a new one fails."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def _check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def _tree(root: Path, *, motcua_imports_kiosk: bool) -> None:
    _write(root, {
        "kiosk/__init__.py": "",
        "kiosk/app.py": "from kiosk import api\n",
        # the cycle goes back only inside a function, which is how it is usually hidden
        "kiosk/api.py": "def view():\n    from kiosk.app import api\n    return api\n",
        "kiosk/cli.py": "import sms_gateway.api\nimport motcua.rules\n",
        "sms_gateway/__init__.py": "",
        "sms_gateway/api.py": "from motcua import rules\n",
        "motcua/__init__.py": "",
        "motcua/rules.py": "import kiosk.cli\n" if motcua_imports_kiosk else "X = 1\n",
    })


def test_a_cycle_through_a_function_level_import_and_a_layering_violation_fail(tmp_path):
    _tree(tmp_path, motcua_imports_kiosk=True)
    res = _check(tmp_path, "--allow", str(tmp_path / "none.txt"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "CYCLE: kiosk.api -> kiosk.app -> kiosk.api" in res.stdout
    assert "LAYERING: motcua.rules imports kiosk.cli (line 1: import kiosk.cli)" in res.stdout
    assert "1 imports of them are inside functions" in res.stdout


def test_an_allowlisted_cycle_passes_and_a_new_one_still_fails(tmp_path):
    _tree(tmp_path, motcua_imports_kiosk=False)
    allow = tmp_path / "allowed.txt"
    allow.write_text("# known\nkiosk.app -> kiosk.api -> kiosk.app\n", encoding="utf-8")
    res = _check(tmp_path, "--allow", str(allow))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "cycle (allowed): kiosk.api -> kiosk.app -> kiosk.api" in res.stdout
    _write(tmp_path, {"sms_gateway/api.py": "from motcua import rules\nimport sms_gateway.extra\n",
                      "sms_gateway/extra.py": "import sms_gateway.api\n"})
    res = _check(tmp_path, "--allow", str(allow))
    assert res.returncode == 1
    assert "CYCLE: sms_gateway.api -> sms_gateway.extra -> sms_gateway.api" in res.stdout


def test_the_checkout_has_no_new_cycle_and_keeps_its_layering():
    res = _check(SCRIPT.parents[1], "--allow", str(SCRIPT.with_name("import-cycles-allowed.txt")))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 layering violation(s)" in res.stdout
