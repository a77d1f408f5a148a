"""The compiled engine's environment (``xorlab.engine.kernel``): a broken numba setting or cache degrades to a
one-line notice (falling back to the numpy engine, or recompiling) or stops with one line before any session is
recorded; it never crashes a sweep or leaves a store ``crashed``."""

from __future__ import annotations

import pickle
import types

import pytest

from xorlab.core.config import ConfigError
from xorlab.engine import batch, kernel
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    monkeypatch.setattr(batch, "_notified", set())


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "99999"])
def test_an_invalid_thread_count_stops_before_any_session(tmp_path, monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    with pytest.raises(ConfigError) as err:
        run_sweep(
            Grid.from_mapping({"seed": [0, 1]}), SweepOptions(dir=tmp_path / "s", progress=False, engine="compiled")
        )
    assert str(err.value).startswith("NUMBA_NUM_THREADS: must be a whole number from 1 to")
    assert repr(value) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "s" / "sessions").exists()  # nothing recorded, so no store left 'crashed'
    assert not kernel.available()


@pytest.mark.parametrize("value", ["1", "2"])
def test_valid_thread_counts_pass(monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    kernel.check_settings()


def test_disable_jit_falls_back_to_numpy_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert kernel.unavailable().startswith("NUMBA_DISABLE_JIT is set")
    summary = run_sweep(
        Grid.from_mapping({"seed": [0, 1], "max_steps": [20]}),
        SweepOptions(dir=tmp_path / "s", progress=False, engine="compiled"),
    )
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("xorlab:")]
    assert "NUMBA_DISABLE_JIT is set" in line and "falls back to 'numpy'" in line
    assert summary.trained == 2
    from xorlab.store.reader import load_runs

    assert set(load_runs(tmp_path / "s")["engine"]) == {"numpy"}


class FakeKernel:
    """Stands in for ``kernel_math``: its first compile fails as numba does on a corrupt cache entry."""

    SIGNATURE = "sig"

    def __init__(self, failures: int) -> None:
        self.failures, self.compiles, self.fresh = failures, 0, []
        # numba's cache has an index (a corrupt entry is a cache that exists): a load is expected, not a compile
        index = types.SimpleNamespace(_cache_file=types.SimpleNamespace(_index_path=__file__))
        self.simulate_kernel = types.SimpleNamespace(compile=self.compile, disable_compile=lambda: None, _cache=index)

    def compile(self, sig):
        self.compiles += 1
        if self.compiles <= self.failures:
            raise pickle.UnpicklingError("invalid load key, '\\xe9'.")

    def fresh_cache(self, folder):
        self.fresh.append(folder)
        return "/cache/fresh"


def test_an_unreadable_cache_is_recompiled_with_one_line(monkeypatch, capsys):
    fake = FakeKernel(failures=1)
    monkeypatch.setattr(kernel, "_kernel", None)
    monkeypatch.setattr(kernel, "unavailable", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "xorlab.engine.kernel_math", fake)
    monkeypatch.setattr(__import__("xorlab.engine", fromlist=["x"]), "kernel_math", fake, raising=False)
    kernel.load()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("xorlab: the compiled engine's cache could not be read (UnpicklingError")
    assert "recompiling it" in line and "/cache/fresh" in line
    assert fake.compiles == 2 and len(fake.fresh) == 1


def test_a_cache_that_cannot_be_rebuilt_falls_back_to_numpy(monkeypatch, capsys):
    fake = FakeKernel(failures=2)
    monkeypatch.setattr(kernel, "_kernel", None)
    monkeypatch.setattr(kernel, "unavailable", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "xorlab.engine.kernel_math", fake)
    monkeypatch.setattr(__import__("xorlab.engine", fromlist=["x"]), "kernel_math", fake, raising=False)
    used, _ = batch.simulator("compiled")
    err = capsys.readouterr().err.splitlines()
    assert used == "numpy" and len(err) == 2 and "falls back to 'numpy'" in err[1]


def test_with_no_cache_the_compile_is_announced_at_once(monkeypatch, capsys):
    """No cache index: a compile is certain, so the notice does not wait for a timer (a load would have)."""
    fake = FakeKernel(failures=0)
    del fake.simulate_kernel._cache  # numba has nothing cached for the kernel
    monkeypatch.setattr(kernel, "_kernel", None)
    monkeypatch.setattr(kernel, "unavailable", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "xorlab.engine.kernel_math", fake)
    monkeypatch.setattr(__import__("xorlab.engine", fromlist=["x"]), "kernel_math", fake, raising=False)
    kernel.load()
    assert capsys.readouterr().err.splitlines() == [
        f"xorlab: compiling the engine (once, ~{kernel.COMPILE_SECONDS} s)..."
    ]
