"""Cross-check any target against the reference simulator on the same graph and inputs."""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from neurocompile.targets import get_target
from neurocompile.targets.base import RunResult


def predictions(result: RunResult, output: str) -> np.ndarray:
    """Class per sample: argmax over neurons of the output summed over time."""
    y = result.outputs[output]
    return y.reshape(y.shape[0], y.shape[1], -1).sum(axis=1).argmax(axis=1)


def crosscheck(graph: nir.NIRGraph, target: str, inputs: dict[str, np.ndarray] | np.ndarray,
               steps: int | None = None, options: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Run `graph` on `target` and on the reference with the same semantic options.

    Returns per Output node the samples whose outputs are identical, the largest absolute
    difference and the class agreement, plus whether the counter totals are equal, and both
    RunResults (keys 'result', 'reference').
    """
    backend = get_target(target)
    opts = backend.options(options)
    got = backend.run(backend.compile(graph, opts), inputs, steps)
    ref_target = get_target("reference")
    ref_opts = {k: getattr(opts, k) for k in opts.SEMANTIC}
    ref = ref_target.run(ref_target.compile(graph, ref_opts), inputs, steps)
    outputs = {}
    for name, y_ref in ref.outputs.items():
        y = got.outputs[name]
        same = [bool(np.array_equal(y[i], y_ref[i])) for i in range(y_ref.shape[0])]
        outputs[name] = {
            "samples": len(same),
            "samples_identical": int(sum(same)),
            "all_identical": all(same),
            "max_abs_difference": float(np.max(np.abs(y - y_ref), initial=0.0)),
            "class_agreement": float(np.mean(predictions(got, name) == predictions(ref, name))),
        }
    totals = {k: (got.total(k), ref.total(k)) for k in ("spikes", "synaptic_events",
                                                         "neuron_updates")}
    return {"target": target, "outputs": outputs,
            "counter_totals_equal": all(a == b for a, b in totals.values()),
            "totals": {k: {"target": a, "reference": b} for k, (a, b) in totals.items()},
            "result": got, "reference": ref}
