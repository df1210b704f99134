"""Norse 1.1 (norse.torch.utils.export_nir.to_nir(module, sample, dt=0.001)).

Norse writes tau = dt / tau_inv (tau_mem and tau_syn of LIFCell as CubaLIF, tau of LIFBoxCell
and LIBoxCell), i.e. dt times the true time constant 1 / tau_inv; with the 1 ms default the
taus in the file are 1000 times too small. It writes CubaLIF without w_in (so w_in = 1), but
LIFCell adds its input to the current unscaled: i += x; v += dt * tau_mem_inv * (v_leak - v + i),
which is the contract's CubaLIF with gain dv, i.e. du * w_in = 1. The Input and Output nodes
carry the sample's batch dimension, (1, n) (tolerated as singleton dimensions). The profile
sets tau = tau_file / dt, w_in = tau_syn / dt where the file has w_in = 1, and dt = the export
dt (--dt, default 1 ms). IAFCell exports as IF (r = 1): unchanged. Reset: to v_reset, which the
export does not write (Norse's default 0): "zero".
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.interop import common

NAME = "norse"
EXPORT_DT = 1e-3  # to_nir's default dt
LAYOUT = "tbf"  # Norse steps over dim 0: (time, batch, features)


def apply(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring)."""
    dt = EXPORT_DT if dt is None else float(dt)
    out = common.copy_graph(graph)
    added_w_in = []
    for name, node in list(common.neurons(out)):
        if isinstance(node, (nir.LIF, nir.LI)):
            common.replace(out, name, tau=common.f64(node.tau) / dt)
        elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            tau_syn = common.f64(node.tau_syn) / dt
            params = {"tau_mem": common.f64(node.tau_mem) / dt, "tau_syn": tau_syn}
            if common.all_equal(node, "w_in", 1.0):
                params["w_in"] = tau_syn / dt
                added_w_in.append(name)
            common.replace(out, name, **params)
    common.set_rules(out, reset="zero")
    common.record(out, NAME, dt, LAYOUT, {
        "tau": "tau = tau_file / dt (Norse writes dt / tau_inv)",
        "w_in": (f"w_in = tau_syn / dt on {', '.join(added_w_in)} (LIFCell adds its input "
                 "unscaled; the export writes none)") if added_w_in else "as written",
        "reset": "zero (v_reset is not exported; Norse's default is 0)",
        "delay": "Norse applies a layer in the step it receives; here one step per "
                 "connection into a neuron: output k steps later for k neuron layers"})
    return out


def looks_like(graph: nir.NIRGraph) -> str | None:
    """Why the graph looks like Norse's export (taus below 0.1 ms with r = 1), or None."""
    for _, node in common.neurons(graph):
        taus = [getattr(node, p) for p in ("tau", "tau_mem", "tau_syn") if hasattr(node, p)]
        if taus and common.all_equal(node, "r", 1.0) and \
                min(float(np.min(common.f64(t))) for t in taus) < 1e-4:
            what = " and w_in = 1" if common.all_equal(node, "w_in", 1.0) else ""
            return (f"time constants below 0.1 ms with r = 1{what}, as Norse writes "
                    "tau = dt / tau_inv")
    return None
