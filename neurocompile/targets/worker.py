"""Out-of-process backends: run `python -m MODULE REQUEST_DIR` in an interpreter of its own.

Parent side (`run_worker`): the worker starts in a session of its own, with a timeout; on
timeout, error or interrupt its whole process group is killed and waited for. Only files in
the request directory cross the boundary; the worker's error comes back as the same error
class (any NeurocompileError subclass of this package), its message unchanged.

Worker side (`serve`): runs the handler, writes error.json on failure (exit status 3), and
watches its parent: if the parent dies (any signal, SIGKILL included), the worker removes the
request directory and kills its own process group, so no child process or file outlives it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neurocompile.errors import GraphValidationError, NeurocompileError, Problem

ERROR_FILE = "error.json"
WORKER_EXIT = 3  # the worker ran and reported an error in error.json
_WATCH_S = 0.2


class WorkerError(NeurocompileError):
    """A worker process timed out, crashed or reported an error that is not a user error."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


# -- parent side ---------------------------------------------------------------------------
def _package_dir() -> Path:
    """The directory holding the `neurocompile` package: all the worker needs on its path."""
    import neurocompile

    return Path(neurocompile.__file__).resolve().parent


def worker_pythonpath(directory: Path) -> str:
    """A directory inside the request holding only a link to this package: the worker's path.

    Putting the package's parent (a whole site-packages) on the path would make the worker's
    interpreter import this interpreter's other packages (numpy of another Python version).
    """
    base = directory / "pythonpath"
    base.mkdir(exist_ok=True)
    os.symlink(_package_dir(), base / "neurocompile")
    return str(base)


@contextmanager
def request_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A private temporary directory for one request; removed afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def group_alive(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes in process group `pgid`, read from /proc."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def kill_group(pgid: int, wait_s: float = 5.0) -> None:
    """SIGKILL every process in group `pgid` and wait (bounded) until none is left alive."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if not group_alive(pgid) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _set_parent_death_signal() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the worker's watchdog still polls
        pass


def run_worker(module: str, directory: Path, python: str, timeout_s: float, *,
               label: str = "worker", error_class: type[WorkerError] = WorkerError,
               poll: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run `python -m module directory`; returns {'pid', 'wall_s'}.

    Raises the worker's own error (error.json), or error_class when it times out or dies.
    poll, if given, is called about every 0.2 s while the worker runs (progress display).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = worker_pythonpath(directory)
    env["PYTHONUNBUFFERED"] = "1"
    env["NEUROCOMPILE_PARENT_PID"] = str(os.getpid())
    log_path = directory / "worker.log"
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                [python, "-m", module, str(directory)], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=directory, start_new_session=True,
                preexec_fn=_set_parent_death_signal)
        except OSError as exc:
            raise error_class(f"cannot start the {label} {python}: {exc}") from exc
        pid = proc.pid
        try:
            rc = _wait(proc, timeout_s, poll)
        except subprocess.TimeoutExpired:
            kill_group(pid)
            proc.wait()
            raise error_class(
                f"{label} (pid {pid}) timed out after {timeout_s:g} s and was killed with its "
                "process group; raise the timeout (option timeout_s) or run fewer steps",
                pid) from None
        except BaseException:
            kill_group(pid)
            proc.wait()
            raise
        finally:
            kill_group(pid)  # the worker's own child processes, should any outlive it
    wall = time.perf_counter() - start
    err_path = directory / ERROR_FILE
    if err_path.is_file():
        raise_transported(json.loads(err_path.read_text()), label, error_class, pid)
    if rc != 0:
        tail = log_tail(log_path)
        how = (f"was killed by signal {signal.Signals(-rc).name}" if rc < 0
               else f"exited with status {rc}")
        raise error_class(f"{label} (pid {pid}) {how}" + (f": {tail}" if tail else ""), pid)
    return {"pid": pid, "wall_s": wall}


def _wait(proc: subprocess.Popen, timeout_s: float, poll: Callable[[], None] | None) -> int:
    """proc.wait(timeout_s), calling poll() every _WATCH_S meanwhile."""
    if poll is None:
        return proc.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout_s)
        try:
            return proc.wait(timeout=min(_WATCH_S, remaining))
        except subprocess.TimeoutExpired:
            poll()


def raise_transported(err: dict[str, Any], label: str, error_class: type[WorkerError],
                      pid: int | None) -> None:
    """Raise the error a worker reported, as its own class where it is one of ours."""
    cls = _error_class(str(err.get("module", "")), str(err.get("type", "")))
    message = str(err.get("message", ""))
    if cls is GraphValidationError:
        raise GraphValidationError([Problem(p.get("node", "?"), p.get("message", ""))
                                    for p in err.get("problems", [])], err.get("source"))
    if cls is None or issubclass(cls, WorkerError):
        raise error_class(f"{label} failed: {message}", pid)
    raise cls(message)


def _error_class(module: str, name: str) -> type[NeurocompileError] | None:
    if not module.startswith("neurocompile"):
        return None
    try:
        cls = getattr(importlib.import_module(module), name, None)
    except Exception:  # noqa: BLE001 - an unknown module is simply not ours
        return None
    if isinstance(cls, type) and issubclass(cls, NeurocompileError):
        return cls
    return None


def log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


# -- worker side ---------------------------------------------------------------------------
def _watch_parent(directory: Path, parent: int) -> None:
    """Poll the parent; once it is gone, remove the request directory and kill our group."""
    while True:
        time.sleep(_WATCH_S)
        if os.getppid() != parent:
            _die(directory)


def _die(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)


def write_error(directory: Path, exc: BaseException, message: str | None = None) -> None:
    """Report an exception to the parent (its class travels by module and name)."""
    cls = type(exc)
    ours = isinstance(exc, NeurocompileError)
    err = {"module": cls.__module__ if ours else "", "type": cls.__name__ if ours else "",
           "message": message or (str(exc) if ours else f"{cls.__name__}: {exc}"),
           "traceback": traceback.format_exc()}
    if isinstance(exc, GraphValidationError):
        err["problems"] = [{"node": p.node, "message": p.message} for p in exc.problems]
    (directory / ERROR_FILE).write_text(json.dumps(err))


def serve(handler: Callable[[Path], None], argv: list[str] | None = None,
          describe: Callable[[BaseException], str | None] | None = None) -> int:
    """Worker entry point: handler(REQUEST_DIR); errors go to error.json, exit status 3.

    describe(exc) may give a clearer message for an exception (e.g. a missing package).
    """
    argv = sys.argv[1:] if argv is None else argv
    directory = Path(argv[0])
    parent = int(os.environ.get("NEUROCOMPILE_PARENT_PID", os.getppid()))
    signal.signal(signal.SIGTERM, lambda *_: _die(directory))
    if os.getppid() != parent:  # the parent died before we got here
        _die(directory)
    threading.Thread(target=_watch_parent, args=(directory, parent), daemon=True).start()
    try:
        handler(directory)
        return 0
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        write_error(directory, exc, describe(exc) if describe else None)
        traceback.print_exc()
        return WORKER_EXIT
