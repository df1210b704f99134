"""Calibration runs for the activity-based passes, and the driver that runs any registered pass."""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import InputDataError
from neurocompile.passes import PassReport, get_pass
from neurocompile.targets.reference import Simulator, build_program


def record_activity(graph: nir.NIRGraph, inputs: dict[str, np.ndarray] | np.ndarray,
                    steps: int | None = None) -> dict[str, np.ndarray]:
    """Run `inputs` (e.g. calibration data) and total every node's |output|, for activity passes.

    Returns {node: array of the node's output shape}: |output| summed over samples and steps,
    plus '__samples_steps__' (a 0-d array: batch * steps) for turning sums into rates. This is
    the `activity` that passes.prune.activity_prune and remove_dead_neurons take.
    """
    if isinstance(inputs, dict) and not inputs:
        raise InputDataError("calibration data is empty")
    sim = Simulator(build_program(graph), record_all=True)
    result = sim.run(inputs, steps)
    totals = {name: np.abs(values).sum(axis=(0, 1)) for name, values in sim.values.items()}
    totals["__samples_steps__"] = np.asarray(result.steps * result.batch)
    return totals


def run_pass(name: str, graph: nir.NIRGraph, options: Any = None, *,
             calibration: dict[str, np.ndarray] | None = None, steps: int | None = None,
             kind: str | None = None) -> tuple[nir.NIRGraph, PassReport]:
    """Run the registered pass `name` with `options` (its Options, or a mapping checked
    against it), recording the calibration activity first when the pass needs it."""
    spec = get_pass(name, kind)
    if not isinstance(options, spec.Options):
        options = config.from_mapping(spec.Options, dict(options or {}),
                                      f"{spec.kind} method {name!r} options")
    activity = None
    if spec.needs_activity:
        if calibration is None:
            raise InputDataError(f"{spec.kind} method {name!r} needs calibration data "
                                 "(--calibration DATA.npz)")
        activity = record_activity(graph, calibration, steps)
    return spec.run(graph, options, activity)


__all__ = ["record_activity", "run_pass"]
