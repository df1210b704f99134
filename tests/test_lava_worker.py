"""The Lava worker process: timeouts and crashes give clear errors and leave no process behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from test_lava_helpers import ensure_lava_env, recurrent, spikes

from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.targets import get_target
from neurocompile.targets.lava import LavaWorkerError, find_lava_python, lava_importable


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is pgid (read from /proc, no psutil)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert _group_members(pid) == []


def _workers_of_this_process() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if b"neurocompile.targets.lava.runtime" in cmd and ppid == os.getpid():
            found.append(int(entry))
    return found


@pytest.fixture
def lava_env():
    if ensure_lava_env() is None:
        pytest.skip("no Lava interpreter: set NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")


@pytest.mark.lava
@pytest.mark.slow
def test_timeout_kills_the_worker_and_its_process_group(lava_env):
    rng = np.random.default_rng(0)
    g = recurrent(rng)
    target = get_target("lava")
    artifact = target.compile(g, {"timeout_s": 6})
    start = time.perf_counter()
    with pytest.raises(LavaWorkerError, match="timed out after 6 s") as info:
        target.run(artifact, {"input": spikes(rng, 1, 10, (10,))}, steps=500_000)
    assert time.perf_counter() - start < 30
    assert info.value.pid is not None
    _assert_gone(info.value.pid)


@pytest.mark.lava
@pytest.mark.slow
def test_worker_killed_by_a_signal_is_a_clear_error(lava_env):
    rng = np.random.default_rng(1)
    g = recurrent(rng)
    target = get_target("lava")
    artifact = target.compile(g, {"timeout_s": 120})
    killed: list[int] = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            pids = _workers_of_this_process()
            if pids:
                time.sleep(2.0)  # let Lava start its own processes
                os.kill(pids[0], signal.SIGSEGV)
                killed.append(pids[0])
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with pytest.raises(LavaWorkerError, match="killed by signal SIGSEGV") as info:
        target.run(artifact, {"input": spikes(rng, 1, 10, (10,))}, steps=500_000)
    thread.join(5)
    assert killed and info.value.pid == killed[0]
    _assert_gone(killed[0])


@pytest.mark.lava
def test_worker_input_error_comes_back_as_input_data_error(lava_env):
    rng = np.random.default_rng(2)
    target = get_target("lava")
    artifact = target.compile(recurrent(rng))
    with pytest.raises(InputDataError, match=r"input 'input': expected an array \(batch, steps"):
        target.run(artifact, {"input": np.zeros((1, 5, 7))})


@pytest.mark.skipif(lava_importable(), reason="this interpreter has lava-nc")
def test_interpreter_without_lava_is_reported(monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", sys.executable)
    rng = np.random.default_rng(3)
    target = get_target("lava")
    artifact = target.compile(recurrent(rng), {"timeout_s": 60})
    with pytest.raises(LavaWorkerError, match="lava-nc is not installed"):
        target.run(artifact, {"input": spikes(rng, 1, 5, (10,))})


def test_missing_interpreter_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", str(tmp_path / "no-python"))
    with pytest.raises(UnsupportedError, match="NEUROCOMPILE_LAVA_PYTHON=.*no such interpreter"):
        find_lava_python()


def test_interpreter_lookup_order(monkeypatch, tmp_path):
    """The variable first, else the package's own .venv-lava; never the current directory's
    (running the CLI in an untrusted directory must not execute a program found there)."""
    from neurocompile.targets.lava import target as lava_target

    monkeypatch.delenv("NEUROCOMPILE_LAVA_PYTHON", raising=False)
    local = tmp_path / ".venv-lava" / "bin" / "python"
    local.parent.mkdir(parents=True)
    local.write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lava_target, "package_environment", lambda: None)
    with pytest.raises(UnsupportedError, match="no Lava environment"):
        find_lava_python()
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", sys.executable)
    assert find_lava_python() == sys.executable


def test_artifact_cannot_choose_the_interpreter():
    """No option names a program: a manifest's options cannot make a run execute one."""
    from neurocompile.config import ConfigError

    with pytest.raises(ConfigError, match="unknown key 'python'"):
        get_target("lava").options({"python": "/bin/sh"})
