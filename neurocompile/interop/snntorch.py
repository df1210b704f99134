"""snnTorch 1.0.0 (snntorch.export_nir.export_to_nir).

The exporter hard-codes dt = 1e-4 s, in float32, and writes Leaky as LIF with
tau = dt / (1 - beta), r = tau / dt, and Synaptic as CubaLIF with tau_syn = dt / (1 - alpha),
w_in = tau_syn / dt: Euler-exact at that dt (keep = beta, alpha; gain 1). It writes no dt and
no reset rule (v_reset = 0 for every reset_mechanism). The profile sets dt = float32(1e-4), the
value the file was computed with. snnTorch resets in the step after a spike (reset_delay):
its "subtract" (the default) subtracts the threshold undecayed after that step's update, which
is the semantics' "subtract_next"; its "zero" is Leaky's reset to zero at the end of the spike
step ("zero") but, for Synaptic, RLeaky and RSynaptic, zeroes the whole next step
("zero_next"). The file cannot say which reset_mechanism was used: `--from snntorch` takes
snnTorch's default, `--from snntorch-zero` the other (Synaptic = CubaLIF; RLeaky = a LIF in
a cycle).
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.interop import common

NAME = "snntorch"
EXPORT_DT = float(np.float32(1e-4))  # snntorch/export_nir.py: dt = 1e-4, float32 tensors
LAYOUT = "tbf"  # snnTorch steps over dim 0 of its data: (time, batch, features)
NOTE = ("snnTorch does not export reset_mechanism: --from snntorch reads snnTorch's default "
        "'subtract'; for reset_mechanism='zero' pass --from snntorch-zero")


def _in_cycle(graph: nir.NIRGraph, name: str) -> bool:
    """Whether some path leads from node `name` back to itself (RLeaky's recurrent Linear)."""
    succs: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        succs.setdefault(src, []).append(dst)
    seen, todo = set(), list(succs.get(name, []))
    while todo:
        n = todo.pop()
        if n == name:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(succs.get(n, []))
    return False


def apply_zero(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """As `apply`, for models trained with reset_mechanism="zero"."""
    return apply(graph, dt, reset="zero")


def apply(graph: nir.NIRGraph, dt: float | None, reset: str = "subtract") -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring)."""
    if dt is not None and abs(dt - EXPORT_DT) > 1e-6 * EXPORT_DT:
        raise UnsupportedError(
            f"snnTorch's exporter encodes beta and alpha at dt = 1e-4 s; --dt {dt:g} would "
            "change them: leave --dt out with --from snntorch")
    out = common.copy_graph(graph)
    if reset == "subtract":
        common.set_rules(out, reset="subtract_next")
    else:
        for name, node in list(common.neurons(out, nir.LIF, nir.CubaLIF, nir.IF)):
            whole_step = isinstance(node, nir.CubaLIF) or _in_cycle(out, name)
            common.replace(out, name, {common.RESET_KEY: "zero_next" if whole_step else "zero"})
    common.record(out, NAME if reset == "subtract" else f"{NAME}-zero", EXPORT_DT, LAYOUT, {
        "tau": "tau = dt/(1-beta), r = tau/dt (Leaky); tau_syn = dt/(1-alpha), "
               "w_in = tau_syn/dt (Synaptic): Euler-exact at dt = 1e-4",
        "reset": ("subtract_next (reset_mechanism='subtract', snnTorch's default; not "
                  "exported)" if reset == "subtract" else "reset_mechanism='zero' (not "
                  "exported): zero for Leaky, zero_next for Synaptic, RLeaky, RSynaptic"),
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
