"""Describe the machine a benchmark ran on (recorded in every results JSON)."""

from __future__ import annotations

import os
import platform


def machine() -> dict[str, str | int]:
    """CPU model, core count (and the cores this process may use), BLAS thread setting, OS and
    Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "cores_usable": usable,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS") or
            os.environ.get("OMP_NUM_THREADS"), "system": platform.platform(),
            "python": platform.python_version()}


def fig(key: str, text: str, fmt: str | None = None) -> str:
    """A figure as docs quote it, marked with the JSON key it comes from (scripts/figures.py
    rewrites it from the JSON and tests/test_figures.py checks it)."""
    spec = f" fmt={fmt}" if fmt else ""
    return f"<!-- fig:{key}{spec} -->{text}<!-- /fig -->"
