"""Compare a graph with a transformed version of it on the same inputs.

Both run on the reference simulator (the transformed one in fixed-point mode when it is
Loihi-quantized, unless told otherwise). Per Output node: spike-for-spike agreement (the
fraction of (sample, step, neuron) entries that are equal; spiking outputs), the largest
absolute difference (non-spiking readouts, in float units: a fixed-point readout is divided
by its population's "loihi.state_scale"), and classification agreement: the fraction of
samples whose predicted class (argmax over neurons of the output summed over time: spike
counts, or the integrated readout) is the same, plus accuracies when labels are given.
Activity: total spikes and synaptic events (RunResult counters) of both runs, per node and
in total, and their relative change.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.ir.graph import NEURON_TYPES, SPIKING_TYPES, predecessors
from neurocompile.semantics import loihi
from neurocompile.targets.reference import simulate


def _output_info(graph: nir.NIRGraph, name: str) -> tuple[bool, float]:
    """(spiking, state scale to divide by in fixed-point mode) of an Output's source."""
    preds = predecessors(graph)[name]
    src = graph.nodes[preds[0]] if len(preds) == 1 else None
    spiking = src is not None and isinstance(src, SPIKING_TYPES)
    scale = 1.0
    if src is not None and isinstance(src, NEURON_TYPES) and not spiking and \
            loihi.is_quantized(graph):
        scale = loihi.read_neuron(preds[0], src).state_scale
    return spiking, scale


def _change(before: int, after: int) -> float | None:
    return None if before == 0 else (after - before) / before


def compare(reference: nir.NIRGraph, transformed: nir.NIRGraph,
            inputs: dict[str, np.ndarray] | np.ndarray, steps: int | None = None, *,
            labels: np.ndarray | None = None, fixed_point: bool | None = None
            ) -> dict[str, Any]:
    """Run both graphs on `inputs` and report agreement and activity (JSON-ready dict)."""
    fixed = loihi.is_quantized(transformed) if fixed_point is None else bool(fixed_point)
    a = simulate(reference, inputs, steps)
    b = simulate(transformed, inputs, steps, fixed_point=fixed)
    outputs: dict[str, Any] = {}
    for name, ya in a.outputs.items():
        if name not in b.outputs:
            raise InputDataError(f"Output {name!r} is missing from the transformed graph")
        yb = b.outputs[name]
        spiking, scale = _output_info(transformed, name)
        if fixed and not spiking:
            yb = yb / scale
        entry: dict[str, Any] = {"spiking": spiking, "shape_reference": list(ya.shape),
                                 "shape_transformed": list(yb.shape)}
        if ya.shape == yb.shape:
            entry["identical"] = bool(np.array_equal(ya, yb))
            entry["spike_agreement" if spiking else "value_agreement"] = float(np.mean(ya == yb))
            if not spiking:
                entry["max_abs_diff"] = float(np.max(np.abs(ya - yb), initial=0.0))
            pa = ya.reshape(ya.shape[0], ya.shape[1], -1).sum(axis=1).argmax(axis=1)
            pb = yb.reshape(yb.shape[0], yb.shape[1], -1).sum(axis=1).argmax(axis=1)
            entry["class_agreement"] = float(np.mean(pa == pb))
            if labels is not None:
                lab = np.asarray(labels).reshape(-1)
                if lab.shape[0] != pa.shape[0]:
                    raise InputDataError(f"labels: {lab.shape[0]} labels for {pa.shape[0]} samples")
                entry["accuracy_reference"] = float(np.mean(pa == lab))
                entry["accuracy_transformed"] = float(np.mean(pb == lab))
        outputs[name] = entry
    totals = {}
    for key in ("spikes", "synaptic_events"):
        before, after = a.total(key), b.total(key)
        totals[key] = {"reference": before, "transformed": after,
                       "relative_change": _change(before, after)}
    nodes = {}
    for name, c in a.counters.items():
        if c.synaptic_events or c.spikes:
            d = b.counters.get(name)
            nodes[name] = {"spikes": [c.spikes, d.spikes if d else 0],
                           "synaptic_events": [c.synaptic_events, d.synaptic_events if d else 0]}
    return {"fixed_point": fixed, "steps": a.steps, "batch": a.batch, "outputs": outputs,
            "totals": totals, "nodes": nodes}
