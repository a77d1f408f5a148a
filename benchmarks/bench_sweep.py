"""Speed and memory of ``xorlab-sweep`` against ``xorlab-train -m`` (basic launcher), measured side by side.

What it measures, in one run, on the same grid (lr x init x seed, 1,000 steps each; 20 runs per seed):

- runs/s of ``xorlab-sweep`` on the whole grid (10,000 runs) and of ``xorlab-train -m`` with the basic launcher
  on a sample of the same runs (all 20 lr x init combinations for a few randomly drawn seeds), and their ratio;
  both sides' final losses are joined on ``run_id`` and compared ("identical: yes/no");
- µs per run-step of the engine alone (in-process ``xorlab.engine.train_batch``, best of N) at 1,000 and 10,000
  runs, and of the sweep end to end;
- wall seconds of the 10,000 x 1,000 sweep end to end, and peak RSS of the sweep process at 10,000 and
  100,000 runs x 1,000 steps. The full run takes 1-2 minutes on 2 cores.

Every end-to-end number comes from running the real CLI as a subprocess (``python -m xorlab.apps.sweep`` /
``python -m xorlab.apps.train -m``) in a temporary directory; wall time is ``time.perf_counter`` around the child,
peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``. It is a report, not a test: it always exits 0 and
marks missed targets with MISS. Run it on a quiet machine:

    make bench                                             # = .venv/bin/python benchmarks/bench_sweep.py
    .venv/bin/python benchmarks/bench_sweep.py --markdown benchmarks/results.md
    .venv/bin/python benchmarks/bench_sweep.py --quick     # reduced sizes, a smoke check (~15 s)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LRS = [0.1, 0.3, 1.0, 3.0]
INITS = ["notebook", "xavier_normal", "he_normal", "lecun_normal", "uniform"]
STEPS = 1000
PER_SEED = len(LRS) * len(INITS)  # runs per seed in the grid
MB = 1e6 / 1024  # ru_maxrss is KiB on Linux; reported in MB = 10^6 bytes (the target is 1 GB)


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - best effort only
        blas = "?"
    threads = ", ".join(f"{v}={os.environ[v]}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if v in os.environ)
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.platform()} | {cpu} | {os.cpu_count()} cores | Python {platform.python_version()} | "
        f"numpy {np.__version__} (BLAS {blas}{'; ' + threads if threads else ''}; the engine calls no BLAS) | "
        f"load avg {load} at start"
    )


def run_child(args: list[str], log: Path, cwd: Path) -> tuple[float, float]:
    """Run ``python <args>``; returns (wall seconds, peak RSS of the child in MB). Raises if it fails."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{' '.join(args[:2])} exited {proc.returncode}:\n{tail}")
    return seconds, usage.ru_maxrss / MB


ENGINE = "compiled"  # xorlab-sweep's default; --engine numpy for the reference


def engine_seconds(store: Path) -> float:
    """Seconds the sweep spent inside the engine's simulation, as its session recorded them."""
    import json

    return sum(json.loads(f.read_text()).get("engine_seconds", 0.0) for f in (store / "sessions").glob("*.json"))


def sweep_cmd(seeds: int, store: Path) -> list[str]:
    return [
        "-m",
        "xorlab.apps.sweep",
        f"grid.lr=[{','.join(map(repr, LRS))}]",
        f"grid.init=[{','.join(INITS)}]",
        f"grid.seed=range(0,{seeds})",
        f"grid.max_steps=[{STEPS}]",
        f"sweep.dir={store}",
        "sweep.progress=false",
        f"sweep.engine={ENGINE}",
    ]


# Hydra's own multirun without xorlab's pre-launch validation (which composes every job once more so that bad
# input fails before anything is written): the fair, faster baseline the speedup is computed against.
RAW_HYDRA = "import sys; sys.argv[0] = 'xorlab-train'; from xorlab.apps.train import hydra_main; hydra_main()"


def train_cmd(seeds: list[int], out: Path, precheck: bool = True) -> list[str]:
    entry = ["-m", "xorlab.apps.train"] if precheck else ["-c", RAW_HYDRA]
    return [
        *entry,
        "-m",
        f"lr={','.join(map(repr, LRS))}",
        f"init={','.join(INITS)}",
        f"seed={','.join(map(str, seeds))}",
        f"max_steps={STEPS}",
        f"hydra.sweep.dir={out}",
    ]


def engine_us(n: int, repeats: int, engine: str = "numpy") -> float:
    """Best-of-``repeats`` µs per run-step of ``train_batch`` on ``n`` runs of the grid (in process)."""
    from xorlab.core.config import TrainConfig
    from xorlab.engine.batch import train_batch

    configs = [
        TrainConfig(lr=lr, init=init, seed=s, max_steps=STEPS)
        for s in range(math.ceil(n / PER_SEED))
        for lr in LRS
        for init in INITS
    ][:n]
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        train_batch(configs, log_every=10, engine=engine)  # the sweep's default curve sampling
        best = min(best, time.perf_counter() - start)
    return best / (n * STEPS) * 1e6


def kernel_alone(seeds: int, repeats: int) -> float:
    """Best-of-``repeats`` seconds of the compiled simulation of the sweep grid as one call, nothing else running."""
    from xorlab.core.config import TrainConfig
    from xorlab.engine.batch import prepare

    grid = [(s, lr, init) for s in range(seeds) for lr in LRS for init in INITS]
    configs = [TrainConfig(lr=lr, init=init, seed=s, max_steps=STEPS) for s, lr, init in grid]
    batch = prepare(configs, log_every=10, engine="compiled")
    return min(batch.run()[1] for _ in range(repeats))


def identical(sweep_store: Path, basic_root: Path) -> tuple[bool, str]:
    """Do the basic launcher's runs have bit-identical final losses (and statuses) in the sweep's store?"""
    from xorlab.store.reader import load_runs

    basic = load_runs(basic_root)[["run_id", "final_loss", "status"]]
    joined = basic.merge(load_runs(sweep_store)[["run_id", "final_loss", "status"]], on="run_id", how="left")
    found = int(joined["final_loss_y"].notna().sum())
    x, y = joined["final_loss_x"].to_numpy(), joined["final_loss_y"].to_numpy()
    statuses = int((joined["status_x"] == joined["status_y"]).sum())
    if ENGINE == "numpy":  # the basic launcher trains with the numpy engine: bit for bit
        same = found == len(basic) and np.array_equal(x, y) and statuses == len(basic)
        return same, f"{found}/{len(basic)} found in the sweep store"
    # The compiled engine's exp/tanh differ by ulps, which chaotic learning rates amplify: compare outcomes.
    rel = float(np.nanmax(np.abs(x - y) / np.abs(x))) if found else float("nan")
    same = found == len(basic) and statuses == len(basic)
    return same, f"{found}/{len(basic)} found, {statuses} same status, max rel. final-loss difference {rel:.1e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes: a smoke check, not the real numbers")
    ap.add_argument("--runs", type=int, help="runs of the main sweep grid (default 10,000; quick 2,000)")
    ap.add_argument("--big-runs", type=int, help="runs of the peak-RSS sweep (default 100,000; quick 10,000)")
    ap.add_argument(
        "--basic-runs",
        type=int,
        help=f"runs sampled for xorlab-train -m, rounded up to whole seeds of {PER_SEED} runs (default 40; quick 20)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="engine timing: best of this many (default 3)")
    ap.add_argument("--markdown", type=Path, help="also write the table as markdown to this file")
    ap.add_argument("--engine", choices=("compiled", "numpy"), default="compiled", help="xorlab-sweep's engine")
    a = ap.parse_args()
    global ENGINE
    ENGINE = a.engine
    seeds = math.ceil((a.runs or (2_000 if a.quick else 10_000)) / PER_SEED)
    big_seeds = math.ceil((a.big_runs or (10_000 if a.quick else 100_000)) / PER_SEED)
    basic_seeds = math.ceil((a.basic_runs or (20 if a.quick else 40)) / PER_SEED)
    engine_sizes = (1_000, 2_000) if a.quick else (1_000, 10_000)
    sample = sorted(random.Random(0).sample(range(seeds), min(basic_seeds, seeds)))
    n, big, n_basic = seeds * PER_SEED, big_seeds * PER_SEED, len(sample) * PER_SEED
    header = machine() + (" | QUICK (reduced sizes)" if a.quick else "")
    print(header, flush=True)

    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, target: str = "", ok: bool | str | None = None) -> None:
        rows.append((name, value, target, ok if isinstance(ok, str) else "" if ok is None else "yes" if ok else "MISS"))
        print(f"  {name}: {value}", flush=True)

    ratio_line = "speedup: not measured"
    with tempfile.TemporaryDirectory(prefix="xorlab-bench-") as tmp:
        tmp = Path(tmp)
        sweep_rate = basic_rate = sweep_rss = None
        try:
            sec, sweep_rss = run_child(sweep_cmd(seeds, tmp / "sweep"), tmp / "sweep.log", tmp)
            sweep_rate = n / sec
            row(f"xorlab-sweep runs/s ({n:,} runs x {STEPS:,} steps, end to end)", f"{sweep_rate:,.0f}")
            row(f"xorlab-sweep µs per run-step ({n:,} runs, end to end)", f"{sec / (n * STEPS) * 1e6:.2f}")
            row(
                f"xorlab-sweep wall s ({n:,} runs x {STEPS:,} steps)",
                f"{sec:.1f}",
                "≤ 15 s at 10,000 runs",
                sec <= 15 if n >= 10_000 else "n/a (size)",
            )
            row(f"xorlab-sweep peak RSS ({n:,} runs)", f"{sweep_rss:,.0f} MB")
        except RuntimeError as exc:
            row("xorlab-sweep (main grid)", f"FAILED: {str(exc).splitlines()[0]}", "", False)
            print(exc, file=sys.stderr)
        try:
            sec, rss = run_child(train_cmd(sample, tmp / "shipped"), tmp / "shipped.log", tmp)
            row(f"xorlab-train -m (basic launcher, as shipped) runs/s ({n_basic} sampled runs)", f"{n_basic / sec:.2f}")
            sec, rss = run_child(train_cmd(sample, tmp / "basic", precheck=False), tmp / "basic.log", tmp)
            basic_rate = n_basic / sec
            row(f"Hydra multirun of the train app, no pre-check, runs/s ({n_basic} runs)", f"{basic_rate:.2f}")
            row("Hydra multirun (basic launcher) peak RSS", f"{rss:,.0f} MB")
        except RuntimeError as exc:
            row("xorlab-train -m (basic launcher)", f"FAILED: {str(exc).splitlines()[0]}", "", False)
            print(exc, file=sys.stderr)
        if sweep_rate and basic_rate:
            speedup = sweep_rate / basic_rate
            ratio_line = f"xorlab-sweep runs/s ÷ Hydra basic-launcher multirun runs/s = {speedup:,.0f}×"
            row("speedup, sweep vs basic launcher (no pre-check)", f"{speedup:,.0f}×", "≥ 200×", speedup >= 200)
            try:
                same, detail = identical(tmp / "sweep", tmp / "basic")
                what = "final_loss, status" if ENGINE == "numpy" else "status"
                row(f"sampled runs identical on both sides ({what}; {detail})", "yes" if same else "no", "yes", same)
            except Exception as exc:  # noqa: BLE001 - a report: show it, carry on
                row("sampled runs: identical final_loss", f"FAILED: {exc}", "yes", False)
        for size in engine_sizes:
            for engine in ("numpy", "compiled"):
                us = engine_us(size, a.repeats, engine)
                row(
                    f"{engine} engine µs per run-step ({size:,} runs, in process, best of {a.repeats})",
                    f"{us:.3f}",
                    "≤ 1",
                    us <= 1,
                )
        try:
            sec, rss_big = run_child(sweep_cmd(big_seeds, tmp / "big"), tmp / "big.log", tmp)
            row(
                f"xorlab-sweep peak RSS ({big:,} runs x {STEPS:,} steps)",
                f"{rss_big:,.0f} MB",
                "≤ 1,000 MB at 100,000 runs",
                rss_big <= 1000 if big >= 100_000 else "n/a (size)",
            )
            if sweep_rss is not None:
                row(f"peak RSS growth, {n:,} → {big:,} runs", f"{rss_big - sweep_rss:+,.0f} MB")
            row(f"xorlab-sweep µs per run-step ({big:,} runs, end to end)", f"{sec / (big * STEPS) * 1e6:.2f}")
            inside = engine_seconds(tmp / "big")
            row(f"xorlab-sweep wall s ({big:,} runs x {STEPS:,} steps, process start to exit)", f"{sec:.1f}")
            row(
                f"  of which in the engine's simulation ({ENGINE})",
                f"{inside:.1f} s = {inside / sec:.0%}",
                "≥ 50 % at 100,000 runs",
                inside / sec >= 0.5 if big >= 100_000 else "n/a (size)",
            )
            over = (sec - inside) / big * 1e6
            row(
                "  the rest (start-up, planning, ids, init draws, tables, Parquet) per run",
                f"{over:.1f} µs",
                "≤ 30 µs",
                over <= 30,
            )
            alone = kernel_alone(big_seeds, a.repeats) if ENGINE == "compiled" else None
            if alone is not None:  # inside the sweep the kernel shares the cores with the commit thread
                row(
                    "  the same simulation alone in process (best of N), as a share of the sweep's wall",
                    f"{alone:.1f} s = {alone / sec:.0%}",
                )
        except RuntimeError as exc:
            row(f"xorlab-sweep ({big:,} runs)", f"FAILED: {str(exc).splitlines()[0]}", "", False)
            print(exc, file=sys.stderr)

    width = max(len(r[0]) for r in rows)
    vw = max(len(r[1]) for r in rows)
    tw = max(len(r[2]) for r in rows)
    lines = [f"{'measurement':<{width}} | {'value':>{vw}} | {'target':<{tw}} | ok", "-" * (width + vw + tw + 12)]
    lines += [f"{m:<{width}} | {v:>{vw}} | {t:<{tw}} | {o}" for m, v, t, o in rows]
    misses = sum(r[3] == "MISS" for r in rows)
    summary = f"{misses} target(s) missed" if misses else "all measured targets met"
    print("\n" + header + "\n" + "\n".join(lines) + f"\n\n{ratio_line}\n{summary}")
    if a.markdown:
        md = ["| measurement | value | target | ok |", "|---|---:|---|---|"]
        md += [f"| {m} | {v} | {t} | {'**MISS**' if o == 'MISS' else o} |" for m, v, t, o in rows]
        a.markdown.write_text(f"{header}\n\n" + "\n".join(md) + f"\n\n{ratio_line}; {summary}.\n")
        print(f"markdown table written to {a.markdown}")


if __name__ == "__main__":
    main()
