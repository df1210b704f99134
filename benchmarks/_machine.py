"""Describe the machine a benchmark ran on (recorded in every results JSON)."""

from __future__ import annotations

import os
import platform


def machine() -> dict[str, str | int]:
    """CPU model, core count, OS and Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "system": platform.platform(),
            "python": platform.python_version()}
