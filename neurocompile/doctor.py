"""Backend health checks: run the bundled demo graph through each target and compare it with
the reference simulator, so a broken environment shows before a long run does.

A check is a real round trip: for Lava the graph goes to the Python 3.10 worker and its
spikes come back; an environment where the worker cannot import (another Python's numpy on
its path, lava-nc missing) fails here, not only in a run.
"""

from __future__ import annotations

import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from neurocompile.errors import NeurocompileError

CHECK_STEPS = 8  # time steps of the round trip: enough for the demo graph to spike
CHECK_BATCH = 2
# target -> the distribution whose version describes its environment here
PACKAGES = {"reference": "numpy", "torch": "torch", "norse": "norse", "onnx": "onnxruntime"}


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _outputs_agree(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between two runs' outputs (inf when the names differ)."""
    if set(a) != set(b):
        return float("inf")
    return max((float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float))))
                for k in a), default=0.0)


def check_target(name: str) -> dict[str, Any]:
    """Compile and run the demo graph on target `name`; compare with the reference.

    Returns {'target', 'status' ('ok', 'missing', 'differs', 'failed'), 'environment',
    'detail', 'wall_s', 'max_abs_diff'}; never raises for a backend's own failure.
    """
    from neurocompile.demo import demo_graph, demo_input
    from neurocompile.targets import get_target, target_class

    cls = target_class(name)
    report: dict[str, Any] = {"target": name, "status": "ok", "environment": "", "detail": "",
                              "wall_s": None, "max_abs_diff": None}
    missing = cls.missing_requirements()
    if missing:
        report.update(status="missing", detail="; ".join(missing))
        return report
    graph = demo_graph()
    inputs = {"input": demo_input(batch=CHECK_BATCH, steps=CHECK_STEPS)}
    reference = get_target("reference")
    expected = reference.run(reference.compile(graph), inputs).outputs
    target = get_target(name)
    start = time.perf_counter()
    try:
        outputs = target.run(target.compile(graph), inputs).outputs
    except (NeurocompileError, ImportError, OSError) as exc:
        report.update(status="failed", detail=" ".join(str(exc).split()))
        return report
    report["wall_s"] = round(time.perf_counter() - start, 3)
    info = getattr(target, "last_run_info", {}) or {}
    if info.get("python"):
        report["environment"] = (f"{info['python']} (Python {info.get('python_version')}, "
                                 f"lava-nc {info.get('lava_nc')})")
    elif info.get("in_process"):
        report["environment"] = f"{sys.executable} (in process, lava-nc {_version('lava-nc')})"
    else:
        dist = PACKAGES.get(name)
        pkg = f", {dist} {_version(dist)}" if dist else ""
        report["environment"] = f"{sys.executable} (Python {sys.version.split()[0]}{pkg})"
    diff = _outputs_agree(expected, outputs)
    report["max_abs_diff"] = diff
    if diff > 1e-6:
        report.update(status="differs",
                      detail=f"outputs differ from the reference by up to {diff:g}")
    return report


def check_all(names: list[str] | None = None) -> list[dict[str, Any]]:
    """check_target for every registered target (or the ones named), in registry order."""
    from neurocompile.targets import TARGETS

    return [check_target(n) for n in (names or list(TARGETS))]
