"""The one mapping from NIR's continuous-time parameters to per-step parameters.

Every backend and the torch models use these formulas (docs/semantics.md). Per step, for a
neuron population with input I[t] (the sum of its incoming edges, one step late):

    u[t] = u[t-1] * (1 - du) + gain * I[t]      # synaptic current
    v[t] = v[t-1] * (1 - dv) + u[t] + bias      # membrane
    s[t] = v[t] > v_th                          # spike (spiking neurons only)
    v[t] = 0 where s[t]                         # reset to zero

Forward-Euler discretisation with step dt of NIR's equations gives (all elementwise):

    LIF     (tau, r, v_leak, v_th):                 du = 1, dv = dt/tau, gain = dv*r,  bias = dv*v_leak
    CubaLIF (tau_syn, tau_mem, r, v_leak, v_th, w_in):
            du = dt/tau_syn, dv = dt/tau_mem, gain = (dv*r) * (du*w_in), bias = dv*v_leak
    IF      (r, v_th):                              du = 1, dv = 0,  gain = r,  bias = 0
    LI      (tau, r, v_leak):                       as LIF without threshold
    CubaLI  (tau_syn, tau_mem, r, v_leak, w_in):    as CubaLIF without threshold

IF has no time constant; its gain is r per step (the discrete integrate-and-fire of Sinabs,
snnTorch and Lava). For CubaLIF, u is the synaptic current already scaled by dv*r, so that
v's update is a plain sum, as in Lava's LIF process. Parameters are computed in float64 in
the order written above; a backend working in float32 casts the results.

Delay nodes shift by round(delay / dt) steps (at least one step).
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurocompile.errors import UnsupportedError

DEFAULT_DT = 1e-3  # seconds; used when neither the caller nor graph.metadata["dt"] gives one


@dataclass(frozen=True)
class NeuronStep:
    """Per-step parameters of one neuron population (arrays of the population's shape)."""

    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    v_threshold: np.ndarray | None  # None: non-spiking (LI, CubaLI); v is the output

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None


def graph_dt(graph: nir.NIRGraph, dt: float | None = None) -> float:
    """The time step: the caller's, else graph.metadata['dt'], else DEFAULT_DT."""
    if dt is None:
        meta = getattr(graph, "metadata", None) or {}
        dt = float(np.asarray(meta["dt"]).reshape(-1)[0]) if "dt" in meta else DEFAULT_DT
    if not (dt > 0 and np.isfinite(dt)):
        raise UnsupportedError(f"time step dt must be a positive number, got {dt}")
    return float(dt)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_reset(name: str, node) -> None:
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(_f64(v_reset) != 0):
        raise UnsupportedError(
            f"node {name!r}: v_reset must be 0 (the semantics reset to zero), "
            f"got values in [{np.min(v_reset)}, {np.max(v_reset)}]")


def _check_stable(name: str, param: str, tau: np.ndarray, dt: float) -> None:
    """dt/tau above 1 would make the Euler decay factor negative: refuse, naming the fix."""
    ratio = dt / np.min(tau)
    if ratio > 1 + 1e-9:
        raise UnsupportedError(
            f"node {name!r}: dt/{param} = {ratio:.3g} > 1 at dt={dt:g} (smallest {param} "
            f"{np.min(tau):g}); the graph was made for a smaller time step: pass it with --dt "
            f"or set graph.metadata['dt'] (snnTorch's NIR export assumes dt = 1e-4)")


def neuron_step(name: str, node: nir.NIRNode, dt: float) -> NeuronStep:
    """Discretise one NIR neuron node (see the module docstring for the formulas)."""
    _check_reset(name, node)
    for param in ("tau", "tau_mem", "tau_syn"):
        if getattr(node, param, None) is not None and not isinstance(node, nir.IF):
            _check_stable(name, param, _f64(getattr(node, param)), dt)
    if isinstance(node, (nir.LIF, nir.LI)):
        tau, r, v_leak = _f64(node.tau), _f64(node.r), _f64(node.v_leak)
        dv = dt / tau
        du = np.ones_like(dv)
        gain, bias = dv * r, dv * v_leak
        vth = _f64(node.v_threshold) if isinstance(node, nir.LIF) else None
        return NeuronStep(du, dv, gain, bias, vth)
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        tau_syn, tau_mem = _f64(node.tau_syn), _f64(node.tau_mem)
        r, v_leak = _f64(node.r), _f64(node.v_leak)
        w_in = np.broadcast_to(_f64(node.w_in), tau_mem.shape)
        du, dv = dt / tau_syn, dt / tau_mem
        gain = (dv * r) * (du * w_in)
        bias = dv * v_leak
        vth = _f64(node.v_threshold) if isinstance(node, nir.CubaLIF) else None
        return NeuronStep(du, dv, gain, bias, vth)
    if isinstance(node, nir.IF):
        r = _f64(node.r)
        return NeuronStep(np.ones_like(r), np.zeros_like(r), r, np.zeros_like(r),
                          _f64(node.v_threshold))
    raise UnsupportedError(f"node {name!r}: {type(node).__name__} is not a neuron node")


def dt_fallback_warning(graph: nir.NIRGraph, dt: float | None) -> str | None:
    """A warning when neither the caller nor the graph gives dt and DEFAULT_DT is used."""
    meta = getattr(graph, "metadata", None) or {}
    if dt is None and "dt" not in meta:
        return (f"the graph stores no time step (metadata 'dt') and none was given: using "
                f"dt = {DEFAULT_DT:g} s; pass --dt with the exporter's time step")
    return None


def delay_steps(name: str, node: nir.Delay, dt: float) -> np.ndarray:
    """Integer delay in steps per element, round(delay / dt); must be at least 1."""
    steps = np.rint(_f64(node.delay) / dt).astype(np.int64)
    if steps.size and steps.min() < 1:
        raise UnsupportedError(
            f"node {name!r}: Delay must be at least one step (dt={dt}); "
            f"smallest delay is {float(np.min(node.delay))}")
    return steps


def from_discrete(kind: str, *, du=None, dv, gain=None, bias=0.0, v_threshold=None,
                  dt: float = DEFAULT_DT) -> nir.NIRNode:
    """Inverse mapping: build the NIR node whose discretisation is (du, dv, gain, bias, v_th).

    Used by exporters; with gain omitted the NIR node gets r = 1/dv (gain 1 up to rounding).
    kind is one of 'LIF', 'CubaLIF', 'LI', 'CubaLI'.
    """
    dv = _f64(dv)
    tau_mem = dt / dv
    r = 1.0 / dv if gain is None else _f64(gain) / dv
    v_leak = _f64(bias) / dv * np.ones_like(dv)
    if kind == "LIF":
        return nir.LIF(tau=tau_mem, r=r, v_leak=v_leak, v_threshold=_f64(v_threshold) * np.ones_like(dv))
    if kind == "LI":
        return nir.LI(tau=tau_mem, r=r, v_leak=v_leak)
    du = _f64(du) * np.ones_like(dv)
    tau_syn = dt / du
    w_in = 1.0 / du
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                           v_threshold=_f64(v_threshold) * np.ones_like(dv), w_in=w_in)
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, w_in=w_in)
    raise ValueError(f"unknown neuron kind {kind!r}")
