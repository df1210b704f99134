"""What every import profile shares: copying a graph, rewriting neuron parameters, recording.

A profile records what it did in the graph's metadata under two keys, so a file written after
import shows its origin and is never converted twice:

    graph.metadata["interop.profile"]      the profile's name ("snntorch", "norse", ...)
    graph.metadata["interop.conventions"]  JSON: {"dt": ..., "tau": ..., "reset": ..., ...}

Reset rules are written as node metadata "reset" (neurocompile.semantics.RESET_KEY) and
graded spikes as node metadata "spikes" (semantics.SPIKES_KEY); the semantics read them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import nir
import numpy as np

from neurocompile.ir.graph import NEURON_TYPES
from neurocompile.semantics.float import RESET_KEY, SPIKES_KEY, SPIKING_KINDS

PROFILE_KEY = "interop.profile"
CONVENTIONS_KEY = "interop.conventions"
LAYOUT_KEY = "interop.layout"  # the input layout the framework feeds ("btf", "tbf", "bft")


def f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def copy_graph(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A deep copy a profile may change freely (the caller's graph stays as it was)."""
    return copy.deepcopy(graph)


def neurons(graph: nir.NIRGraph, *kinds: type) -> Iterator[tuple[str, nir.NIRNode]]:
    """(name, node) of every neuron node, or of the given kinds only."""
    for name, node in graph.nodes.items():
        if isinstance(node, kinds or NEURON_TYPES):
            yield name, node


def spiking(node: nir.NIRNode) -> bool:
    return type(node).__name__ in SPIKING_KINDS


def replace(graph: nir.NIRGraph, name: str, meta: dict[str, Any] | None = None,
            **params: Any) -> None:
    """Rewrite node `name`'s parameters (float64 arrays) and merge `meta` into its metadata."""
    node = graph.nodes[name]
    changes: dict[str, Any] = {k: f64(v) for k, v in params.items()}
    if meta:
        changes["metadata"] = {**(getattr(node, "metadata", None) or {}), **meta}
    graph.nodes[name] = dataclasses.replace(node, **changes) if changes else node


def set_rules(graph: nir.NIRGraph, reset: str | None = None, spikes: str | None = None) -> None:
    """Write the reset rule and the spike rule on every spiking neuron node."""
    meta = {k: v for k, v in ((RESET_KEY, reset), (SPIKES_KEY, spikes)) if v is not None}
    for name, node in list(neurons(graph)):
        if spiking(node) and meta:
            replace(graph, name, meta)


def keep_tau(keep: np.ndarray, dt: float) -> np.ndarray:
    """The Euler time constant whose decay factor 1 - dt/tau is `keep` (keep in [0, 1))."""
    return dt / (1.0 - f64(keep))


def record(graph: nir.NIRGraph, profile: str, dt: float, layout: str,
           conventions: dict[str, str]) -> None:
    """Store the profile's name, dt, input layout and what it changed in graph.metadata."""
    meta = dict(graph.metadata or {})
    meta[PROFILE_KEY] = profile
    meta[LAYOUT_KEY] = layout
    meta["dt"] = float(dt)
    meta[CONVENTIONS_KEY] = json.dumps({"dt": float(dt), "layout": layout, **conventions},
                                       sort_keys=True)
    graph.metadata = meta


def all_equal(node: nir.NIRNode, param: str, value: float) -> bool:
    arr = getattr(node, param, None)
    return arr is not None and bool(np.all(f64(arr) == value))
