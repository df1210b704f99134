"""Sinabs 3.1 (sinabs.nir.to_nir).

Sinabs has no time unit: tau_mem is in steps and the decay is exponential,
v = exp(-1/tau) * v + (1 - exp(-1/tau)) * x for LIF (norm_input=True, its default) and
v = exp(-1/tau) * v + x for ExpLeak (norm_input=False). The export writes LIF/LI with that tau
and r = 1, and IAF as IF (r = 1). It writes neither the reset nor the spike function; Sinabs'
defaults for IAF and LIF are MembraneSubtract and MultiSpike (floor(v / threshold) spikes where
v > 0). Its Input and Output nodes carry the sample's time axis, (T, n) for n neurons: read as
(n,). The profile rewrites tau so that the Euler decay 1 - dt/tau is exp(-1/tau_steps)
(LI also gets r = 1/dv for its unscaled input), sets reset "subtract" and spikes "multi" on
every spiking node, and dt = --dt (default 1 ms per Sinabs step). A model trained with
SingleSpike spikes at v >= threshold, where the contract spikes at v > threshold: pass
--from sinabs-single for one spike per step (the tie v = threshold is then a named difference).
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.interop import common
from neurocompile.interop.layout import squeeze_io

NAME = "sinabs"
STEP_DT = 1e-3  # seconds per Sinabs step, used where --dt is not given (Sinabs has no unit)
LAYOUT = "btf"  # Sinabs layers take (batch, time, ...)


def apply(graph: nir.NIRGraph, dt: float | None, spikes: str = "multi") -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring)."""
    dt = STEP_DT if dt is None else float(dt)
    out, _ = squeeze_io(common.copy_graph(graph), leading=True)  # Input (T, n) for (n,)
    for name, node in list(common.neurons(out, nir.LIF, nir.LI)):
        keep = np.exp(-1.0 / common.f64(node.tau))
        tau = common.keep_tau(keep, dt)
        if isinstance(node, nir.LIF):
            common.replace(out, name, tau=tau)
        else:  # ExpLeak: input added unscaled
            common.replace(out, name, tau=tau, r=tau / dt)
    common.set_rules(out, reset="subtract", spikes=spikes)
    common.record(out, NAME if spikes == "multi" else f"{NAME}-single", dt, LAYOUT, {
        "tau": "tau in steps, exponential decay: tau = dt / (1 - exp(-1/tau_steps)); "
               "LI: r = tau/dt (ExpLeak adds its input unscaled)",
        "reset": "subtract (MembraneSubtract, Sinabs' default)",
        "spikes": ("multi: floor(v / threshold) where v > 0 (MultiSpike, Sinabs' default)"
                   if spikes == "multi" else "single (SingleSpike spikes at v >= threshold; "
                   "here v > threshold)"),
        "delay": "Sinabs applies a layer in the step it receives; here one step per "
                 "connection into a neuron: output k steps later for k neuron layers",
        "w_in": "not used (no CubaLIF export)"})
    return out


def apply_single(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """As `apply`, for models trained with spike_fn=SingleSpike (one spike per step)."""
    return apply(graph, dt, spikes="single")


def looks_like(graph: nir.NIRGraph) -> str | None:
    """Why the graph looks like Sinabs' export (LIF/LI taus of a second or more, r = 1)."""
    if "dt" in (graph.metadata or {}):
        return None
    for _, node in common.neurons(graph, nir.LIF, nir.LI):
        if common.all_equal(node, "r", 1.0) and float(np.min(common.f64(node.tau))) >= 1.0:
            return "time constants of 1 s or more with r = 1, as Sinabs writes tau in steps"
    return None
