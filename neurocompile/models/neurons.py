"""Spiking neuron layers whose dynamics equal the reference semantics (docs/models.md).

Norse-style split: pure functions compute the per-step parameters and advance one step;
thin nn.Modules hold the NIR parameters and loop over time. Per step, in this order:

    u = u * (1 - du) + gain * I[t];  v = v * (1 - dv) + u + bias;  s = v > v_th;
    v = 0 where s (reset "zero"), or v = v - v_th where s (reset "subtract"); the "_next" rules
    apply these in the following step, after its update (semantics.float docstring)

(du, dv, gain, bias) come from the NIR parameters through `neurocompile.semantics.per_step`
(the formulas written once, applied here to float64 tensors so trainable time constants keep
their gradient) and are only then cast to the input's dtype, so a float32 or float64 model
computes bit for bit what the reference simulator computes. `step` is the torch twin of
`neurocompile.semantics.step` (autograd needs it); tests/test_models.py holds the two equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from neurocompile.semantics.float import (
    NEXT_STEP_RULES,
    PARAM_NAMES,
    RESET_RULES,
    TAU_NAMES,
    per_step,
)

F64 = torch.float64
DEFAULT_SLOPE = 10.0

# -- surrogate gradient -----------------------------------------------------------------------
class SuperSpike(torch.autograd.Function):
    """Heaviside(x > 0) forward; fast-sigmoid derivative 1 / (1 + slope*|x|)^2 backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        (x,) = ctx.saved_tensors
        return grad / (ctx.slope * x.abs() + 1.0) ** 2, None


def spike(x: torch.Tensor, slope: float = DEFAULT_SLOPE) -> torch.Tensor:
    """Exact step x > 0 (as 0/1 in x's dtype) with the SuperSpike surrogate gradient."""
    return SuperSpike.apply(x, slope)


# -- per-step parameters (pure functions) --------------------------------------------------
class StepParams(NamedTuple):
    """Per-step parameters in the model dtype; v_threshold None means non-spiking."""

    keep_u: torch.Tensor  # 1 - du
    keep_v: torch.Tensor  # 1 - dv
    gain: torch.Tensor
    bias: torch.Tensor
    v_threshold: torch.Tensor | None
    reset: str = "zero"  # semantics.RESET_RULES


class NeuronState(NamedTuple):
    """Synaptic current u and membrane v, each (batch, *shape)."""

    u: torch.Tensor
    v: torch.Tensor


def _f64(x) -> torch.Tensor:
    return x.to(F64) if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=F64)


def torch_step_params(kind: str, params: dict[str, torch.Tensor], dt: float,
                      dtype: torch.dtype = torch.float32, reset: str = "zero") -> StepParams:
    """Per-step parameters of a neuron kind from its NIR parameters (semantics.per_step)."""
    if kind not in PARAM_NAMES:
        raise ValueError(f"unknown neuron kind {kind!r}; known: {sorted(PARAM_NAMES)}")
    if reset not in RESET_RULES:
        raise ValueError(f"unknown reset rule {reset!r}; known: {', '.join(RESET_RULES)}")
    p = {k: _f64(v) for k, v in params.items()}
    du, dv, gain, bias, vth = per_step(kind, p, dt)
    vth = None if vth is None else vth.expand_as(dv).to(dtype)
    return StepParams((1 - du).to(dtype), (1 - dv).to(dtype), gain.expand_as(dv).to(dtype),
                      bias.expand_as(dv).to(dtype), vth, reset)


def lif_params(tau, r, v_leak, v_threshold, dt: float, dtype=torch.float32) -> StepParams:
    """Per-step parameters of NIR LIF (du = 1, dv = dt/tau, gain = dv*r, bias = dv*v_leak)."""
    return torch_step_params("LIF", dict(tau=tau, r=r, v_leak=v_leak, v_threshold=v_threshold), dt, dtype)


def cuba_lif_params(tau_syn, tau_mem, r, v_leak, v_threshold, w_in, dt: float,
                    dtype=torch.float32) -> StepParams:
    """Per-step parameters of NIR CubaLIF (gain = (dv*r) * (du*w_in))."""
    return torch_step_params("CubaLIF", dict(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                                      v_threshold=v_threshold, w_in=w_in), dt, dtype)


def if_params(r, v_threshold, dtype=torch.float32) -> StepParams:
    """Per-step parameters of NIR IF (du = 1, dv = 0, gain = r, bias = 0)."""
    return torch_step_params("IF", dict(r=r, v_threshold=v_threshold), 1.0, dtype)


def li_params(tau, r, v_leak, dt: float, dtype=torch.float32) -> StepParams:
    """Per-step parameters of NIR LI (LIF without threshold)."""
    return torch_step_params("LI", dict(tau=tau, r=r, v_leak=v_leak), dt, dtype)


def cuba_li_params(tau_syn, tau_mem, r, v_leak, w_in, dt: float,
                   dtype=torch.float32) -> StepParams:
    """Per-step parameters of NIR CubaLI (CubaLIF without threshold)."""
    return torch_step_params("CubaLI", dict(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                                     w_in=w_in), dt, dtype)


def step(i: torch.Tensor, state: NeuronState, p: StepParams, slope: float = DEFAULT_SLOPE,
         detach_reset: bool = True) -> tuple[torch.Tensor, NeuronState]:
    """Advance one step; returns (spikes, or v for a non-spiking neuron; new state)."""
    u = state.u * p.keep_u + p.gain * i
    v = state.v * p.keep_v + u + p.bias
    if p.v_threshold is None:
        return v, NeuronState(u, v)
    if p.reset in NEXT_STEP_RULES:  # last step's spikes, from the un-reset state (no gradient)
        prev = (state.v > p.v_threshold).to(v.dtype)
        v = v - p.v_threshold * prev if p.reset == "subtract_next" else v * (1 - prev)
        return spike(v - p.v_threshold, slope), NeuronState(u, v)
    # v - v_th > 0 exactly when v > v_th (IEEE subtraction of finite values keeps the sign).
    z = spike(v - p.v_threshold, slope)
    zr = z.detach() if detach_reset else z
    if p.reset == "subtract":
        v = v - p.v_threshold * zr  # v - v_th or v - 0: exactly where(z, v - v_th, v)
    else:
        v = v * (1 - zr)  # v*0 or v*1: exactly where(z, 0, v)
    return z, NeuronState(u, v)


def zero_state(batch: int, shape: Sequence[int], dtype: torch.dtype,
               device: torch.device | str | None = None) -> NeuronState:
    """All-zero state, the state before step 0."""
    z = torch.zeros((batch, *shape), dtype=dtype, device=device)
    return NeuronState(z, z.clone())


# -- modules --------------------------------------------------------------------------------
def _shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _power_of_two(x: float) -> float:
    if not x > 0:
        raise ValueError(f"tau_unit must be > 0, got {x}")
    return float(2.0 ** round(np.log2(x)))


class NeuronLayer(nn.Module):
    """A population of one NIR neuron kind; parameters are float64 and stay float64.

    NIR parameters live in float64 buffers (or float64 Parameters for trainable time
    constants) that model.float()/double() do not cast, so the exported values are exactly
    the ones the layer uses. A trainable time constant `name` is the Parameter `raw_<name>`
    in units of tau_units[name] (a power of two near its size, so the scaling is exact and an
    optimizer's step is relative to the time constant), clamped at tau_min.
    """

    kind = ""

    def __init__(self, shape: int | Sequence[int], dt: float = 1e-3, *,
                 learn: Sequence[str] = (), tau_min: float | None = None,
                 tau_unit: float | None = None, slope: float = DEFAULT_SLOPE,
                 detach_reset: bool = True, reset: str = "zero", **params):
        super().__init__()
        if reset not in RESET_RULES:
            raise ValueError(f"{self.kind}: unknown reset rule {reset!r}; known: "
                             f"{', '.join(RESET_RULES)}")
        if reset != "zero" and "v_threshold" not in PARAM_NAMES[self.kind]:
            raise ValueError(f"{self.kind} does not spike; reset must be 'zero'")
        self.reset = reset
        self.shape = _shape(shape)
        self.dt = float(dt)
        self.slope = float(slope)
        self.detach_reset = bool(detach_reset)
        self.tau_min = float(dt if tau_min is None else tau_min)
        names = PARAM_NAMES[self.kind]
        unknown = set(params) - set(names)
        if unknown:
            raise TypeError(f"{self.kind}: unknown parameter(s) {sorted(unknown)}; "
                            f"expected {names}")
        bad = set(learn) - set(names).intersection(TAU_NAMES)
        if bad:
            raise ValueError(f"{self.kind}: only time constants can be learned, got {sorted(bad)}")
        self.learn = tuple(learn)
        self.tau_units: dict[str, float] = {}
        for name in names:
            value = torch.as_tensor(params[name], dtype=F64).expand(self.shape).clone()
            if name in TAU_NAMES and bool((value <= 0).any()):
                raise ValueError(f"{self.kind}: {name} must be > 0, min is {value.min().item()}")
            if name in self.learn:
                unit = _power_of_two(float(value.mean()) if tau_unit is None else tau_unit)
                self.tau_units[name] = unit
                self.register_parameter(f"raw_{name}", nn.Parameter(value / unit))
            else:
                self.register_buffer(name, value)

    # Keep float64 parameters float64 across module.to(dtype)/.float()/.double().
    def _apply(self, fn: Callable, recurse: bool = True):  # noqa: D102
        keep = {n: t.detach().clone() for n, t in
                list(self._buffers.items()) + list(self._parameters.items()) if t is not None}
        super()._apply(fn, recurse)
        device = fn(torch.zeros((), dtype=F64)).device
        for name, value in keep.items():
            if name in self._parameters:
                self._parameters[name].data = value.to(device)
            else:
                self._buffers[name] = value.to(device)
        return self

    def values(self) -> dict[str, torch.Tensor]:
        """The NIR parameters in use, float64, shape self.shape (trainable taus clamped)."""
        out = {}
        for name in PARAM_NAMES[self.kind]:
            if name in self.learn:
                out[name] = (getattr(self, f"raw_{name}") * self.tau_units[name]).clamp(
                    min=self.tau_min)
            else:
                out[name] = getattr(self, name)
        return out

    def nir_params(self) -> dict[str, np.ndarray]:
        """The NIR parameters as float64 NumPy arrays (what export writes)."""
        return {k: v.detach().cpu().numpy().astype(np.float64)
                for k, v in self.values().items()}

    @torch.no_grad()
    def load_nir_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the parameters from NIR arrays (exact float64 copies)."""
        for name in PARAM_NAMES[self.kind]:
            value = torch.as_tensor(np.array(params[name], dtype=np.float64))
            if name in self.learn:  # exact: the unit is a power of two
                self.get_parameter(f"raw_{name}").copy_(value.expand(self.shape)
                                                        / self.tau_units[name])
            else:
                getattr(self, name).copy_(value.expand(self.shape))

    def nir_metadata(self) -> dict[str, str]:
        """Node metadata that export must write beside the parameters: the reset rule."""
        return {} if self.reset == "zero" else {"reset": self.reset}

    def step_params(self, dtype: torch.dtype) -> StepParams:
        """Per-step parameters in `dtype` (differentiable w.r.t. trainable taus)."""
        return torch_step_params(self.kind, self.values(), self.dt, dtype, self.reset)

    @property
    def spiking(self) -> bool:
        return "v_threshold" in PARAM_NAMES[self.kind]

    def step(self, i: torch.Tensor, state: NeuronState, p: StepParams
             ) -> tuple[torch.Tensor, NeuronState]:
        """One step with precomputed parameters (see `step`)."""
        return step(i, state, p, self.slope, self.detach_reset)

    def forward(self, i: torch.Tensor, state: NeuronState | None = None
                ) -> tuple[torch.Tensor, NeuronState]:
        """Run over i (batch, steps, *shape); returns (spikes or v per step, final state)."""
        if tuple(i.shape[2:]) != self.shape:
            raise ValueError(f"{type(self).__name__}: input shape {tuple(i.shape)} does not end "
                             f"in the population shape {self.shape}")
        p = self.step_params(i.dtype)
        if state is None:
            state = zero_state(i.shape[0], self.shape, i.dtype, i.device)
        outs = []
        for t in range(i.shape[1]):
            out, state = self.step(i[:, t], state, p)
            outs.append(out)
        return torch.stack(outs, dim=1), state

    def extra_repr(self) -> str:
        return f"shape={self.shape}, dt={self.dt}, learn={self.learn}, reset={self.reset!r}"


class LIF(NeuronLayer):
    """NIR LIF: tau dv/dt = v_leak - v + r*I; reset to 0 when v > v_threshold."""

    kind = "LIF"

    def __init__(self, shape, dt: float = 1e-3, tau: float | torch.Tensor = 20e-3,
                 r: float | torch.Tensor = 1.0, v_leak=0.0, v_threshold=1.0, **kw):
        super().__init__(shape, dt, tau=tau, r=r, v_leak=v_leak, v_threshold=v_threshold, **kw)


class CubaLIF(NeuronLayer):
    """NIR CubaLIF: current-based synapse (tau_syn) feeding a LIF membrane (tau_mem)."""

    kind = "CubaLIF"

    def __init__(self, shape, dt: float = 1e-3, tau_syn=5e-3, tau_mem=20e-3,
                 r=1.0, v_leak=0.0, v_threshold=1.0, w_in=1.0, **kw):
        super().__init__(shape, dt, tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                         v_threshold=v_threshold, w_in=w_in, **kw)


class IF(NeuronLayer):
    """NIR IF: v += r*I per step; reset to 0 when v > v_threshold."""

    kind = "IF"

    def __init__(self, shape, dt: float = 1e-3, r=1.0, v_threshold=1.0, **kw):
        super().__init__(shape, dt, r=r, v_threshold=v_threshold, **kw)


class LI(NeuronLayer):
    """NIR LI: leaky integrator without threshold; outputs its membrane v (readout)."""

    kind = "LI"

    def __init__(self, shape, dt: float = 1e-3, tau=20e-3, r=1.0, v_leak=0.0, **kw):
        super().__init__(shape, dt, tau=tau, r=r, v_leak=v_leak, **kw)


class CubaLI(NeuronLayer):
    """NIR CubaLI: current-based synapse feeding a leaky integrator; outputs v."""

    kind = "CubaLI"

    def __init__(self, shape, dt: float = 1e-3, tau_syn=5e-3, tau_mem=20e-3, r=1.0,
                 v_leak=0.0, w_in=1.0, **kw):
        super().__init__(shape, dt, tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak,
                         w_in=w_in, **kw)


NEURON_CLASSES: dict[str, type[NeuronLayer]] = {
    "LIF": LIF, "CubaLIF": CubaLIF, "IF": IF, "LI": LI, "CubaLI": CubaLI}
