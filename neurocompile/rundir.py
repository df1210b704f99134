"""Run directories as transactions: one writer at a time, outputs staged, replaced on success.

A run writes into a staging directory inside the run directory and `commit` moves each output
over the old one (one rename per entry) only when the whole run succeeded; a failed or
interrupted run removes its staging directory. A killed one (SIGKILL included) has it removed
by a watchdog process that sees the run's end as the end of a pipe, takes the lock and cleans
up; the next run (which holds the lock) removes any that is left. An old output set aside
during `commit` (in the staging directory's `.old`) is put back when its new one never landed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from neurocompile.errors import InputDataError

LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def run_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (flock on its .lock file, released at exit or
    death); a second holder is refused naming the first one's pid."""
    path = Path(directory) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise InputDataError(f"{directory}: another run is using this directory (pid "
                                 f"{holder}); wait for it or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


ASIDE = ".old"  # inside a staging directory: old outputs `commit` is replacing

# The watchdog process runs `_watch`; it imports this module from where the run imported it.
_WATCHDOG = "import sys; from neurocompile.rundir import _watch; _watch(sys.argv[1], sys.argv[2])"
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])


def _remove_stale(work: Path, dest: Path) -> None:
    """Remove a killed run's staging directory, restoring old outputs set aside in it."""
    aside = work / ASIDE
    if aside.is_dir():
        for entry in aside.iterdir():
            if not os.path.lexists(dest / entry.name):
                os.replace(entry, dest / entry.name)
    shutil.rmtree(work, ignore_errors=True)


def _watch(directory: str, work: str) -> None:
    """The watchdog's body: block until the run writes "done" or dies (end of the pipe); on
    death take the run lock and remove the staging directory as the next run would."""
    if sys.stdin.buffer.read(4) == b"done":
        return
    fd = os.open(Path(directory) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _remove_stale(Path(work), Path(directory))


@contextlib.contextmanager
def staging_dir(directory: Path) -> Iterator[Path]:
    """A fresh staging directory inside `directory` (call with the lock held: stale staging
    directories of killed runs are removed first); removed at exit, or by the watchdog if the
    process is killed."""
    directory = Path(directory)
    for old in directory.glob(STAGING_PREFIX + "*"):
        _remove_stale(old, directory)
    work = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)}
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(directory), str(work)], env=env,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # outlives a kill of the run's process group
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            watchdog.stdin.write(b"done")
            watchdog.stdin.close()
        except OSError:
            pass
        watchdog.wait()


def commit(work: Path, dest: Path, stale: Iterable[str] = ()) -> None:
    """Move every entry of `work` over its namesake in `dest`, then delete the `stale` names.

    Each replacement is a rename (a directory: the old one is renamed aside first, then
    removed), so at every instant each output is either the old one or the new one.
    """
    dest = Path(dest)
    aside = Path(work) / ASIDE
    for entry in sorted(e for e in Path(work).iterdir() if e.name != ASIDE):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            moved = target.exists() or target.is_symlink()
            if moved:  # the old one waits in the staging directory until the new one is in
                aside.mkdir(exist_ok=True)
                os.replace(target, aside / entry.name)
            os.replace(entry, target)
            if moved:
                shutil.rmtree(aside / entry.name, ignore_errors=True)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    for name in stale:
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    fsync_dir(dest)


def fsync_dir(directory: Path) -> None:
    """Make renames inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
