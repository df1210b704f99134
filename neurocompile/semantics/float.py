"""The float contract: NIR's continuous-time parameters as per-step parameters, and one step.

Per step, for a neuron population with input I[t] (the sum of its incoming edges, one step late):

    u[t] = u[t-1] * (1 - du) + gain * I[t]      # synaptic current
    v[t] = v[t-1] * (1 - dv) + u[t] + bias      # membrane
    s[t] = v[t] > v_th                          # spike (spiking neurons only)
    v[t] = 0 where s[t]                         # reset "zero" (the default), or
    v[t] = v[t] - v_th where s[t]               # reset "subtract"

Forward-Euler discretisation with step dt of NIR's equations gives (all elementwise):

    LIF     (tau, r, v_leak, v_th):                 du = 1, dv = dt/tau, gain = dv*r,  bias = dv*v_leak
    CubaLIF (tau_syn, tau_mem, r, v_leak, v_th, w_in):
            du = dt/tau_syn, dv = dt/tau_mem, gain = (dv*r) * (du*w_in), bias = dv*v_leak
    IF      (r, v_th):                              du = 1, dv = 0,  gain = r,  bias = 0
    LI      (tau, r, v_leak):                       as LIF without threshold
    CubaLI  (tau_syn, tau_mem, r, v_leak, w_in):    as CubaLIF without threshold

`per_step` holds these formulas once; it uses arithmetic only, so the torch models call it on
float64 tensors (their time constants stay differentiable) and get the same values bit for bit.
`step` is the one NumPy implementation of the update; every NumPy simulation calls it (the
reference simulator, ADMM's forward pass, the Lyapunov and noise analyses of LNP). Parameters
are computed in float64 in the order written above; a simulation in float32 casts the results
once (`NeuronParams.prepare`). Delay nodes shift by round(delay / dt) steps (at least one).

The reset rule is node metadata, read by `reset_rule` only: ``node.metadata["reset"]`` is
"zero" (also when absent) or "subtract". NIR itself has only ``v_reset``, a value to reset to,
which must be 0 here; the subtractive rule (Sinabs' MembraneSubtract, Rockpool, snnTorch's
"subtract") has no NIR field, so an import profile or the user records it in this key.
snnTorch resets in the step *after* a spike, after that step's update: "subtract_next" is
v[t] = v[t-1] (1 - dv) + u[t] + bias - v_th * s[t-1] (its "subtract": the threshold is
subtracted undecayed), "zero_next" is v[t] = 0 where s[t-1], input included (its Synaptic and
RLeaky "zero"); v is then not reset in the spike step, and s[t-1] is v[t-1] > v_th, read from
the state, so no extra state is kept.
Likewise ``node.metadata["spikes"]``, read by `spike_rule` only: "single" (absent) or "multi",
graded spikes as Sinabs' MultiSpike and Rockpool emit them: s = floor(v / v_th) where v > 0
(so v = v_th gives one spike, as there), the reset applied s times (subtract s * v_th).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neurocompile.errors import UnsupportedError

DEFAULT_DT = 1e-3  # seconds; used when neither the caller nor graph.metadata["dt"] gives one

# NIR parameter names of each neuron kind, in the NIR constructor's order.
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "LIF": ("tau", "r", "v_leak", "v_threshold"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"),
    "IF": ("r", "v_threshold"),
    "LI": ("tau", "r", "v_leak"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
}
TAU_NAMES = ("tau", "tau_syn", "tau_mem")
SPIKING_KINDS = ("LIF", "CubaLIF", "IF")
RESET_KEY = "reset"                  # node metadata key holding the reset rule
# v = 0 / v = v - v_th where the neuron spiked, at the end of the spike step; the "_next" rules
# apply them in the next step, after its update (snnTorch's reset_delay; see the docstring)
RESET_RULES = ("zero", "subtract", "zero_next", "subtract_next")
NEXT_STEP_RULES = ("zero_next", "subtract_next")
SPIKES_KEY = "spikes"                # node metadata key holding the spike rule
SPIKE_RULES = ("single", "multi")    # s = v > v_th / s = floor(v / v_th) where v > 0 (graded)


def graph_dt(graph: nir.NIRGraph, dt: float | None = None) -> float:
    """The time step: the caller's, else graph.metadata['dt'], else DEFAULT_DT."""
    if dt is None:
        meta = getattr(graph, "metadata", None) or {}
        if "dt" in meta:
            try:
                dt = float(np.asarray(meta["dt"], dtype=np.float64).reshape(-1)[0])
            except (TypeError, ValueError, IndexError):
                raise UnsupportedError(f"graph metadata 'dt' must be a positive number, got "
                                       f"{meta['dt']!r}") from None
        else:
            dt = DEFAULT_DT
    if not (isinstance(dt, (int, float, np.floating, np.integer)) and dt > 0 and np.isfinite(dt)):
        raise UnsupportedError(f"time step dt must be a positive number, got {dt}")
    return float(dt)


def dt_fallback_warning(graph: nir.NIRGraph, dt: float | None) -> str | None:
    """A warning when neither the caller nor the graph gives dt and DEFAULT_DT is used."""
    meta = getattr(graph, "metadata", None) or {}
    if dt is None and "dt" not in meta:
        return (f"the graph stores no time step (metadata 'dt') and none was given: using "
                f"dt = {DEFAULT_DT:g} s; pass --dt with the exporter's time step")
    return None


# -- NIR -> per-step parameters ---------------------------------------------------------------
def per_step(kind: str, params: dict[str, Any], dt: float) -> tuple[Any, Any, Any, Any, Any]:
    """(du, dv, gain, bias, v_threshold or None) of a neuron kind from its NIR parameters.

    `params` holds float64 arrays (NumPy, or torch tensors): only arithmetic is used, in the
    order of the module docstring, so both give the same values.
    """
    def ratio(tau):  # dt / tau as one IEEE division of two arrays (torch's float / tensor is not)
        return (tau * 0 + dt) / tau

    if kind in ("LIF", "LI"):
        dv = ratio(params["tau"])
        du = dv * 0 + 1
        gain, bias = dv * params["r"], dv * params["v_leak"]
    elif kind in ("CubaLIF", "CubaLI"):
        du, dv = ratio(params["tau_syn"]), ratio(params["tau_mem"])
        w_in = params["w_in"] * (dv * 0 + 1)  # broadcast to the population (exact)
        gain = (dv * params["r"]) * (du * w_in)
        bias = dv * params["v_leak"]
    elif kind == "IF":
        r = params["r"]
        du, dv, gain, bias = r * 0 + 1, r * 0, r, r * 0
    else:
        raise UnsupportedError(f"unknown neuron kind {kind!r}; known: {', '.join(PARAM_NAMES)}")
    vth = params["v_threshold"] if kind in SPIKING_KINDS else None
    return du, dv, gain, bias, vth


@dataclass(frozen=True)
class NeuronParams:
    """Per-step parameters of one neuron population (float64 arrays of the population's shape)."""

    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    v_threshold: np.ndarray | None  # None: non-spiking (LI, CubaLI); v is the output
    reset: str = "zero"  # one of RESET_RULES
    spikes: str = "single"  # one of SPIKE_RULES

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.dv.shape)

    def prepare(self, dtype: Any = np.float64) -> Dynamics:
        """The constants of `step` in one dtype, cast once."""
        return Dynamics(self, np.dtype(dtype))


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def reset_rule(name: str, node: nir.NIRNode) -> str:
    """The reset rule of a neuron node: metadata 'reset' ("zero" when absent), checked.

    The one reader of the key. NIR's v_reset must be 0 under either rule (a reset to another
    value has no implementation here); non-spiking kinds accept only "zero".
    """
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(_f64(v_reset) != 0):
        raise UnsupportedError(
            f"node {name!r}: v_reset must be 0 (the semantics reset to zero or subtract the "
            f"threshold), got values in [{np.min(v_reset)}, {np.max(v_reset)}]")
    return _rule(name, node, RESET_KEY, RESET_RULES)


def spike_rule(name: str, node: nir.NIRNode) -> str:
    """The spike rule of a neuron node: metadata 'spikes' ("single" when absent), checked."""
    return _rule(name, node, SPIKES_KEY, SPIKE_RULES)


def _rule(name: str, node: nir.NIRNode, key: str, rules: tuple[str, ...]) -> str:
    """Node metadata `key`, one of `rules` (the first is the default); only spiking kinds may
    choose another than the default."""
    default = rules[0]
    rule = _meta_str((getattr(node, "metadata", None) or {}).get(key, default))
    if rule not in rules:
        raise UnsupportedError(f"node {name!r}: metadata {key!r} must be one of "
                               f"{', '.join(rules)}, got {rule!r}")
    if rule != default and type(node).__name__ not in SPIKING_KINDS:
        raise UnsupportedError(f"node {name!r}: {type(node).__name__} does not spike; its "
                               f"metadata {key!r} must be {default!r} or absent, got {rule!r}")
    return str(rule)


def _meta_str(value: Any) -> Any:
    """A metadata string as read back from HDF5 (str, bytes or a one-element array)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode()
    return str(value) if isinstance(value, np.str_) else value


def _check_stable(name: str, param: str, tau: np.ndarray, dt: float) -> None:
    """dt/tau above 1 would make the Euler decay factor negative: refuse, naming the fix."""
    ratio = dt / np.min(tau)
    if ratio > 1 + 1e-9:
        raise UnsupportedError(
            f"node {name!r}: dt/{param} = {ratio:.3g} > 1 at dt={dt:g} (smallest {param} "
            f"{np.min(tau):g}); the graph was made for a smaller time step: pass it with --dt "
            f"or set graph.metadata['dt']; for another framework's export pass --from "
            f"snntorch|norse|sinabs|rockpool|lava-dl, which supplies its dt (docs/interop.md)")


def discretise(name: str, node: nir.NIRNode, dt: float) -> NeuronParams:
    """Per-step parameters of one NIR neuron node (formulas in the module docstring)."""
    kind = type(node).__name__
    if kind not in PARAM_NAMES:
        raise UnsupportedError(f"node {name!r}: {kind} is not a neuron node")
    reset, spikes = reset_rule(name, node), spike_rule(name, node)
    if reset in NEXT_STEP_RULES and spikes != "single":
        raise UnsupportedError(f"node {name!r}: reset {reset!r} takes one spike per step; "
                               f"got metadata {SPIKES_KEY!r} = {spikes!r}")
    params = {p: _f64(getattr(node, p)) for p in PARAM_NAMES[kind]}
    for p in TAU_NAMES:
        if p in params:
            _check_stable(name, p, params[p], dt)
    du, dv, gain, bias, vth = per_step(kind, params, dt)
    shape = np.broadcast_shapes(*(np.shape(a) for a in (du, dv, gain, bias)))
    full = [np.broadcast_to(a, shape).astype(np.float64) for a in (du, dv, gain, bias)]
    vth = None if vth is None else np.broadcast_to(vth, shape).astype(np.float64)
    return NeuronParams(*full, vth, reset, spikes)


def delay_steps(name: str, node: nir.Delay, dt: float) -> np.ndarray:
    """Integer delay in steps per element, round(delay / dt); must be at least 1."""
    steps = np.rint(_f64(node.delay) / dt).astype(np.int64)
    if steps.size and steps.min() < 1:
        raise UnsupportedError(
            f"node {name!r}: Delay must be at least one step (dt={dt}); "
            f"smallest delay is {float(np.min(node.delay))}")
    return steps


# -- the step ---------------------------------------------------------------------------------
class Dynamics:
    """`NeuronParams` cast to one dtype, with the exact shortcuts `step` may take.

    Shortcuts (equal values, up to the sign of a zero): with du = 1 the current is the input
    itself (u * 0 + I == I); with a zero bias, v + 0 == v; with gain 1, 1 * I == I.
    """

    def __init__(self, p: NeuronParams, dtype: np.dtype):
        self.params = p
        self.dtype = dtype
        self.keep_u = (1 - p.du).astype(dtype)
        self.keep_v = (1 - p.dv).astype(dtype)
        self.gain = p.gain.astype(dtype)
        self.bias = p.bias.astype(dtype)
        self.v_threshold = None if p.v_threshold is None else p.v_threshold.astype(dtype)
        self.unit_gain = bool(np.all(p.gain == 1))
        self.no_current = bool(np.all(self.keep_u == 0))
        self.no_bias = bool(np.all(p.bias == 0))
        self.subtract = p.reset == "subtract"
        self.next_step = p.reset in NEXT_STEP_RULES
        self.multi = p.spikes == "multi"

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None

    @property
    def out_dtype(self) -> np.dtype:
        """What `step` returns: bool spikes, or spike counts / membranes in self.dtype."""
        return np.dtype(bool) if self.spiking and not self.multi else self.dtype

    def state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(u, v), all zero: the state before step 0, (batch, *shape)."""
        u = np.zeros((batch,) + self.params.shape, self.dtype)
        return u, u.copy()

    def gained(self, i: np.ndarray) -> np.ndarray:
        """gain * I (for a whole sequence at once: the current increment of every step)."""
        return i if self.unit_gain else self.gain * i


def step(d: Dynamics, u: np.ndarray, v: np.ndarray, i_t: np.ndarray, *,
         gained: bool = False, out: np.ndarray | None = None,
         pre_reset: np.ndarray | None = None) -> np.ndarray:
    """Advance (u, v) one step in place on input i_t; returns the spikes (bool; spike counts
    for the "multi" rule) or, for a non-spiking population, v.

    gained: i_t is already gain * I (see Dynamics.gained). out: where to write the spikes.
    pre_reset: where to copy v before the reset (the membrane the threshold saw).
    Same operation order as Lava's floating-point LIF process model.
    """
    cur = i_t if gained else d.gained(i_t)
    prev = np.greater(v, d.v_threshold) if d.next_step else None  # last step's spikes
    if d.no_current:
        u[...] = cur
    else:
        np.multiply(u, d.keep_u, out=u)
        np.add(u, cur, out=u)
    np.multiply(v, d.keep_v, out=v)
    np.add(v, u, out=v)
    if not d.no_bias:
        np.add(v, d.bias, out=v)
    if prev is not None:
        if d.params.reset == "subtract_next":
            np.subtract(v, np.broadcast_to(d.v_threshold, v.shape), out=v, where=prev)
        else:
            np.copyto(v, 0, where=prev)
    if pre_reset is not None:
        pre_reset[...] = v
    if d.v_threshold is None:
        if out is not None:
            out[...] = v
            return out
        return v.copy()
    if d.multi:  # graded: floor(v / v_th) spikes where v > 0, the reset applied that often
        counts = np.where(v > 0, np.floor(v / d.v_threshold), 0).astype(d.dtype)
        if d.subtract:
            np.subtract(v, counts * d.v_threshold, out=v)
        else:
            np.copyto(v, 0, where=counts > 0)
        if out is not None:
            out[...] = counts
            return out
        return counts
    spikes = np.greater(v, d.v_threshold, out=out)
    if d.subtract:
        np.subtract(v, np.broadcast_to(d.v_threshold, v.shape), out=v, where=spikes)
    elif not d.next_step:
        np.copyto(v, 0, where=spikes)
    return spikes


def run(d: Dynamics, inputs: np.ndarray, *, state: tuple[np.ndarray, np.ndarray] | None = None,
        trace: np.ndarray | None = None) -> np.ndarray:
    """`step` over a whole input sequence (steps, batch, *shape); returns (steps, batch, *shape)
    spikes (bool) or membranes. trace: (steps, 2, batch, *shape) filled with u and v after each
    step (after the reset, as Lava reports them)."""
    u, v = d.state(inputs.shape[1]) if state is None else state
    scaled = d.gained(inputs)
    out = np.empty(inputs.shape, d.out_dtype)
    if trace is None and d.no_current and d.spiking and len(inputs) and not (
            d.subtract or d.next_step or d.multi):
        _run_current_free(d, v, scaled, out)
        u[...] = scaled[-1]  # the state `step` would leave
        return out
    for t in range(inputs.shape[0]):
        step(d, u, v, scaled[t], gained=True, out=out[t])
        if trace is not None:
            trace[t, 0], trace[t, 1] = u, v
    return out


def _run_current_free(d: Dynamics, v: np.ndarray, scaled: np.ndarray, out: np.ndarray) -> None:
    """`step`'s loop for a spiking population without synaptic current (du = 1), one spike per
    step and reset to zero, its operations
    in the same order with the u copy left out: the reference's hot loop at batch 1."""
    keep_v, bias, th = d.keep_v, None if d.no_bias else d.bias, d.v_threshold
    multiply, add, greater, copyto = np.multiply, np.add, np.greater, np.copyto
    for t in range(scaled.shape[0]):
        multiply(v, keep_v, out=v)
        add(v, scaled[t], out=v)
        if bias is not None:
            add(v, bias, out=v)
        copyto(v, 0, where=greater(v, th, out=out[t]))
