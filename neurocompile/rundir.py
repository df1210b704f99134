"""Run directories as transactions: one writer at a time, outputs staged, replaced on success.

A run writes into a staging directory inside the run directory and `commit` moves each output
over the old one (one rename per entry) only when the whole run succeeded; a failed or
interrupted run removes its staging directory, a killed one leaves it to be removed by the next
run (which holds the lock, so nothing else can be using it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
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


@contextlib.contextmanager
def staging_dir(directory: Path) -> Iterator[Path]:
    """A fresh staging directory inside `directory` (call with the lock held: stale staging
    directories of killed runs are removed first); removed at exit."""
    directory = Path(directory)
    for old in directory.glob(STAGING_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def commit(work: Path, dest: Path, stale: Iterable[str] = ()) -> None:
    """Move every entry of `work` over its namesake in `dest`, then delete the `stale` names.

    Each replacement is a rename (a directory: the old one is renamed aside first, then
    removed), so at every instant each output is either the old one or the new one.
    """
    dest = Path(dest)
    for entry in sorted(Path(work).iterdir()):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            aside = None
            if target.exists() or target.is_symlink():
                aside = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX + "old-", dir=dest))
                os.replace(target, aside / entry.name)
            os.replace(entry, target)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
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
