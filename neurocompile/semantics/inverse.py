"""Per-step parameters back to NIR: the neuron node whose discretisation is what a caller wants.

The inverse of `neurocompile.semantics.float.discretise`, written once. Each time constant is
given either as itself (tau_mem, tau_syn) or as its per-step fraction (dv = dt/tau_mem,
du = dt/tau_syn); r, w_in and v_leak are then chosen so that the node's discretisation has the
requested gain and bias:

    LIF/LI:        r = gain / dv,  v_leak = bias / dv
    CubaLIF/LI:    w_in = 1 / du unless given (so du * w_in = 1), r = gain / (dv * du * w_in)
    IF:            r = gain (no time constant; bias must be 0)

(with dv = dt / tau_mem where tau_mem is given). Used by quantization (the float model of a
quantized graph), ADMM's export, LNP's random networks and the torch model builders.
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.semantics.float import SPIKING_KINDS


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _fraction(dt: float, tau, frac, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(tau, dt/tau) from whichever of the two is given."""
    if (tau is None) == (frac is None):
        raise UnsupportedError(f"give exactly one of tau_{what} and d{what[0]}")
    if tau is not None:
        tau = _f64(tau)
        return tau, dt / tau
    frac = _f64(frac)
    return dt / frac, frac


def neuron_node(kind: str, *, dt: float, n: int | None = None, tau_mem=None, dv=None,
                tau_syn=None, du=None, gain=1.0, bias=0.0, v_threshold=None, w_in=None
                ) -> nir.NIRNode:
    """The NIR node of `kind` ('LIF', 'CubaLIF', 'IF', 'LI', 'CubaLI') with these per-step
    parameters; arrays broadcast to the population (n neurons, or the parameters' shape)."""
    spiking = kind in SPIKING_KINDS
    if spiking and v_threshold is None:
        raise UnsupportedError(f"{kind} needs v_threshold")
    shapes = [np.shape(x) for x in (tau_mem, dv, tau_syn, du, gain, bias, v_threshold, w_in)
              if x is not None]
    shape = (int(n),) if n is not None else np.broadcast_shapes(*shapes)
    full = np.ones(shape)
    gain = _f64(gain) * full
    vth = None if v_threshold is None else _f64(v_threshold) * full
    if kind == "IF":
        if np.any(_f64(bias) != 0):
            raise UnsupportedError("IF has no bias; give bias 0")
        return nir.IF(r=gain, v_threshold=vth)
    tau_m, f_v = _fraction(dt, tau_mem, dv, "mem")
    tau_m, f_v = tau_m * full, f_v * full
    v_leak = _f64(bias) * full / f_v
    if kind in ("LIF", "LI"):
        r = gain / f_v
        if kind == "LIF":
            return nir.LIF(tau=tau_m, r=r, v_leak=v_leak, v_threshold=vth)
        return nir.LI(tau=tau_m, r=r, v_leak=v_leak)
    if kind in ("CubaLIF", "CubaLI"):
        tau_s, f_u = _fraction(dt, tau_syn, du, "syn")
        tau_s, f_u = tau_s * full, f_u * full
        w = 1.0 / f_u if w_in is None else _f64(w_in) * full
        if np.any(w == 0):
            raise UnsupportedError("w_in has zeros; the population would get no input")
        r = gain / (f_v * f_u * w)
        if kind == "CubaLIF":
            return nir.CubaLIF(tau_syn=tau_s, tau_mem=tau_m, r=r, v_leak=v_leak,
                               v_threshold=vth, w_in=w)
        return nir.CubaLI(tau_syn=tau_s, tau_mem=tau_m, r=r, v_leak=v_leak, w_in=w)
    raise UnsupportedError(f"unknown neuron kind {kind!r}")
