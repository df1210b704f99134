"""Pruning methods as `neurocompile prune` runs them: calibration run, then the pass.

The passes in neurocompile/passes are graph -> graph and import ``ir`` only; the
activity-based ones (activity pruning, dead-neuron removal) take the activity of a
calibration run. This module runs that calibration on the reference simulator
(``record_activity``) and hands the result to the pass, so it lives in ``targets``.

``PRUNE_METHODS`` maps each method name to a ``"module:function"`` taking
``(graph, PruneOptions)`` and returning ``(graph, PassReport)``: one line per method.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.passes.prune import activity_prune, magnitude_prune, remove_dead_neurons
from neurocompile.passes.report import PassReport
from neurocompile.targets.reference import record_activity


@dataclass
class PruneOptions:
    """Everything `neurocompile prune` may pass to a pruning method."""

    sparsity: float | None = None
    threshold: float | None = None
    scope: str = "layer"
    calibration: dict[str, np.ndarray] | None = None
    steps: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def calibration_activity(graph: nir.NIRGraph, options: PruneOptions, method: str
                         ) -> dict[str, np.ndarray]:
    """The activity of `graph` on options.calibration (the CLI's --calibration data)."""
    if options.calibration is None:
        raise InputDataError(f"--method {method} needs --calibration DATA.npz")
    return record_activity(graph, options.calibration, options.steps)


def run_magnitude(graph: nir.NIRGraph, options: PruneOptions) -> tuple[nir.NIRGraph, PassReport]:
    """`neurocompile prune --method magnitude`."""
    sparsity = options.sparsity if options.threshold is None else None
    return magnitude_prune(graph, sparsity, threshold=options.threshold, scope=options.scope)


def run_activity(graph: nir.NIRGraph, options: PruneOptions) -> tuple[nir.NIRGraph, PassReport]:
    """`neurocompile prune --method activity`."""
    if options.sparsity is None:
        raise UnsupportedError("--method activity needs --sparsity")
    return activity_prune(graph, calibration_activity(graph, options, "activity"),
                          options.sparsity, scope=options.scope)


def run_dead(graph: nir.NIRGraph, options: PruneOptions) -> tuple[nir.NIRGraph, PassReport]:
    """`neurocompile prune --method dead`."""
    return remove_dead_neurons(graph, calibration_activity(graph, options, "dead"))


# method name -> "module:function" taking (graph, PruneOptions). One line per method.
PRUNE_METHODS: dict[str, str] = {
    "magnitude": "neurocompile.targets.calibrate:run_magnitude",
    "activity": "neurocompile.targets.calibrate:run_activity",
    "dead": "neurocompile.targets.calibrate:run_dead",
    "lnp": "neurocompile.passes.lnp:run_lnp",
}


def get_prune_method(name: str) -> Callable[[nir.NIRGraph, PruneOptions],
                                            tuple[nir.NIRGraph, PassReport]]:
    """Look up a pruning method by name; unknown names list the known ones."""
    if name not in PRUNE_METHODS:
        raise UnsupportedError(f"unknown pruning method {name!r}; known: "
                               f"{', '.join(sorted(PRUNE_METHODS))}")
    module, attr = PRUNE_METHODS[name].split(":")
    return getattr(importlib.import_module(module), attr)
