"""Progress bars for long work (Lava runs), on standard error.

Shown only where standard error is a terminal and not switched off (the CLI's --quiet turns
them off); otherwise every call here does nothing, so logs and pipes stay clean. Bars of runs
going on at the same time (the pipeline's two Lava runs) share one display, a line each.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_STATE = {"enabled": True}
_LOCK = threading.Lock()
_LIVE: dict = {"progress": None, "tasks": 0}


def set_enabled(enabled: bool) -> None:
    """Switch progress bars on or off (the CLI's --quiet switches them off)."""
    _STATE["enabled"] = bool(enabled)


def shown() -> bool:
    """Whether bars would be drawn now: enabled, and standard error is a terminal."""
    return _STATE["enabled"] and sys.stderr.isatty()


class Bar:
    """One task of the shared display; `update(done)` sets how many units are done."""

    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def update(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done)


@contextmanager
def bar(total: int, description: str) -> Iterator[Bar]:
    """A progress bar of `total` units for the duration of the block (a no-op bar when
    bars are not shown)."""
    if not shown() or total <= 0:
        yield Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with _LOCK:
        if _LIVE["progress"] is None:
            _LIVE["progress"] = Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                                         TimeElapsedColumn(), console=Console(stderr=True),
                                         transient=True)
            _LIVE["progress"].start()
        progress = _LIVE["progress"]
        task = progress.add_task(description, total=total)
        _LIVE["tasks"] += 1
    try:
        yield Bar(progress, task)
    finally:
        with _LOCK:
            progress.remove_task(task)
            _LIVE["tasks"] -= 1
            if _LIVE["tasks"] == 0:
                progress.stop()
                _LIVE["progress"] = None
