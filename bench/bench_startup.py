"""CPU cost of starting the command lines: `kiosk --help`, `sms-gateway --help`, `kiosk doctor --help`.

    .venv/bin/python bench/bench_startup.py                          # this checkout
    .venv/bin/python bench/bench_startup.py --tree /tmp/base --tree .   # a baseline beside a change

Each command runs `--runs` times through the installed console scripts with the checkout first on
PYTHONPATH; the figure is the median user+sys CPU of the child (resource.getrusage), not wall time, so
other load on the machine matters less. The first run of each is a warm-up (bytecode caches) and is
not counted. Target: at most 0.2 s each.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from appliance import CHECKOUT, tree_label

TARGET_S = 0.2
BIN = Path(sys.executable).parent
COMMANDS = [["kiosk", "--help"], ["sms-gateway", "--help"], ["kiosk", "doctor", "--help"]]


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(tree: Path, runs: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
    env.pop("MOTCUA_CONFIG", None)
    out = {}
    for cmd in COMMANDS:
        argv = [str(BIN / cmd[0]), *cmd[1:]]
        cpu_seconds(argv, env)  # warm-up
        out[" ".join(cmd)] = statistics.median(cpu_seconds(argv, env) for _ in range(runs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=Path, help="checkout to measure (repeat; default: this one)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    trees = args.tree or [CHECKOUT]
    results = {t: measure(t, args.runs) for t in trees}
    for t in trees:
        print(f"- {t}: {tree_label(t)}")
    print(f"\n| command (median CPU s of {args.runs}) | " + " | ".join(str(t) for t in trees) + " |")
    print("|---|" + "---|" * len(trees))
    for cmd in COMMANDS:
        name = " ".join(cmd)
        print(f"| `{name}` | " + " | ".join(f"{results[t][name]:.3f}" for t in trees) + " |")
    worst = max(results[trees[-1]].values())
    print(f"\ntarget <= {TARGET_S} s: {'met' if worst <= TARGET_S else 'NOT MET'} (slowest {worst:.3f} s, {trees[-1]})")


if __name__ == "__main__":
    main()
