"""Rockpool (rockpool.nn.modules.torch.nir.to_nir; LIFTorch, ExpSynTorch, LinearTorch).

Rockpool decays exponentially, isyn <- exp(-dt/tau_syn) isyn + x, v <- exp(-dt/tau_mem) v +
isyn, emits floor(v / threshold) spikes and subtracts them, and writes CubaLIF with taus in
seconds, r = tau_mem * exp(-dt/tau_mem) / dt and no w_in; ExpSynTorch as LI with
r = tau * exp(-dt/tau) / dt. No dt is stored, but r fixes it: exp(-y) / y = r * 1 for
y = dt / tau, solved here per neuron. Output nodes come as (1, 1, n) for n neurons (tolerated
as singleton dimensions). The profile sets the Euler taus whose decay is exp(-dt/tau), unit
input gains (r = 1/dv, w_in = 1/du), reset "subtract", spikes "multi", and dt (--dt, else the
one r gives). Not checked against Rockpool's own simulation here: Rockpool is not installed in
the test environment (docs/interop.md).
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.interop import common

NAME = "rockpool"
LAYOUT = "btf"  # Rockpool evolves (batch, time, channels)
NOTE = "the rockpool profile follows Rockpool's export code; it is not tested against Rockpool"


def dt_from_r(r: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """dt with r = tau * exp(-dt/tau) / dt, per element (bisection on y = dt/tau in (0, 50))."""
    r, tau = common.f64(r), common.f64(tau)
    lo, hi = np.full(r.shape, 1e-12), np.full(r.shape, 50.0)
    for _ in range(200):  # exp(-y) / y falls monotonically in y
        mid = 0.5 * (lo + hi)
        big = np.exp(-mid) / mid > r
        lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
    return 0.5 * (lo + hi) * tau


def _graph_dt(graph: nir.NIRGraph) -> float:
    dts = [dt_from_r(node.r, node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau)
           for _, node in common.neurons(graph, nir.CubaLIF, nir.LI)]
    if not dts:
        raise UnsupportedError("no CubaLIF or LI node to read Rockpool's dt from: pass --dt")
    flat = np.concatenate([d.reshape(-1) for d in dts])
    if not np.allclose(flat, flat[0], rtol=1e-4):
        raise UnsupportedError(f"Rockpool's r gives different time steps ({flat.min():g} to "
                               f"{flat.max():g} s): pass --dt")
    return float(np.median(flat))


def apply(graph: nir.NIRGraph, dt: float | None) -> nir.NIRGraph:
    """The graph in the contract's terms (see the module docstring)."""
    dt = _graph_dt(graph) if dt is None else float(dt)
    out = common.copy_graph(graph)
    for name, node in list(common.neurons(out)):
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            tau_m = common.keep_tau(np.exp(-dt / common.f64(node.tau_mem)), dt)
            tau_s = common.keep_tau(np.exp(-dt / common.f64(node.tau_syn)), dt)
            common.replace(out, name, tau_mem=tau_m, tau_syn=tau_s, r=tau_m / dt,
                           w_in=tau_s / dt)
        elif isinstance(node, (nir.LIF, nir.LI)):
            tau = common.keep_tau(np.exp(-dt / common.f64(node.tau)), dt)
            common.replace(out, name, tau=tau, r=tau / dt)
    common.set_rules(out, reset="subtract", spikes="multi")
    common.record(out, NAME, dt, LAYOUT, {
        "tau": "exponential decay: tau = dt / (1 - exp(-dt/tau)); r = 1/dv, w_in = 1/du",
        "reset": "subtract", "spikes": "multi: floor(v / threshold) where v > 0",
        "delay": "as Rockpool's modules in sequence: not verified here",
        "w_in": "set to 1/du (Rockpool adds its input to isyn unscaled)"})
    return out


def looks_like(graph: nir.NIRGraph) -> str | None:
    """Why the graph looks like Rockpool's export (r = tau exp(-dt/tau) / dt for one dt)."""
    if "dt" in (graph.metadata or {}):
        return None
    for _, node in common.neurons(graph, nir.CubaLIF):
        r = common.f64(node.r)
        if r.size and np.all(r > 1) and common.all_equal(node, "w_in", 1.0):
            try:
                _graph_dt(graph)
            except UnsupportedError:
                return None
            return "r = tau exp(-dt/tau) / dt with w_in = 1, as Rockpool writes"
    return None
