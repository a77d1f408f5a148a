"""Chaos suite: the run store under attack. Marked ``slow`` and ``chaos``; run with ``make test-chaos``.

Each attack ends with the same assertions: the store holds exactly the expected run ids, its records and curves
equal an uninterrupted sweep's bit for bit, nothing was silently dropped, and the figures (attacks, runs checked,
duplicates, lost) are printed so they can be reported. Attacks:

- ``kill -9`` of one sweep at 12 random moments (start-up, training, committing), resuming after each, with
  each engine (the compiled one prepares, trains and commits three chunks at once);
- three concurrent writers with overlapping grids on one store (claims: each run trained about once), with each
  engine;
- a joblib multirun whose parent is killed with ``kill -9`` (its loky workers must stop, not train on);
- the disk filling up (a small tmpfs when ``mount`` works, else a simulated ENOSPC), then more room and resume;
- every kind of corrupted file, each detected by the loaders and ``check_store``, then repaired by a re-run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xorlab.store import files
from xorlab.store.files import atomic_write
from xorlab.store.format import MANIFEST, StoreError
from xorlab.store.reader import committed_chunks, load_curves, load_runs
from xorlab.store.records import run_id
from xorlab.store.sessions import read_sessions, session_state
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep
from xorlab.tracking.maintenance import check_store, clean_store

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

LOG_EVERY = 50
GRID = {"lr": [0.5, 2.0], "seed": "range(0,120)", "max_steps": [400, 800]}  # 480 runs, ~2 s of training
# The reference sweeps run in process with the engine the CLI is given (numpy unless a test says otherwise).
ARGS = [
    "grid.lr=[0.5,2.0]",
    "grid.seed=range(0,120)",
    "grid.max_steps=[400,800]",
    f"sweep.log_every={LOG_EVERY}",
    "sweep.progress=false",
]


def sweep_module() -> str:
    """The sweep app's module (it moves to ``xorlab.apps.sweep`` in the issue-7 refactor): one place to change."""
    return "xorlab.apps.sweep" if importlib.util.find_spec("xorlab.apps.sweep") else "xorlab.sweep"


def sweep_cmd(
    store_dir: Path, *args: str, multirun: bool = False, chunk_size: int = 16, engine: str = "numpy"
) -> list[str]:
    """The sweep app's command line (Hydra wants ``-m`` before the overrides)."""
    hydra_dir = store_dir.parent / f"hydra-{store_dir.name}"
    where = f"hydra.sweep.dir={hydra_dir}" if multirun else f"hydra.run.dir={hydra_dir}"
    flags = ["-m"] if multirun else []
    return [
        sys.executable,
        "-m",
        sweep_module(),
        *flags,
        *ARGS,
        *args,
        f"sweep.chunk_size={chunk_size}",
        f"sweep.engine={engine}",
        f"sweep.dir={store_dir}",
        where,
    ]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}


def start(cmd: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), **kw)


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)


def expected_ids(grid: dict) -> set[str]:
    return {run_id(c) for runs in Grid.from_mapping(grid).trajectories() for c in runs}


def raw_ids(path: Path) -> list[str]:
    return [i for f in committed_chunks(path) for i in pq.read_table(f, columns=["run_id"])["run_id"].to_pylist()]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted sweep (per engine) every attacked store must equal."""
    made: dict[str, Path] = {}

    def get(engine: str = "numpy") -> Path:
        if engine not in made:
            path = tmp_path_factory.mktemp(f"reference-{engine}") / "store"
            run_sweep(
                Grid.from_mapping(GRID), SweepOptions(dir=path, log_every=LOG_EVERY, progress=False, engine=engine)
            )
            made[engine] = path
        return made[engine]

    return get


@pytest.fixture
def reference(references) -> Path:
    return references("numpy")


def sorted_frames(path: Path, ids: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = load_runs(path).drop(columns="sweep")  # the records; `sweep` names the store they were loaded from
    curves = load_curves(path).drop(columns="sweep").astype({"run_id": str})
    if ids is not None:
        runs, curves = runs[runs["run_id"].isin(ids)], curves[curves["run_id"].isin(ids)]
    return (runs.sort_values("run_id", ignore_index=True), curves.sort_values(["run_id", "step"], ignore_index=True))


def emit(line: str) -> None:
    """Print a figure past pytest's capture (``make test-chaos`` shows them; CI can grep ``CHAOS``)."""
    capture = _CONFIG[0].pluginmanager.getplugin("capturemanager") if _CONFIG else None
    if capture is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print(line, flush=True)


_CONFIG: list = []


@pytest.fixture(autouse=True)
def _remember_config(pytestconfig):
    _CONFIG[:] = [pytestconfig]


def assert_recovered(path: Path, reference: Path, attack: str, attacks: int, max_dup: float = 0.0) -> dict:
    """Exactly the expected ids, records equal to the reference, store clean; print and return the figures."""
    want = expected_ids(GRID)
    raw = raw_ids(path)
    got = set(raw)
    lost, extra, dups = len(want - got), len(got - want), len(raw) - len(got)
    figures = {
        "attack": attack,
        "attacks": attacks,
        "runs_checked": len(want),
        "duplicates": dups,
        "lost": lost,
        "foreign": extra,
    }
    emit(f"\nCHAOS {json.dumps(figures)}")
    assert lost == 0 and extra == 0, figures
    assert dups <= max_dup * len(want), figures
    for a, b in zip(sorted_frames(path), sorted_frames(reference), strict=True):
        pd.testing.assert_frame_equal(a, b)
    report = check_store(path)
    assert report.ok, report.problems
    assert report.runs == len(want) and [g["missing"] for g in report.grids][:1] == [0]
    clean_store(path, grace=0)
    assert check_store(path).ok and not check_store(path).leftovers
    return figures


def wait_for_chunks(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while n and (len(committed_chunks(path)) < n if (path / "runs").is_dir() else True):
        assert proc.poll() is None, "the sweep ended before it could be attacked"
        assert time.monotonic() < deadline
        time.sleep(0.01)


# ----------------------------------------------------------------------------------------------- kill -9
@pytest.mark.parametrize(("engine", "chunk_size"), [("numpy", 8), ("compiled", 2)])  # compiled: more, faster chunks
def test_kill_9_at_random_moments(tmp_path, references, engine, chunk_size):
    """12 kills of one sweep at random moments: during start-up, or after a random number of new chunks plus a
    random fraction of the next (mid-training or mid-commit), resuming after each. With the compiled engine a
    chunk is prepared, one trains and one is written at the same time (engine.pipeline, sweep.committer)."""
    rng = random.Random(8)
    path = tmp_path / "store"
    kills = 0
    for attack in range(12):
        before = len(committed_chunks(path)) if (path / "runs").is_dir() else 0
        proc = start(sweep_cmd(path, chunk_size=chunk_size, engine=engine))
        if attack % 4 == 0:
            time.sleep(rng.uniform(0.05, 1.0))  # start-up: imports, Hydra, planning, the first claims
        else:
            wait_for_chunks(path, before + rng.randint(0, 3), proc)
            time.sleep(rng.uniform(0, 0.15))
        assert proc.poll() is None, "the sweep ended before it could be killed"
        proc.kill()
        kills += 1
        proc.communicate()
        if (path / "runs").is_dir():
            load_runs(path)  # never unreadable in between: a killed writer leaves only whole chunks
    done = run(sweep_cmd(path, engine=engine))
    assert done.returncode == 0, done.stderr
    states = [session_state(s) for s in read_sessions(path)]
    assert states.count("finished") == 1 and "running" not in states  # killed sessions read as crashed
    assert_recovered(path, references(engine), f"kill -9 at random moments ({engine} engine)", kills)


# ----------------------------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_concurrent_writers_with_overlapping_grids(tmp_path, references, engine):
    """Three writers at once: two on the whole grid (a re-submitted job), one on an overlapping half."""
    path = tmp_path / "store"
    half = ["grid.seed=range(60,120)"]
    small = {"chunk_size": 4, "engine": engine} if engine == "compiled" else {}
    procs = [start(sweep_cmd(path, **small)), start(sweep_cmd(path, **small)), start(sweep_cmd(path, *half, **small))]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    trained = [json.loads(p.read_text()).get("trained") for p in (path / "sessions").glob("*.json")]
    attack = f"3 concurrent writers, overlapping grids ({engine} engine)"
    figures = assert_recovered(path, references(engine), attack, 3, max_dup=0.05)
    emit(f"CHAOS trained per writer {sorted(trained)}; sum {sum(trained)} for {figures['runs_checked']} runs")
    assert sum(trained) == figures["runs_checked"] + figures["duplicates"]


# ----------------------------------------------------------------------------------------------- joblib
def start_joblib_multirun(path: Path) -> tuple[subprocess.Popen, list, list]:
    """A 2-shard joblib multirun into ``path``, once 2 chunks are committed: (process, its children, loky workers)."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    # Two-run chunks: a shard commits about 60 of them, so it is still training when the attack comes.
    cmd = sweep_cmd(
        path,
        "sweep.shard=0,1",
        "sweep.num_shards=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        multirun=True,
        chunk_size=2,
    )
    # Output to a file, not a pipe: loky's helper processes inherit the parent's stdout/stderr.
    with open(path.parent / "multirun.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env(), start_new_session=True)
    wait_for_chunks(path, 2, proc)
    children = psutil.Process(proc.pid).children(recursive=True)
    return proc, children, [c for c in children if "popen_loky" in " ".join(c.cmdline())]


def test_joblib_parent_killed(tmp_path, reference):
    """kill -9 of a joblib multirun's parent: its loky workers notice and stop (sessions interrupted)."""
    psutil = pytest.importorskip("psutil")
    for attempt in range(3):  # on a loaded machine both shards may finish before the kill lands: attack again
        path = tmp_path / f"attempt-{attempt}" / "store"
        path.parent.mkdir()
        proc, children, workers = start_joblib_multirun(path)
        # two shards on n_jobs=2: two workers, or three when loky is replacing one as we look (seen under load)
        assert len(workers) >= 2, workers
        proc.kill()
        proc.wait()
        t0 = time.monotonic()
        gone, alive = psutil.wait_procs(workers, timeout=30)
        emit(f"CHAOS joblib workers stopped {time.monotonic() - t0:.1f} s after their parent was killed")
        for p in alive + [c for c in children if c.is_running()]:  # leave nothing behind (loky's trackers too)
            p.kill()
        assert not alive, f"{len(alive)} loky workers kept running after their parent was killed"
        statuses = [s["status"] for s in read_sessions(path)]
        if set(statuses) != {"finished"}:
            break
        emit(f"CHAOS joblib parent kill came after both shards finished (attempt {attempt + 1}); again")
    assert "interrupted" in statuses and set(statuses) <= {"interrupted", "finished"}, statuses
    partial = len(load_runs(path))
    t0 = time.monotonic()
    done = run(sweep_cmd(path))
    emit(f"CHAOS joblib resume took {time.monotonic() - t0:.1f} s")
    assert done.returncode == 0, done.stderr
    assert f"({partial} of the" in done.stdout
    assert_recovered(path, reference, "joblib parent kill -9", 1)


def test_joblib_ctrl_c(tmp_path, reference):
    """Ctrl-C (SIGINT to the foreground process group) stops a joblib multirun and its workers promptly."""
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "store"
    proc, children, workers = start_joblib_multirun(path)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    finally:
        gone, alive = psutil.wait_procs(workers, timeout=30)
        for p in [proc, *alive, *[c for c in children if c.is_running()]]:
            p.kill()
    emit(f"CHAOS joblib Ctrl-C: parent and workers gone in {time.monotonic() - t0:.1f} s")
    assert not alive, f"{len(alive)} loky workers kept running after Ctrl-C"
    # joblib answers Ctrl-C by SIGKILLing its workers: one that had not finished marking its session reads as
    # crashed (its claims are taken over at once); none may read as running.
    states = [session_state(s) for s in read_sessions(path)]
    assert states and set(states) <= {"interrupted", "finished", "crashed"}, states
    done = run(sweep_cmd(path))
    assert done.returncode == 0, done.stderr
    assert_recovered(path, reference, "joblib Ctrl-C", 1)


# ----------------------------------------------------------------------------------------------- disk full
def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )


def test_disk_full_then_resume(tmp_path, reference, monkeypatch):
    mnt = tmp_path / "small"
    if _mount_tmpfs(mnt, "600k"):
        try:
            path = mnt / "store"
            out = run(sweep_cmd(path))
            assert out.returncode != 0 and "Traceback" not in out.stdout + out.stderr, out.stderr
            line = out.stderr.strip().splitlines()[-1]
            assert "no space left" in line and "consistent" in line, out.stderr
            partial = load_runs(path)  # whatever was committed is whole
            assert 0 < len(partial) < len(expected_ids(GRID))
            assert check_store(path).ok
            # The same store on a read-only filesystem: refused before anything is attempted, one line.
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            ro = run(sweep_cmd(path))
            assert ro.returncode != 0 and "Traceback" not in ro.stdout + ro.stderr, ro.stderr
            assert "not writable" in ro.stderr and len(ro.stderr.strip().splitlines()) == 1, ro.stderr
            subprocess.run(["mount", "-o", "remount,rw,size=64m", str(mnt)], check=True)
            done = run(sweep_cmd(path))
            assert done.returncode == 0, done.stderr
            assert_recovered(path, reference, "disk full (tmpfs 600 KB), then read-only", 2)
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        return
    # No tmpfs here: ENOSPC from the 4th write on, in process.
    import errno

    path = tmp_path / "store"
    real, writes = atomic_write, []

    def full(target, write):
        writes.append(target)
        if len(writes) > 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(target, write)

    monkeypatch.setattr(files, "atomic_write", full)
    with pytest.raises(StoreError, match="no space left"):
        run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=16, log_every=LOG_EVERY, progress=False))
    monkeypatch.undo()
    run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=16, log_every=LOG_EVERY, progress=False))
    assert_recovered(path, reference, "disk full (simulated ENOSPC)", 1)


# ----------------------------------------------------------------------------------------------- corruption
def _garbage(f: Path) -> None:
    f.write_bytes(b"not parquet")


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _null_ids(f: Path) -> None:
    t = pq.read_table(f)
    nulls = t.set_column(0, "run_id", pa.nulls(len(t), pa.string()))
    pq.write_table(nulls.replace_schema_metadata(t.schema.metadata), f)


def _rows_dropped(f: Path) -> None:  # a valid Parquet file with part of the rows: a partial curves file
    t = pq.read_table(f)
    pq.write_table(t.slice(0, len(t) // 2), f)


CORRUPTIONS = {
    "runs: garbage": ("runs", _garbage),
    "runs: truncated": ("runs", _truncate),
    "runs: null run_ids": ("runs", _null_ids),
    "runs: foreign chunk": ("runs", "foreign"),
    "curves: garbage": ("curves", _garbage),
    "curves: truncated": ("curves", _truncate),
    "curves: partial (valid Parquet)": ("curves", _rows_dropped),
    "curves: foreign": ("curves", "foreign"),
    "curves: missing": ("curves", "missing"),
    "manifest: missing": ("manifest", "missing"),
    "manifest: garbage": ("manifest", _garbage),
}


def test_corrupted_files_of_each_kind(tmp_path, reference):
    """Every damage is reported naming the file (never silently dropped); removing it and re-running repairs."""
    grid = Grid.from_mapping(GRID)
    opts = dict(chunk_size=64, log_every=LOG_EVERY, progress=False)
    pristine = tmp_path / "pristine"
    run_sweep(grid, SweepOptions(dir=pristine, **opts))
    donor = tmp_path / "donor"
    run_sweep(Grid.from_mapping({**GRID, "seed": "range(500,520)"}), SweepOptions(dir=donor, **opts))
    donor_chunk = committed_chunks(donor)[0]
    checked = 0
    for n, (name, (kind, damage)) in enumerate(CORRUPTIONS.items()):
        path = tmp_path / f"s{n}"
        shutil.copytree(pristine, path)
        chunk = committed_chunks(path)[n % 3]
        target = {"runs": chunk, "curves": path / "curves" / chunk.name, "manifest": path / MANIFEST}[kind]
        if damage == "missing":
            target.unlink()
        elif damage == "foreign":
            shutil.copy(donor / kind / donor_chunk.name, target)
        else:
            damage(target)
        loader = load_curves if kind == "curves" else load_runs
        with pytest.raises(StoreError) as err:
            loader(path)
        assert "\n" not in str(err.value)
        assert str(target if kind != "manifest" else path) in str(err.value), (name, str(err.value))
        if kind != "manifest":
            report = check_store(path)
            assert not report.ok and any(str(target) in p for p in report.problems), (name, report.problems)
            # Repair: move the damaged chunk away, re-run the sweep: it re-trains exactly that chunk.
            chunk.unlink()
            (path / "curves" / chunk.name).unlink(missing_ok=True)
        else:
            shutil.copy(pristine / MANIFEST, path / MANIFEST)
        run_sweep(grid, SweepOptions(dir=path, **opts))
        for a, b in zip(sorted_frames(path), sorted_frames(reference), strict=True):
            pd.testing.assert_frame_equal(a, b)
        assert set(raw_ids(path)) == expected_ids(GRID) and len(raw_ids(path)) == len(expected_ids(GRID))
        checked += len(expected_ids(GRID))
    figures = {
        "attack": "corrupted files",
        "attacks": len(CORRUPTIONS),
        "runs_checked": checked,
        "duplicates": 0,
        "lost": 0,
        "kinds": list(CORRUPTIONS),
    }
    emit(f"\nCHAOS {json.dumps(figures)}")
