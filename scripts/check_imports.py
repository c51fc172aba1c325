#!/usr/bin/env python3
"""Check the import structure of kiosk/, motcua/ and sms_gateway/: no cycles, and the layering holds.

    .venv/bin/python scripts/check_imports.py [--allow FILE] [-v]

Layering (see README "Structure"): `motcua` imports neither `kiosk` nor `sms_gateway`; `sms_gateway`
never imports `kiosk`; `kiosk` may import both. A cycle is a chain of imports between modules that
comes back to where it started. The graph (grimp) has every import, also those inside functions:
a function-level import that only dodges a cycle still counts as one.

Cycles that are known and being removed may be listed in the allowlist file (default
scripts/import-cycles-allowed.txt, one cycle a line as printed, e.g. `kiosk.api -> kiosk.app -> kiosk.api`);
they are reported but do not fail. Exit status 1 on any layering violation or cycle not in the list.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kiosk", "motcua", "sms_gateway")
# importer package -> packages it must never import
FORBIDDEN = {"motcua": ("kiosk", "sms_gateway"), "sms_gateway": ("kiosk",)}
DEFAULT_ALLOW = ROOT / "scripts" / "import-cycles-allowed.txt"


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def layering_violations(graph) -> list[str]:
    found = []
    for importer in sorted(graph.modules):
        banned = FORBIDDEN.get(_package(importer), ())
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if _package(imported) in banned:
                for d in graph.get_import_details(importer=importer, imported=imported):
                    found.append(f"{importer} imports {imported} (line {d['line_number']}: {d['line_contents']})")
    return found


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    """The same cycle found from any of its modules gets one name: start at the smallest module."""
    ring = cycle[:-1]
    i = ring.index(min(ring))
    ring = ring[i:] + ring[:i]
    return (*ring, ring[0])


def cycles(graph) -> list[tuple[str, ...]]:
    """For every direct import a -> b that b leads back from, the shortest cycle through it."""
    found: set[tuple[str, ...]] = set()
    for a in graph.modules:
        for b in graph.find_modules_directly_imported_by(a):
            if a == b:
                continue
            back = graph.find_shortest_chain(importer=b, imported=a)
            if back:
                found.add(_canonical([a, *back]))
    return sorted(found, key=lambda c: (len(c), c))


def lazy_imports(root: Path) -> list[str]:
    """Imports of our own packages written inside a function (grimp's graph has them as any other)."""
    found = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    names = []
                    if isinstance(node, ast.Import):
                        names = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        names = [node.module]
                    elif isinstance(node, ast.ImportFrom):
                        names = ["."]
                    if any(n == "." or _package(n) in PACKAGES for n in names):
                        found.append(f"{path.relative_to(root)}:{node.lineno}")
    return sorted(set(found))


def dynamic_imports(root: Path) -> list[str]:
    """`importlib.import_module(...)` / `__import__(...)` calls: imports by string, which no graph can see."""
    found = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                if isinstance(node, ast.Call):
                    f = node.func
                    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                    if name in ("import_module", "__import__"):
                        found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def read_allowlist(path: Path) -> set[tuple[str, ...]]:
    if not path.exists():
        return set()
    allowed = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            allowed.add(_canonical([m.strip() for m in line.split("->")]))
    return allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allow", type=Path, default=DEFAULT_ALLOW, help="file of known cycles (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the function-level imports too")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to check (default: this one)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(args.root.resolve()))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    bad_layers = layering_violations(graph)
    found = cycles(graph)
    allowed = read_allowlist(args.allow)
    lazy = lazy_imports(args.root.resolve())

    print(f"{len(graph.modules)} modules in {', '.join(PACKAGES)}; "
          f"{len(lazy)} imports of them are inside functions (included in the graph)")
    if args.verbose:
        for where in lazy:
            print(f"  function-level import: {where}")
    for where in dynamic_imports(args.root.resolve()):
        print(f"note: import by string at {where} is not in the graph; check what it imports by hand")
    for v in bad_layers:
        print(f"LAYERING: {v}")
    new = [c for c in found if c not in allowed]
    for c in found:
        print(f"{'CYCLE' if c in new else 'cycle (allowed)'}: {' -> '.join(c)}")
    for c in sorted(allowed - set(found)):
        print(f"note: allowed cycle no longer exists, remove it from {args.allow}: {' -> '.join(c)}")
    print(f"{len(bad_layers)} layering violation(s), {len(found)} cycle(s) of which {len(new)} not allowed")
    return 1 if bad_layers or new else 0


if __name__ == "__main__":
    sys.exit(main())
