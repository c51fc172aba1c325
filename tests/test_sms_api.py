"""kiosk reaches the SMS gateway through `sms_gateway.api` only; motcua imports neither side."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import in a package's sources."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(str(path.relative_to(ROOT)), f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_kiosk_imports_nothing_of_the_gateway_but_its_api() -> None:
    gateway = [(f, m) for f, m in _imports("kiosk") if m.split(".")[0] == "sms_gateway"]
    assert gateway, "kiosk enqueues notices, so it must import the gateway's api somewhere"
    outside = [(f, m) for f, m in gateway if not m.startswith("sms_gateway.api")]
    assert outside == []


def test_the_gateway_never_imports_kiosk_and_motcua_imports_neither() -> None:
    assert [(f, m) for f, m in _imports("sms_gateway") if m.split(".")[0] == "kiosk"] == []
    assert [(f, m) for f, m in _imports("motcua") if m.split(".")[0] in ("kiosk", "sms_gateway")] == []
