"""Benchmark: reading a million-run store — report, ``show --where`` and ``compare`` — side by side with the
sweep that wrote it, and with an earlier checkout ("before", ``--before DIR``) on the same store.

The store is the one of the targets: 4 learning rates × 5 inits × ``--seeds`` seeds (50,000 → 1,000,000 runs),
1,000 steps, loss logged every 10 steps (101 curve rows a run). Every number comes from the real command line in a
subprocess, timed with ``time.perf_counter``; peak memory is the child's own ``ru_maxrss`` (``os.wait4``).

- ``xorlab-sweep`` writing the store (skipped with ``--store DIR``: its wall time is then read from the sessions'
  start and end times);
- ``xorlab-report STORE`` (statistics, figures as PNG + SVG, report.md/html);
- ``xorlab-runs show STORE --where ...`` and ``xorlab-runs compare STORE COPY`` (the copy is hard-linked);
- with ``--before DIR``, the same three commands run by the checkout in DIR (``PYTHONPATH=DIR``).

Targets: report wall ≤ 1.0 × the sweep's, peak ≤ 2 GB; ``show --where`` and ``compare`` ≤ 10 s and ≤ 1 GB.
It is a report, not a test: it always exits 0 and marks a missed target with MISS.

    .venv/bin/python benchmarks/bench_report.py                          # 1,000,000 runs (~10 min on 2 cores)
    .venv/bin/python benchmarks/bench_report.py --seeds 5000             # 100,000 runs
    .venv/bin/python benchmarks/bench_report.py --store runs/big --before /tmp/xorlab-before
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024.0  # ru_maxrss is in KiB on Linux
LRS = "[0.1,0.3,1.0,3.0]"
INITS = "[notebook,xavier_normal,he_normal,lecun_normal,uniform]"
WHERE = "lr == 3.0 and status == 'stuck'"
TARGETS = {"report_ratio": 1.0, "report_mb": 2048.0, "query_s": 10.0, "query_mb": 1024.0}


def run_child(args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``python <args>``; returns (wall seconds, peak RSS of the child in MB). Raises if it fails."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        # Run from the log's folder, not from a checkout: ``python -m`` puts the working directory first on
        # sys.path, which would shadow the --before checkout given by PYTHONPATH with the one we run from.
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.resolve().parent
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{' '.join(args[:2])} exited {code}:\n{tail}")
    return seconds, usage.ru_maxrss / MB


def sweep_seconds(store: Path) -> float:
    """Wall time of the sessions that wrote ``store``, from their recorded start and end."""
    total = 0.0
    for f in (store / "sessions").glob("*.json"):
        info = json.loads(f.read_text())
        start, end = info.get("started"), info.get("ended") or info.get("heartbeat")
        if start and end:
            total += (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return total


def commands(store: Path, copy: Path, out: Path) -> dict[str, list[str]]:
    return {
        "report": ["-m", "xorlab.apps.report", str(store), "--out", str(out / "report")],
        "show --where": ["-m", "xorlab.apps.runs", "show", str(store), "--where", WHERE, "--limit", "3"],
        "compare": ["-m", "xorlab.apps.runs", "compare", str(store), str(copy), "--out", str(out / "compare")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50_000, help="seeds per (lr, init); 50,000 -> 1,000,000 runs")
    parser.add_argument("--store", type=Path, help="an existing store of this grid (skips the sweep)")
    parser.add_argument("--before", type=Path, help="a checkout of the earlier code to run side by side")
    parser.add_argument("--keep", type=Path, help="work here instead of a temporary directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = (args.keep or Path(tmp)).resolve()
        root.mkdir(parents=True, exist_ok=True)
        store = (args.store or root / "store").resolve()
        print(f"machine: {os.cpu_count()} cores, load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.store is None:
            sweep = ["-m", "xorlab.apps.sweep", f"grid.lr={LRS}", f"grid.init={INITS}"]
            sweep += [f"grid.seed=range(0,{args.seeds})", "grid.max_steps=1000", "sweep.log_every=10"]
            sweep += ["sweep.progress=false", f"sweep.dir={store}"]
            sweep_s, sweep_mb = run_child(sweep, root / "sweep.log")
        else:
            sweep_s, sweep_mb = sweep_seconds(store), float("nan")
        copy = root / "copy"
        if not copy.exists():
            shutil.copytree(store, copy, copy_function=os.link)  # hard links: no second gigabyte on disk
        print(f"xorlab-sweep: {sweep_s:.1f} s, {sweep_mb:.0f} MB peak ({store})")
        sides = {"now": None, **({"before": args.before} if args.before else {})}
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for side, checkout in sides.items():
            env = None
            if checkout is not None:
                env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
            out = root / side
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            results[side] = {}
            for name, cmd in commands(store, copy, out).items():
                results[side][name] = run_child(cmd, out / f"{name.split()[0]}.log", env)
                s, mb = results[side][name]
                print(f"{side:6s} {name:13s} {s:8.1f} s {mb:8.0f} MB", flush=True)
        print()
        print("| measurement | " + " | ".join(sides) + " | target | ok |")
        print("|---|" + "---:|" * len(sides) + "---|---|")
        for name in ("report", "show --where", "compare"):
            for what, unit, i in (("wall", "s", 0), ("peak RSS", "MB", 1)):
                vals = [results[s][name][i] for s in sides]
                now = vals[0]
                if name == "report" and i == 0:
                    target, ok = f"≤ {TARGETS['report_ratio']:.1f} × sweep ({sweep_s:.0f} s)", now <= sweep_s
                elif name == "report":
                    target, ok = f"≤ {TARGETS['report_mb']:.0f} MB", now <= TARGETS["report_mb"]
                elif i == 0:
                    target, ok = f"≤ {TARGETS['query_s']:.0f} s", now <= TARGETS["query_s"]
                else:
                    target, ok = f"≤ {TARGETS['query_mb']:.0f} MB", now <= TARGETS["query_mb"]
                cells = " | ".join(f"{v:,.1f} {unit}" if unit == "s" else f"{v:,.0f} {unit}" for v in vals)
                print(f"| {name} {what} | {cells} | {target} | {'yes' if ok else 'MISS'} |")
        rep = results["now"]["report"][0]
        print(
            f"\nreport ÷ sweep: {rep / sweep_s:.2f}× now"
            + (f", {results['before']['report'][0] / sweep_s:.2f}× before" if "before" in results else "")
        )


if __name__ == "__main__":
    main()
