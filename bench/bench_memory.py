"""Memory of the appliance's services: PSS summed over every process, per service and in total.

    .venv/bin/python bench/bench_memory.py                         # this checkout
    .venv/bin/python bench/bench_memory.py --tree /tmp/base --tree .   # a baseline beside a change

Starts the demo's services (bench/appliance.py), waits until every one reports healthy, then samples
PSS from /proc/<pid>/smaps_rollup of every process of each service (gunicorn workers, the scanner's
decode child, ...) a few times, one second apart, and reports the largest total seen. Chromium is not
counted. Target: all services together at most 250 MB.

Two figures per process: "PSS" as the kernel gives it, and "own PSS", the same division of shared
pages but among the appliance's processes only (from /proc/<pid>/pagemap, as root). On a shared
development machine the kernel's PSS is lower and varies from run to run, because other people's
processes map the same OpenCV and Python libraries; on a kiosk nothing else does, so own PSS is the
figure that holds there. The target is checked against own PSS when it can be measured.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from appliance import CHECKOUT, SERVICES, own_pss_kb, pss_kb, running, tree_label

TARGET_MB = 250


def _sample(procs: list, kb_of: dict[int, float]) -> dict:
    per_service: dict[str, float] = defaultdict(float)
    for p in procs:
        per_service[p.service] += kb_of[p.pid]
    return {"total": sum(per_service.values()), "services": dict(per_service),
            "procs": [(p.service, p.role, kb_of[p.pid]) for p in procs]}


def measure(tree: Path, samples: int) -> dict[str, dict]:
    """The largest total seen over the samples, for each kind of figure ("pss", "own")."""
    best: dict[str, dict] = {"pss": {"total": 0}, "own": {"total": 0}}
    with running(tree) as app:
        for n in range(samples):
            if n:
                time.sleep(1)
            procs = app.refresh()
            figures = {"pss": {p.pid: float(pss_kb(p.pid)) for p in procs},
                       "own": own_pss_kb([p.pid for p in procs])}
            for kind, kb_of in figures.items():
                if kb_of is not None:
                    sample = _sample(procs, kb_of)
                    if sample["total"] > best[kind]["total"]:
                        best[kind] = sample
    return {k: v for k, v in best.items() if v["total"]}


def _table(results: dict, trees: list[Path], kind: str) -> None:
    print(f"\n| service ({'own PSS' if kind == 'own' else 'PSS'}, MB) | " + " | ".join(map(str, trees)) + " |")
    print("|---|" + "---|" * len(trees))
    for name, _ in SERVICES:
        cells = []
        for t in trees:
            r = results[t][kind]
            n = sum(1 for s, _, _ in r["procs"] if s == name)
            cells.append(f"{r['services'].get(name, 0) / 1024:.1f} ({n} proc)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| **total** | " + " | ".join(f"**{results[t][kind]['total'] / 1024:.1f}**" for t in trees) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=Path, help="checkout to measure (repeat; default: this one)")
    ap.add_argument("--samples", type=int, default=5, help="samples, one second apart; the largest total counts")
    args = ap.parse_args()
    trees = args.tree or [CHECKOUT]
    results = {}
    for tree in trees:
        results[tree] = measure(tree, args.samples)
        kind = "own" if "own" in results[tree] else "pss"
        print(f"\n## {tree_label(tree)} ({'own PSS' if kind == 'own' else 'PSS'} per process)\n")
        for service, role, kb in sorted(results[tree][kind]["procs"]):
            print(f"  {service:15} {role:28} {kb / 1024:7.1f} MB")
    kinds = [k for k in ("pss", "own") if all(k in results[t] for t in trees)]
    for kind in kinds:
        _table(results, trees, kind)
    kind = kinds[-1]
    last = results[trees[-1]][kind]["total"] / 1024
    print(f"\ntarget <= {TARGET_MB} MB ({'own PSS' if kind == 'own' else 'PSS'}): "
          f"{'met' if last <= TARGET_MB else 'NOT MET'} ({last:.1f} MB, {trees[-1]})")


if __name__ == "__main__":
    main()
