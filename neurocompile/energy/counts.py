"""Activity counts of one run, per node and per inference: the inputs of every energy model.

Counts come from a run's counters (`RunResult`, reference or Lava) plus the graph's weights:

* spikes: non-zero outputs of Input and spiking nodes (LIF, CubaLIF, IF, Threshold).
* synaptic_ops: effective accumulates, each non-zero input times its non-zero fan-out
  (`NodeCounters.synaptic_events`); bias adds are not counted.
* neuron_updates: neurons x steps, for neuron nodes; split into active_neuron_updates (the
  neuron received input, carried state or spiked that step: `NodeCounters.active_neuron_updates`)
  and inactive_neuron_updates (the rest). A run that did not record state (Lava) counts every
  update as active, and the totals say so (active_counted = False).
* neuron_spikes: spikes of neuron nodes (input spikes are not emitted by a neuron).
* dense_macs_per_step: connections of a synaptic node, zero weights and zero inputs included
  (one dense pass); dense_macs = dense_macs_per_step x steps (the SNN run densely, every step);
  ann_macs = dense_macs_per_step summed (the equivalent ANN: one dense pass per inference).
* spike_messages: spikes of nodes that feed other nodes (one routed message per spike).
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.ir import weights
from neurocompile.ir.analysis import connections, fan_out
from neurocompile.ir.graph import (
    LATCHED_TYPES,
    NEURON_TYPES,
    SPIKING_TYPES,
    SYNAPTIC_TYPES,
    successors,
    topological_order,
    type_name,
)
from neurocompile.ir.shapes import infer_shapes
from neurocompile.targets.base import RunResult

# Nodes whose weights count towards connection sparsity (as NeuroBench: Linear and Conv weights).
WEIGHT_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)
COUNT_KEYS = ("spikes", "neuron_spikes", "synaptic_ops", "neuron_updates",
              "active_neuron_updates", "inactive_neuron_updates", "dense_macs",
              "spike_messages")


def _size(shape: tuple[int, ...] | None) -> int:
    return int(np.prod(shape)) if shape else 0


def dense_connections(node: nir.NIRNode, in_shape: tuple[int, ...]) -> int:
    """Connections of a synaptic node counting zero weights: the MACs of one dense pass."""
    return connections(node, in_shape)


def count_activity(graph: nir.NIRGraph, result: RunResult) -> dict[str, Any]:
    """Per-node and total counts of `result` (a run of `graph`), over the run and per inference."""
    missing = sorted(set(graph.nodes) - set(result.counters))
    if missing:
        raise InputDataError(f"run counters have no entry for node(s) {missing}; "
                             "was the run made on this graph?")
    in_shapes, out_shapes, _ = infer_shapes(graph)
    succs = successors(graph)
    steps, batch = int(result.steps), int(result.batch)
    samples = max(batch, 1)
    nodes: dict[str, dict[str, Any]] = {}
    unrecorded: list[str] = []
    try:  # report nodes in data-flow order
        order = topological_order(graph)
    except ValueError:  # recurrent: cut the cycles at neurons and delays
        order = topological_order(graph, cut=LATCHED_TYPES)
    for name in order:
        node = graph.nodes[name]
        c = result.counters[name]
        entry: dict[str, Any] = {"type": type_name(node), "role": _role(node)}
        neurons = _size(out_shapes.get(name)) if isinstance(
            node, NEURON_TYPES + SPIKING_TYPES + (nir.Input,)) else 0
        entry["neurons"] = neurons
        updates = int(c.neuron_updates)
        active = updates if c.active_neuron_updates is None else int(c.active_neuron_updates)
        if updates and c.active_neuron_updates is None:
            unrecorded.append(name)
        run = {"spikes": int(c.spikes),
               "neuron_spikes": int(c.spikes) if _role(node) == "neuron" else 0,
               "synaptic_ops": int(c.synaptic_events), "neuron_updates": updates,
               "active_neuron_updates": active, "inactive_neuron_updates": updates - active}
        dense = 0
        if isinstance(node, SYNAPTIC_TYPES):
            dense = dense_connections(node, in_shapes[name])
        run["dense_macs"] = dense * steps * samples
        feeds = any(not isinstance(graph.nodes[s], nir.Output) for s in succs[name])
        run["spike_messages"] = int(c.spikes) if feeds else 0
        if isinstance(node, WEIGHT_TYPES):
            entry["weights"] = weights.entries(node.weight)
            entry["nonzero_weights"] = weights.nonzero(node.weight)
            entry["connection_sparsity"] = 1.0 - entry["nonzero_weights"] / max(
                1, entry["weights"])
        if isinstance(node, SYNAPTIC_TYPES):
            entry["connections"] = dense
            entry["nonzero_connections"] = int(fan_out(node, in_shapes[name]).sum())
            entry["fan_in"] = _size(in_shapes[name])
        if isinstance(node, SPIKING_TYPES) or isinstance(node, nir.Input):
            slots = neurons * steps * batch
            entry["spike_rate"] = run["spikes"] / slots if slots else 0.0
            if isinstance(node, SPIKING_TYPES):
                entry["activation_sparsity"] = 1.0 - entry["spike_rate"]
        entry["run"] = run
        entry["per_inference"] = {k: v / samples for k, v in run.items()}
        entry["per_inference"]["dense_macs_per_step"] = float(dense)
        entry["per_inference"]["ann_macs"] = float(dense)
        nodes[name] = entry
    totals = _totals(nodes, steps, batch)
    totals["active_counted"] = not unrecorded
    if unrecorded:
        totals["active_not_counted"] = unrecorded
    return {"steps": steps, "batch": batch, "nodes": nodes, "totals": totals}


def _role(node: nir.NIRNode) -> str:
    if isinstance(node, nir.Input):
        return "input"
    if isinstance(node, nir.Output):
        return "output"
    if isinstance(node, NEURON_TYPES):
        return "neuron"
    if isinstance(node, SYNAPTIC_TYPES):
        return "synapse"
    if isinstance(node, SPIKING_TYPES):
        return "neuron"
    return "other"


def _totals(nodes: dict[str, dict[str, Any]], steps: int, batch: int) -> dict[str, Any]:
    samples = max(batch, 1)
    run = {k: sum(n["run"][k] for n in nodes.values()) for k in COUNT_KEYS}
    input_spikes = sum(n["run"]["spikes"] for n in nodes.values() if n["role"] == "input")
    run["input_spikes"] = input_spikes
    run["spikes"] -= input_spikes  # network spikes; input spikes are reported on their own
    per_inf = {k: v / samples for k, v in run.items()}
    ann_macs = sum(n.get("connections", 0) for n in nodes.values())
    per_inf["dense_macs_per_step"] = float(ann_macs)
    per_inf["ann_macs"] = float(ann_macs)
    spiking = [n for n in nodes.values() if "activation_sparsity" in n]
    slots = sum(n["neurons"] for n in spiking) * steps * batch
    fired = sum(n["run"]["spikes"] for n in spiking)
    weights = sum(n.get("weights", 0) for n in nodes.values())
    nonzero = sum(n.get("nonzero_weights", 0) for n in nodes.values())
    return {
        "run": run,
        "per_inference": per_inf,
        "neurons": sum(n["neurons"] for n in nodes.values() if n["role"] == "neuron"),
        "weights": weights,
        "nonzero_weights": nonzero,
        "activation_sparsity": (1.0 - fired / slots) if slots else None,
        "connection_sparsity": (1.0 - nonzero / weights) if weights else None,
        "effective_to_dense": (run["synaptic_ops"] / run["dense_macs"]) if run["dense_macs"] else None,
    }


__all__ = ["COUNT_KEYS", "WEIGHT_TYPES", "count_activity", "dense_connections"]
