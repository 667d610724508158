"""Leftover fork server folders: those of dead processes go, those of live ones stay."""

from __future__ import annotations

import os
import subprocess
import time

from connector_engine.sandbox.leftovers import remove_sandbox_leftovers


def folder(root, pid: int, *, age_s: float = 0.0):
    path = root / f"connector-sandbox-{pid}-abc123"
    path.mkdir()
    (path / "forkserver.log").write_text("log")
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))
    return path


def test_it_removes_the_folders_of_dead_processes_only(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        dead = folder(tmp_path, finished.pid)
        mine = folder(tmp_path, os.getpid(), age_s=3600)
        alive = folder(tmp_path, sleeper.pid)
        # A folder older than the process now using its PID belonged to an earlier process.
        reused = tmp_path / f"connector-sandbox-{sleeper.pid}-older"
        reused.mkdir()
        then = time.time() - 3600
        os.utime(reused, (then, then))
        unrelated = tmp_path / "connector-sandbox-notapid"
        unrelated.mkdir()

        removed = remove_sandbox_leftovers(str(tmp_path))

        assert sorted(removed) == sorted([str(dead), str(reused)])
        assert not dead.exists() and not reused.exists()
        assert mine.exists() and alive.exists() and unrelated.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_missing_directory_removes_nothing(tmp_path):
    assert remove_sandbox_leftovers(str(tmp_path / "nowhere")) == []
