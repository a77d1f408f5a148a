"""Servers that tests start (a Ray cluster, MLflow's UI) run in their own process group and are stopped by it."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil


def alive_in_group(pgid: int) -> list[int]:
    """Pids of the group's processes that are still running (zombies waiting to be reaped do not count)."""
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to ``proc``'s process group, SIGKILL to whatever of it is left after ``grace`` seconds; returns
    when no process of the group runs any more."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            if not alive_in_group(proc.pid):
                return
            time.sleep(0.2)
    raise RuntimeError(f"process group {proc.pid} survived SIGKILL: {alive_in_group(proc.pid)}")
