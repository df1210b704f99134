"""Counters from what a run recorded: one derivation for every target.

A target records each node's values over the run, (steps, batch, *shape) (the reference
simulator computes them all; the Lava target records sources and neurons and evaluates the
stateless nodes host-side). From them, per node:

* spikes: non-zero outputs of Input and spiking nodes (LIF, CubaLIF, IF, Threshold);
* synaptic_events: for a node with weights, sum over its input elements of (samples x steps in
  which that element was non-zero) x (the element's non-zero fan-out);
* neuron_updates: neurons x steps x samples, for neuron nodes;
* active_neuron_updates (where the target records neuron state, see `active_updates`): the
  updates in which a neuron did work; the rest are inactive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import nir
import numpy as np

from neurocompile.ir.analysis import fan_out
from neurocompile.ir.graph import NEURON_TYPES, SPIKING_TYPES, SYNAPTIC_TYPES, predecessors
from neurocompile.targets.base import NodeCounters


def fan_outs(graph: nir.NIRGraph, in_shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Flat non-zero fan-out of every synaptic node's input elements (computed once per graph)."""
    return {n: fan_out(node, tuple(in_shapes[n])).reshape(-1)
            for n, node in graph.nodes.items() if isinstance(node, SYNAPTIC_TYPES)}


def active_elements(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Per element of the sum of parts (each (steps, batch, *shape)): how many (step, sample)
    entries are non-zero, int64."""
    values = parts[0] if len(parts) == 1 else sum(np.asarray(p, np.float64) for p in parts)
    flat = values.reshape(-1, int(np.prod(values.shape[2:], dtype=np.int64)))
    if flat.dtype == bool:
        return flat.sum(axis=0, dtype=np.int64)
    return np.count_nonzero(flat, axis=0).astype(np.int64)


ActiveElements = Callable[[Sequence[Any]], np.ndarray]


def count(graph: nir.NIRGraph, values: dict[str, Any], steps: int, batch: int,
          fan: dict[str, np.ndarray], active_of: ActiveElements = active_elements
          ) -> dict[str, NodeCounters]:
    """Counters of every node from the recorded values (module docstring). `active_of` reduces
    values to per-element non-zero counts; a target whose values live elsewhere (torch tensors
    on a GPU) passes its own, so only those counts travel."""
    preds = predecessors(graph)
    counters = {n: NodeCounters() for n in graph.nodes}
    active: dict[str, np.ndarray] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, SYNAPTIC_TYPES) and preds[name]:
            srcs = preds[name]
            if not all(p in values for p in srcs):
                continue
            if len(srcs) == 1:  # the usual case: reuse the source's per-element counts
                if srcs[0] not in active:
                    active[srcs[0]] = active_of([values[srcs[0]]])
                per_elem = active[srcs[0]]
            else:
                per_elem = active_of([values[p] for p in srcs])
            counters[name].synaptic_events = int(per_elem @ fan[name])
        if isinstance(node, SPIKING_TYPES + (nir.Input,)) and name in values:
            if name not in active:
                active[name] = active_of([values[name]])
            counters[name].spikes = int(active[name].sum())
        if isinstance(node, NEURON_TYPES):
            size = int(np.prod(values[name].shape[2:])) if name in values else \
                int(np.prod(np.asarray(node.output_type["output"]).reshape(-1)))
            counters[name].neuron_updates = int(steps * batch * size)
    return counters


def active_updates(trace: np.ndarray, out: np.ndarray) -> int:
    """Active neuron updates of one population from its state trace and outputs.

    trace: (steps, 2, batch, n), u and v after each step (after reset; zero before step 0);
    out: (steps, batch, *shape), the population's output. A neuron's update at step t is
    active when u after it is non-zero (input arrived, or current carried over), v before or
    after it is non-zero (the membrane leaks or integrates), or it spiked; an idle neuron at
    rest (zero state, no input) is an inactive update. This is SANA-FE's rule for an "updated"
    neuron (non-zero potential, input or bias), with the synaptic current counted as state.
    """
    u, v = trace[:, 0], trace[:, 1]
    v_prev = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
    active = (u != 0) | (v != 0) | (v_prev != 0) | (np.asarray(out).reshape(v.shape) != 0)
    return int(np.count_nonzero(active))
