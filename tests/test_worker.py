"""The generic out-of-process worker (targets/worker.py) with a toy worker module: errors come
back as their own class, timeouts and crashes are clear errors, and no process or file outlives
a run, even when the parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neurocompile.errors import GraphValidationError, InputDataError, UnsupportedError
from neurocompile.targets.worker import WorkerError, group_alive, run_worker

TOY = textwrap.dedent('''
    import os, signal, subprocess, sys, time
    from pathlib import Path
    from neurocompile.errors import GraphValidationError, InputDataError, Problem
    from neurocompile.targets.worker import serve

    def handle(d: Path) -> None:
        mode = (d / "mode").read_text()
        if mode == "ok":
            (d / "result").write_text("done")
        elif mode == "input":
            raise InputDataError("input 'x': bad shape")
        elif mode == "graph":
            raise GraphValidationError([Problem("lif1", "tau must be > 0")], "g.nir")
        elif mode == "other":
            raise KeyError("boom")
        elif mode == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif mode == "hang":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            (d / "pids").write_text(f"{os.getpid()} {child.pid}")
            time.sleep(600)

    if __name__ == "__main__":
        sys.exit(serve(handle))
''')


def _request(tmp_path: Path, mode: str) -> Path:
    d = tmp_path / f"req-{mode}"
    (d / "pythonpath").mkdir(parents=True)
    (d / "pythonpath" / "toyworker.py").write_text(TOY)
    (d / "mode").write_text(mode)
    return d


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie not yet reaped by its parent is gone too
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_run_returns_and_its_files_come_back(tmp_path):
    d = _request(tmp_path, "ok")
    info = run_worker("toyworker", d, sys.executable, 60)
    assert (d / "result").read_text() == "done" and info["pid"] > 0
    assert group_alive(info["pid"]) == []


@pytest.mark.parametrize("mode, cls, match", [
    ("input", InputDataError, r"^input 'x': bad shape$"),
    ("graph", GraphValidationError, "lif1"),
    ("other", WorkerError, "worker failed: KeyError: 'boom'"),
    ("segv", WorkerError, r"killed by signal SIGSEGV")])
def test_errors_come_back_as_their_own_class(tmp_path, mode, cls, match):
    with pytest.raises(cls, match=match) as info:
        run_worker("toyworker", _request(tmp_path, mode), sys.executable, 60)
    assert type(info.value) is cls


def test_timeout_kills_the_whole_process_group(tmp_path):
    d = _request(tmp_path, "hang")
    start = time.monotonic()
    with pytest.raises(WorkerError, match="timed out after 3 s"):
        run_worker("toyworker", d, sys.executable, 3)
    assert time.monotonic() - start < 15
    worker, child = map(int, (d / "pids").read_text().split())
    assert _gone(worker) and _gone(child)


def test_killed_parent_takes_the_worker_and_its_children_along(tmp_path):
    """SIGKILL of the process that started the worker: the worker notices, removes its request
    directory and kills its process group (a grandchild included)."""
    d = _request(tmp_path, "hang")
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from neurocompile.targets.worker import run_worker; "
        f"run_worker('toyworker', Path({str(d)!r}), sys.executable, 600)")])
    deadline = time.monotonic() + 30
    while not (d / "pids").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker, child = map(int, (d / "pids").read_text().split())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while not (_gone(worker) and _gone(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(worker) and _gone(child)
    assert not d.exists()


def test_a_missing_interpreter_is_a_clear_error(tmp_path):
    with pytest.raises(WorkerError, match="cannot start the worker"):
        run_worker("toyworker", _request(tmp_path, "ok"), str(tmp_path / "nope"), 5)
    assert issubclass(WorkerError, Exception) and not issubclass(WorkerError, UnsupportedError)
