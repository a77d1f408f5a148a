"""Tests for ``xorlab.store``: round trips, where records are found, what is ignored, and one-line errors for
every store that cannot be read or written."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.store import files, writer
from xorlab.store.files import atomic_write, check_writable, store_path, with_file_hashes, write_json
from xorlab.store.format import FORMAT, MANIFEST, RUN_COLUMNS, VERSION, StoreError
from xorlab.store.index import recorded_ids
from xorlab.store.reader import committed_chunks, load_curves, load_runs
from xorlab.store.records import curves_frame, run_id, runs_frame
from xorlab.store.sessions import read_sessions, session_state
from xorlab.store.writer import StoreWriter

CONFIGS = [
    TrainConfig(max_steps=30, init="zeros"),  # stuck on the ln2 plateau
    TrainConfig(max_steps=400, lr=0.5, seed=1),  # solves
    TrainConfig(max_steps=12, lr=1e306, init="normal", init_params={"std": 1e3}),  # diverges
]


@pytest.fixture(scope="module")
def batch():
    return train_batch(CONFIGS, log_every=1)


def write_store(path: Path, batch, every: int = 1, **writer) -> Path:
    with StoreWriter(path, **writer) as w:
        w.write(runs_frame(batch), curves_frame(batch, every=every))
    return path


def one_line(err: pytest.ExceptionInfo, *needles: object) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    for needle in needles:
        assert str(needle) in text, (needle, text)
    return text


LOADED = ["sweep", "init_label"]  # what load_runs adds to the records: the store, the readable init


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=LOADED, errors="ignore").sort_values("run_id", ignore_index=True)


# ----------------------------------------------------------------------------------------------- round trip
def test_runs_round_trip_values_and_dtypes(tmp_path, batch):
    assert {*batch.status} == {"stuck", "solved", "diverged"}
    expected = with_file_hashes(runs_frame(batch))
    path = write_store(tmp_path / "s", batch)
    got = load_runs(path)
    assert list(got.columns) == [*RUN_COLUMNS, *LOADED] and set(got["sweep"]) == {str(path)}
    pd.testing.assert_frame_equal(by_id(got), by_id(expected), check_dtype=False)
    assert got["steps_to_solve"].dtype == "Int64" and got["diverged_step"].dtype == "Int64"
    for col in ("max_steps", "seed", "rng_skip"):
        assert got[col].dtype == np.int64
    for col in ("lr", "final_loss", "init_std", "pred_00", "w1_00", "b2"):
        assert got[col].dtype == np.float64
    for col in ("run_id", "init", "rng", "status", "plateau", "init_path", "init_file_sha256"):
        assert pd.api.types.is_string_dtype(got[col]), col
    row = got.set_index("run_id")
    stuck, solved, diverged = (row.loc[run_id(c)] for c in CONFIGS)
    assert stuck["plateau"] == "ln2" and pd.isna(stuck["steps_to_solve"]) and pd.isna(stuck["diverged_step"])
    assert pd.isna(solved["plateau"]) and solved["steps_to_solve"] == batch[1].steps_to_solve
    assert pd.isna(diverged["plateau"]) and diverged["diverged_step"] == batch[2].diverged_step
    assert pd.isna(stuck["init_std"]) and diverged["init_std"] == 1e3 and pd.isna(stuck["init_path"])


def test_round_trip_is_exact(tmp_path, batch):
    """Loaded frames equal the in-memory frames, dtypes included (nullable strings stay pd.NA-backed)."""
    path = write_store(tmp_path / "s", batch)
    pd.testing.assert_frame_equal(by_id(load_runs(path)), by_id(with_file_hashes(runs_frame(batch))[RUN_COLUMNS]))
    got, expected = load_curves(path).drop(columns="sweep"), curves_frame(batch)
    pd.testing.assert_frame_equal(
        got.sort_values(["run_id", "step"], ignore_index=True),
        expected.sort_values(["run_id", "step"], ignore_index=True),
    )


@pytest.mark.parametrize("every", [1, 7])
def test_curves_round_trip_and_end_at_max_steps(tmp_path, batch, same_run, every):
    path = write_store(tmp_path / "s", batch, every=every)
    curves, runs = load_curves(path), load_runs(path).set_index("run_id")
    assert list(curves.columns) == ["run_id", "step", "loss", "sweep"]
    assert curves["step"].dtype == np.int64 and curves["loss"].dtype == np.float64
    for i, cfg in enumerate(CONFIGS):
        rid = run_id(cfg)
        curve = curves[curves["run_id"] == rid]
        last = curve.loc[curve["step"].idxmax()]
        assert last["step"] == cfg.max_steps and last["loss"] == runs.loc[rid, "final_loss"]
        same_run(runs.loc[rid], batch[i], curve, every=every)


def test_run_ids_filter(tmp_path, batch):
    path = write_store(tmp_path / "s", batch)
    wanted = [run_id(CONFIGS[0]), run_id(CONFIGS[2])]
    curves = load_curves(path, run_ids=wanted)
    assert set(curves["run_id"]) == set(wanted)
    assert len(curves) == CONFIGS[0].max_steps + 1 + CONFIGS[2].max_steps + 1
    assert load_curves(path, run_ids=["0" * 16]).empty


def test_run_ids_filter_empty(tmp_path, batch):
    curves = load_curves(write_store(tmp_path / "s", batch), run_ids=[])
    assert curves.empty and list(curves.columns) == ["run_id", "step", "loss", "sweep"]


# ----------------------------------------------------------------------------------------------- finding stores
def test_load_from_store_parent_and_list(tmp_path, batch):
    halves = [train_batch(CONFIGS[:2]), train_batch(CONFIGS[2:])]
    a = write_store(tmp_path / "multirun" / "0", halves[0])
    b = write_store(tmp_path / "multirun" / "1", halves[1])
    (tmp_path / "multirun" / "multirun.yaml").write_text("{}")  # a Hydra multirun dir has files beside the jobs
    everything = {run_id(c) for c in CONFIGS}
    assert set(load_runs(a)["run_id"]) == {run_id(c) for c in CONFIGS[:2]}
    assert set(load_runs(tmp_path / "multirun")["run_id"]) == everything
    assert set(load_runs([a, str(b)])["run_id"]) == everything
    assert set(load_curves(tmp_path)["run_id"]) == everything
    assert set(load_curves([b])["run_id"]) == {run_id(CONFIGS[2])}


def test_runs_of_two_stores_are_never_merged(tmp_path, batch):
    """The same runs in two stores are two sets of rows, told apart by ``sweep``."""
    a, b = write_store(tmp_path / "a", batch), write_store(tmp_path / "b", batch)
    runs = load_runs([a, b])
    assert len(runs) == 2 * len(CONFIGS) and runs.groupby("sweep")["run_id"].nunique().tolist() == [3, 3]
    named = load_runs([a, b], names=["old", "new"])
    assert set(named["sweep"]) == {"old", "new"} and not named.duplicated(["sweep", "run_id"]).any()
    curves = load_curves(tmp_path)
    assert len(curves) == 2 * sum(c.max_steps + 1 for c in CONFIGS) and curves["sweep"].nunique() == 2


def test_run_recorded_twice_in_one_store_is_loaded_once(tmp_path, batch, caplog):
    path = write_store(tmp_path / "a", batch)
    with StoreWriter(path) as w:  # the same records once more, as two racing writers could leave them
        w.write(runs_frame(batch), curves_frame(batch))
    with caplog.at_level(logging.WARNING, logger="xorlab.store"):
        runs = load_runs(path)
    assert len(runs) == len(CONFIGS) and "more than once" in caplog.text


def test_hidden_folders_are_not_searched(tmp_path, batch):
    write_store(tmp_path / "runs" / "a", train_batch(CONFIGS[:1]))
    write_store(tmp_path / "runs" / ".trash" / "b", train_batch(CONFIGS[1:]))
    assert set(load_runs(tmp_path / "runs")["run_id"]) == {run_id(CONFIGS[0])}


def test_orphaned_curves_and_temp_files_are_ignored(tmp_path, batch):
    path = write_store(tmp_path / "s", train_batch(CONFIGS[:2]))
    other = train_batch(CONFIGS[2:])
    # A chunk whose runs file was never committed, and temp files a killed writer left behind.
    with StoreWriter(path) as w:
        atomic_write(w.path / "curves" / "orphan.parquet", lambda fh: curves_frame(other).to_parquet(fh))
    for sub in ("runs", "curves", "sessions", "."):
        (path / sub / ".tmp-abc123.parquet").write_bytes(b"PAR1 half a file")
    runs, curves = load_runs(path), load_curves(path)
    assert set(runs["run_id"]) == set(curves["run_id"]) == {run_id(c) for c in CONFIGS[:2]}
    assert recorded_ids(path) == set(runs["run_id"])


# ----------------------------------------------------------------------------------------------- corrupt files
def split_store(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A store of three chunks (one run each)."""
    path = tmp_path / "s"
    with StoreWriter(path) as w:
        for cfg in CONFIGS:
            b = train_batch([cfg])
            w.write(runs_frame(b), curves_frame(b))
    files = committed_chunks(path)
    assert len(files) == 3
    return path, files


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_runs_file(tmp_path, caplog, damage):
    path, files = split_store(tmp_path)
    bad = files[1]
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not parquet at all", "empty": b""}[damage])
    with pytest.raises(StoreError) as err:
        load_runs(path)
    one_line(err, bad)
    with pytest.raises(StoreError) as err:
        recorded_ids(path)
    one_line(err, bad)
    with caplog.at_level(logging.WARNING, logger="xorlab.store"):
        runs = load_runs(path, on_corrupt="skip")
    assert set(runs["run_id"]) == {run_id(CONFIGS[0]), run_id(CONFIGS[2])}
    assert str(bad) in caplog.text and any(r.levelno == logging.WARNING for r in caplog.records)


def test_corrupt_or_missing_curves_file(tmp_path, caplog):
    path, files = split_store(tmp_path)
    curves_file = path / "curves" / files[0].name
    curves_file.write_bytes(curves_file.read_bytes()[:40])
    with pytest.raises(StoreError) as err:
        load_curves(path)
    one_line(err, curves_file)
    (path / "curves" / files[2].name).unlink()
    with caplog.at_level(logging.WARNING, logger="xorlab.store"):
        curves = load_curves(path, on_corrupt="skip")
    assert set(curves["run_id"]) == {run_id(CONFIGS[1])}
    assert str(curves_file) in caplog.text and files[2].name in caplog.text
    assert len(load_runs(path)) == 3  # the run table itself is intact


def test_on_corrupt_must_be_raise_or_skip(tmp_path, batch):
    path = write_store(tmp_path / "s", batch)
    for load in (load_runs, load_curves):
        with pytest.raises(ValueError, match="on_corrupt"):
            load(path, on_corrupt="ignore")


@pytest.mark.parametrize("kind", ["missing", "empty", "file", "no_manifest"])
def test_nothing_to_load(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_text("hello")
    elif kind == "no_manifest":
        (path / "deep" / "runs").mkdir(parents=True)
    for load in (load_runs, load_curves):
        with pytest.raises(StoreError) as err:
            load(path)
        one_line(err, path)


def test_other_format_version(tmp_path, batch):
    path = write_store(tmp_path / "s", batch)
    manifest = path / MANIFEST
    info = json.loads(manifest.read_text())
    assert info["format"] == FORMAT and info["version"] == VERSION
    manifest.write_text(json.dumps({**info, "version": VERSION + 1}))
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    for action in (load_runs, load_curves, check_writable, StoreWriter, lambda p: load_runs(p.parent)):
        with pytest.raises(StoreError) as err:
            action(path)
        one_line(err, path, "version")
    with pytest.raises(StoreError):
        write_store(path, batch)
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before


def test_recorded_ids_checks_format_version(tmp_path, batch):
    """``runner.plan`` must not count the runs of an incompatible store as recorded."""
    path = write_store(tmp_path / "s", batch)
    manifest = path / MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": VERSION + 1}))
    with pytest.raises(StoreError) as err:
        recorded_ids(path)
    one_line(err, path, "version")


def test_not_a_store_manifest(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / MANIFEST).write_text("{not json")
    with pytest.raises(StoreError) as err:
        load_runs(tmp_path / "s")
    one_line(err, tmp_path / "s")


# ----------------------------------------------------------------------------------------------- writing
def test_check_writable_writes_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "store"
    assert check_writable(target) == target
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where", ["under_file", "is_file", "runs_without_manifest", "dangling_link", "under_dangling_link"]
)
def test_check_writable_rejects(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")  # a link to nothing: mkdir would raise FileExistsError
    path = {
        "under_file": tmp_path / "afile" / "sub",
        "is_file": tmp_path / "afile",
        "runs_without_manifest": tmp_path / "d",
        "dangling_link": tmp_path / "link",
        "under_dangling_link": tmp_path / "link" / "store",
    }[where]
    if where == "runs_without_manifest":
        (path / "runs").mkdir(parents=True)
    with pytest.raises(StoreError) as err:
        check_writable(path, "sweep.dir")
    text = one_line(err, path)
    assert text.startswith("sweep.dir: ") or where == "runs_without_manifest"
    with pytest.raises(StoreError):
        StoreWriter(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root; see test_check_writable_rejects")
def test_check_writable_read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        for path in (ro, ro / "new"):
            with pytest.raises(StoreError) as err:
                check_writable(path, "sweep.dir")
            one_line(err, path, "sweep.dir")
    finally:
        ro.chmod(0o700)


def test_session_provenance(tmp_path, batch):
    path = write_store(tmp_path / "s", batch, config={"lr": 0.1}, meta={"app": "test"})
    (session,) = (path / "sessions").glob("*.json")
    info = json.loads(session.read_text())
    for key in ("git_commit", "git_dirty", "packages", "command", "host", "started", "ended", "status"):
        assert key in info, key
    assert info["status"] == "finished" and info["config"] == {"lr": 0.1} and info["app"] == "test"
    assert info["runs_written"] == len(CONFIGS) and info["chunks"] == 1
    assert info["packages"]["numpy"] == np.__version__ and info["packages"]["pandas"] == pd.__version__
    assert isinstance(info["command"], list) and info["host"]
    assert pd.Timestamp(info["started"]) <= pd.Timestamp(info["ended"])
    assert info["git_dirty"] in (True, False, None)
    assert info["git_commit"] is None or len(info["git_commit"]) == 40


@pytest.mark.parametrize(("exc", "status"), [(RuntimeError, "failed"), (KeyboardInterrupt, "interrupted")])
def test_session_status_when_writer_is_interrupted(tmp_path, batch, exc, status):
    with pytest.raises(exc), StoreWriter(tmp_path / "s") as w:
        w.write(runs_frame(batch), curves_frame(batch))
        raise exc
    (session,) = (tmp_path / "s" / "sessions").glob("*.json")
    assert json.loads(session.read_text())["status"] == status
    assert len(load_runs(tmp_path / "s")) == len(CONFIGS)  # the chunk written before is kept


def test_concurrent_writers_share_a_store(tmp_path):
    path = tmp_path / "s"
    a, b = StoreWriter(path), StoreWriter(path)
    with a, b:
        for w, cfg in ((a, CONFIGS[0]), (b, CONFIGS[1]), (a, CONFIGS[2])):
            bt = train_batch([cfg])
            w.write(runs_frame(bt), curves_frame(bt))
    assert len(committed_chunks(path)) == 3 and len(list((path / "sessions").glob("*.json"))) == 2
    assert sorted(load_runs(path)["run_id"]) == sorted(run_id(c) for c in CONFIGS)
    assert not [p for p in path.rglob(".tmp-*")]


def test_writer_makes_the_store_layout(tmp_path, batch):
    path = write_store(tmp_path / "new" / "store", batch)
    assert {p.name for p in path.iterdir()} == {MANIFEST, "sessions", "runs", "curves"}
    (runs_file,) = committed_chunks(path)
    assert (path / "curves" / runs_file.name).is_file()
    shutil.rmtree(path / "sessions")  # sessions are provenance only; records do not depend on them
    assert len(load_runs(path)) == len(CONFIGS)


def test_manifest_exists_before_any_subfolder(tmp_path, monkeypatch):
    """Guards concurrent shards: another writer checking the folder must never see runs/ without a manifest."""
    seen = []
    create = StoreWriter._create_manifest

    def spy(self):
        seen.append(sorted(p.name for p in self.path.iterdir()))
        create(self)

    monkeypatch.setattr(StoreWriter, "_create_manifest", spy)
    with StoreWriter(tmp_path / "s"):
        pass
    assert seen == [[]]


def test_runs_files_written_before_the_behaviour_columns_still_load(tmp_path):
    """Stores from before the failure taxonomy: their rows load with null behaviour columns."""
    import pyarrow.parquet as pq

    from xorlab.core.config import TrainConfig
    from xorlab.engine.batch import train_batch
    from xorlab.store.records import BEHAVIOUR_DTYPES, curves_frame, runs_frame

    batch = train_batch([TrainConfig(max_steps=20, seed=s) for s in range(3)])
    with StoreWriter(tmp_path) as w:
        w.write(runs_frame(batch), curves_frame(batch))
    (f,) = (tmp_path / "runs").glob("*.parquet")
    old = pq.read_table(f)
    pq.write_table(old.drop_columns(list(BEHAVIOUR_DTYPES)), f)  # as an older xorlab wrote it
    runs = load_runs(tmp_path)
    assert len(runs) == 3 and runs["mode"].isna().all() and runs["period"].dtype == "Int64"
    assert runs["status"].tolist() == batch.status.tolist()


# ----------------------------------------------------------------------------------------------- liveness
def test_files_honour_the_umask(tmp_path, batch):
    old = os.umask(0o022)
    try:
        path = write_store(tmp_path / "s", batch)
    finally:
        os.umask(old)
    for f in [path / MANIFEST, *path.rglob("*.parquet"), *path.rglob("*.json")]:
        assert f.stat().st_mode & 0o777 == 0o644, f


def test_session_liveness_fields_and_state(tmp_path, batch):
    path = write_store(tmp_path / "s", batch, meta={"planned_runs": 3, "grid": {"seed": [0, 1, 2]}})
    (info,) = read_sessions(path)
    assert info["pid"] == os.getpid() and info["host"] and info["status"] == "finished"
    assert pd.Timestamp(info["heartbeat"]).tzinfo is not None
    assert info["planned_runs"] == 3 and info["grid"] == {"seed": [0, 1, 2]}
    assert session_state(info) == "finished"


def test_session_state_running_stalled_and_crashed():
    import socket

    now = pd.Timestamp("2026-11-25T12:00:00Z").to_pydatetime()
    beat = "2026-11-25T11:59:50+00:00"
    live = {"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": beat}
    assert session_state(live, now=now) == "running"
    assert session_state(live, now="2026-11-25T12:00:00+00:00") == "running"
    stale = {**live, "heartbeat": "2026-11-25T11:58:00+00:00"}  # older than HEARTBEAT_TIMEOUT, pid alive: paused
    assert session_state(stale, now=now) == "stalled"
    other_host = {**live, "host": "elsewhere", "pid": 999_999_999}  # a pid on another host is not checked here
    assert session_state(other_host, now=now) == "running"
    assert session_state({**other_host, "heartbeat": "2020-01-01T00:00:00+00:00"}, now=now) == "stalled"
    dead = {**live, "pid": _dead_pid()}
    assert session_state(dead, now=now) == "crashed"
    for status in ("finished", "interrupted", "failed"):
        assert session_state({**stale, "status": status}, now=now) == status
    assert session_state({"status": "running", "started": "2020-01-01T00:00:00+00:00"}) == "stalled"


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_heartbeat_is_refreshed_while_writing(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(writer, "HEARTBEAT_EVERY", 0.01)
    beats = threading.Event()
    real = write_json

    def counting(path, obj, *args):
        real(path, obj, *args)
        if obj.get("status") == "running" and obj["heartbeat"] != obj["started"]:
            beats.set()

    monkeypatch.setattr(files, "write_json", counting)
    with StoreWriter(tmp_path / "s"):
        assert beats.wait(30)  # an event, not a timing assertion


def test_store_without_manifest_is_not_silently_left_out(tmp_path, batch):
    write_store(tmp_path / "par" / "a", batch)
    b = write_store(tmp_path / "par" / "b", batch)
    (b / MANIFEST).unlink()
    for load in (load_runs, load_curves):
        with pytest.raises(StoreError) as err:
            load(tmp_path / "par")
        one_line(err, b, MANIFEST)


def test_foreign_curves_file_is_detected(tmp_path, caplog):
    path, files = split_store(tmp_path)
    other, other_files = split_store(tmp_path / "other")
    target = path / "curves" / files[0].name
    shutil.copy(other / "curves" / other_files[1].name, target)  # valid Parquet, another run's curves
    with pytest.raises(StoreError) as err:
        load_curves(path)
    one_line(err, target, "foreign")
    with caplog.at_level(logging.WARNING, logger="xorlab.store"):
        curves = load_curves(path, on_corrupt="skip")
    assert set(curves["run_id"]) == {run_id(CONFIGS[1]), run_id(CONFIGS[2])}  # nothing foreign added


def test_foreign_runs_file_is_detected(tmp_path):
    path, files = split_store(tmp_path)
    other, other_files = split_store(tmp_path / "other")
    shutil.copy(other / "runs" / other_files[0].name, path / "runs" / "copied.parquet")
    with pytest.raises(StoreError) as err:
        load_runs(path)
    one_line(err, "copied.parquet")


def test_old_chunk_without_metadata_is_checked_by_run_ids(tmp_path):
    """Chunks written before the curves hash existed: a foreign curves file is caught by its run_id set."""
    import pyarrow.parquet as pq

    path, files = split_store(tmp_path)
    for f in files:  # strip the xorlab metadata, as an older writer left it
        t = pq.read_table(f)
        meta = {k: v for k, v in t.schema.metadata.items() if not k.startswith(b"xorlab.")}
        pq.write_table(t.drop(["init_file_sha256"]).replace_schema_metadata(meta), f)
    runs = load_runs(path)
    assert runs["init_file_sha256"].isna().all() and len(runs) == 3  # older stores stay readable
    assert len(load_curves(path)) == sum(c.max_steps + 1 for c in CONFIGS)
    shutil.copy(path / "curves" / files[1].name, path / "curves" / files[0].name)
    with pytest.raises(StoreError) as err:
        load_curves(path)
    one_line(err, files[0].name, "run_ids differ")


def test_null_run_ids_are_an_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, files = split_store(tmp_path)
    t = pq.read_table(files[0])
    i = t.schema.get_field_index("run_id")
    pq.write_table(t.set_column(i, "run_id", pa.nulls(len(t), pa.string())), files[0])
    with pytest.raises(StoreError) as err:
        load_runs(path)
    one_line(err, files[0], "run_id is null")


def test_tilde_is_expanded_when_checking_what_is_recorded(tmp_path, batch, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_store(tmp_path / "s", batch)
    assert recorded_ids("~/s") == {run_id(c) for c in CONFIGS}
    assert store_path("s", base=tmp_path) == tmp_path / "s"
    assert store_path("~/s", base="/elsewhere") == tmp_path / "s"


def test_too_long_path_component(tmp_path):
    with pytest.raises(StoreError) as err:
        check_writable(tmp_path / ("x" * 300) / "s", "sweep.dir")
    one_line(err, "sweep.dir", "255")


def test_disk_full_is_one_line_and_keeps_the_store_consistent(tmp_path, batch, monkeypatch):
    import errno

    path = tmp_path / "s"
    with StoreWriter(path) as w:
        w.write(runs_frame(batch), curves_frame(batch))
        real = atomic_write

        def full(target, write, *args):
            if target.parent.name == "runs":
                raise OSError(errno.ENOSPC, "No space left on device")
            real(target, write, *args)

        monkeypatch.setattr(files, "atomic_write", full)
        with pytest.raises(StoreError) as err:
            w.write(runs_frame(batch), curves_frame(batch))
        monkeypatch.undo()
    one_line(err, path, "no space left", "consistent", "1 chunks")
    assert len(committed_chunks(path)) == 1 and len(list((path / "curves").glob("*"))) == 1
    assert len(load_runs(path)) == len(CONFIGS) and not list(path.rglob(".tmp-*"))


def test_writers_creating_one_new_store_at_the_same_moment_all_succeed(tmp_path):
    """SLURM array jobs start together: checking and creating the same new store folder must not trip over each
    other (the writability probe once created and removed the store folder itself)."""
    import threading

    path, errors = tmp_path / "new" / "store", []
    barrier = threading.Barrier(8)

    def start():
        try:
            barrier.wait()
            check_writable(path)
            with StoreWriter(path, heartbeat=False):
                pass
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(list((path / "sessions").iterdir())) == 8
    assert not [p for p in tmp_path.rglob(".tmp-*")]  # no probe left behind


def test_a_store_named_several_ways_is_found_once(tmp_path, monkeypatch):
    from xorlab.store.reader import find_stores

    for name in ("s1", "s2"):
        with StoreWriter(tmp_path / name, heartbeat=False):
            pass
    monkeypatch.chdir(tmp_path)
    assert find_stores(["s1", "./s1", str(tmp_path / "s1"), ".", "s2"]) == [Path("s1"), Path("s2")]


def test_a_store_created_between_two_checks_is_not_taken_for_a_lost_manifest(tmp_path, monkeypatch):
    """Guards a race seen in CI: a reader found no manifest, then a concurrent writer created the manifest and
    runs/, then the reader found runs/ and reported "has runs/ but no manifest". runs/ is looked at first now."""
    import json as json_
    from pathlib import Path

    from xorlab.store.layout import MANIFEST, read_manifest

    store = tmp_path / "store"
    store.mkdir()
    real_exists = Path.exists

    def exists(self):
        seen = real_exists(self)
        if self.name == MANIFEST and not seen:  # the writer finishes creating the store right after this check
            (store / MANIFEST).write_text(json_.dumps({"format": "xorlab-store", "version": 1, "created": "now"}))
            (store / "runs").mkdir(exist_ok=True)
        return seen

    monkeypatch.setattr(Path, "exists", exists)
    assert read_manifest(store, missing_ok=True) is None  # not yet a store when it looked; never an error
