"""snnTorch 1.0.0 (snntorch.export_nir.export_to_nir).

The exporter hard-codes dt = 1e-4 s, in float32, and writes Leaky as LIF with
tau = dt / (1 - beta), r = tau / dt, and Synaptic as CubaLIF with tau_syn = dt / (1 - alpha),
w_in = tau_syn / dt: Euler-exact at that dt (keep = beta, alpha; gain 1). It writes no dt and
no reset rule (v_reset = 0 for every reset_mechanism). The profile sets dt = float32(1e-4), the
value the file was computed with. snnTorch's "subtract" (its default) subtracts the threshold
undecayed at the start of the next step, and Synaptic/RLeaky "zero" zero the whole next step;
neither is one of the semantics' rules, so the profile keeps reset "zero", which is
snnTorch's Leaky(reset_mechanism="zero") exactly (docs/interop.md names the rest).
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.interop import common

NAME = "snntorch"
EXPORT_DT = float(np.float32(1e-4))  # snntorch/export_nir.py: dt = 1e-4, float32 tensors
LAYOUT = "tbf"  # snnTorch steps over dim 0 of its data: (time, batch, features)
NOTE = ("snnTorch does not export reset_mechanism: read as 'zero', exact for "
        "Leaky(reset_mechanism='zero'); its default 'subtract' and Synaptic/RLeaky 'zero' give "
        "other spikes (docs/interop.md)")


def apply(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring)."""
    if dt is not None and abs(dt - EXPORT_DT) > 1e-6 * EXPORT_DT:
        raise UnsupportedError(
            f"snnTorch's exporter encodes beta and alpha at dt = 1e-4 s; --dt {dt:g} would "
            "change them: leave --dt out with --from snntorch")
    out = common.copy_graph(graph)
    common.set_rules(out, reset="zero")
    common.record(out, NAME, EXPORT_DT, LAYOUT, {
        "tau": "tau = dt/(1-beta), r = tau/dt (Leaky); tau_syn = dt/(1-alpha), "
               "w_in = tau_syn/dt (Synaptic): Euler-exact at dt = 1e-4",
        "reset": "zero; reset_mechanism is not exported (snnTorch 'subtract' and "
                 "Synaptic/RLeaky 'zero' differ: docs/interop.md)",
        "delay": "snnTorch applies a layer in the step it receives; here one step per "
                 "connection into a neuron: output k steps later for k neuron layers",
        "w_in": "written by the exporter"})
    return out


def looks_like(graph: nir.NIRGraph) -> str | None:
    """Why the graph looks like snnTorch's export (r = tau / 1e-4, no dt), or None."""
    if "dt" in (graph.metadata or {}):
        return None
    for _, node in common.neurons(graph, nir.LIF, nir.CubaLIF):
        tau = common.f64(node.tau if isinstance(node, nir.LIF) else node.tau_mem)
        if tau.size and np.allclose(common.f64(node.r) * 1e-4, tau, rtol=1e-5) \
                and common.all_equal(node, "v_leak", 0.0):
            return "r = tau / 1e-4 and no dt stored, as snnTorch's export writes"
    return None
