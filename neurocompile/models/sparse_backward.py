"""Sparse spiking gradient descent for a feed-forward LIF layer (Perez-Nieves & Goodman, 2021).

Reference: N. Perez-Nieves and D. F. M. Goodman, "Sparse Spiking Gradient Descent",
NeurIPS 2021 (arXiv:2105.08810). Only neurons whose membrane lies in a band around threshold,
|v - v_th| < b_th, carry gradient; the backward pass touches those entries alone.

Forward (the project contract, neurocompile/semantics/float.py; the torch loop is
`neurocompile.models.neurons.step` with parameters from `semantics.per_step`), per step t:

    I[t] = W x[t-1] + b          (x[-1] = 0: the one-step synaptic delay; delay=False: W x[t] + b)
    u[t] = u[t-1] * (1 - du) + gain * I[t]
    v[t] = v[t-1] * (1 - dv) + u[t] + bias
    s[t] = v[t] > v_th;  v[t] = 0 where s[t]

Backward, as in the paper:

* surrogate: ds/dv = 1 / (beta |v - v_th| + 1)^2 (beta = 100 in the paper's code) inside the
  band |v - v_th| < b_th, and exactly 0 outside; the reset is not differentiated, so
  dv[t+1]/dv[t] = 1 - dv and du[t+1]/du[t] = 1 - du whether or not the neuron spiked;
* delta = dL/ds * ds/dv is gathered at the active entries A only (nothing dense in B*T*N);
* dL/dW[j, i] = gain_j * sum_{(b,t,j) in A} delta[b,t,j] * tr[b,t,i], tr = F(x[t-1]) the input
  filtered by the neuron's two exponentials (the paper's input "trace"): one sparse product over
  A, chunked so each trace row is read from memory about once (sparse_kernels.dw_product);
* dL/dx: dL/dI = gain * F^T(delta) is dense along time, but F^T acts on time alone and is the
  same for every neuron (shared time constants), so it commutes with W:
      dL/dx = F^T(Delta (gain W)),
  one sparse (CSR over A) x dense product, then the adjoint filter along time of the
  (B, T, n_in) result, written into the returned gradient itself. With `input_active` (the
  active mask of the sparse layer that produced x) entries outside it are set to 0: the
  upstream layer reads no others.

The paper writes the band as b_th < v < 2 v_th - b_th with v_th = 1 and b_th = 0.8, i.e. a
half-width B_th = 0.2: our `b_th` is that half-width (default 0.2 * v_th).

`mode="dense"` runs the same closed-form backward on dense tensors (the same gradient, dense
work); `dense_lif_reference` is plain autograd BPTT through the time loop with the same
surrogate, used to check both. CUDA float32 uses Triton kernels when Triton is importable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurocompile.errors import UnsupportedError
from neurocompile.models import sparse_kernels as sk
from neurocompile.models.neurons import NeuronState, StepParams, step, zero_state
from neurocompile.semantics.float import per_step

HAS_TRITON = sk.HAS_TRITON
PAPER_BETA = 100.0  # surrogate steepness: Perez-Nieves & Goodman 2021, code release (scale=100)
PAPER_BAND = 0.2  # band half-width for v_th = 1: paper Sec. 3 / config b_th=0.8, B_th = 1 - b_th

__all__ = [
    "HAS_TRITON", "PAPER_BAND", "PAPER_BETA", "LIFStep", "SparseLIF", "SparseLIFFunction",
    "dense_lif_reference", "lif_step", "sparse_lif", "step_from_layer",
]


# --------------------------------------------------------------------------------------------
# Per-step parameters (semantics.per_step, float64, then cast once)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LIFStep:
    """Per-step parameters of one LIF/CubaLIF population with shared time constants."""

    keep_u: float  # 1 - du, computed in float64
    keep_v: float  # 1 - dv, computed in float64
    gain: np.ndarray  # (n,) float64
    bias: np.ndarray  # (n,) float64
    v_th: np.ndarray  # (n,) float64

    @property
    def n(self) -> int:
        return int(self.gain.shape[0])

    def params(self, like: torch.Tensor) -> StepParams:
        """The parameters as `neurons.StepParams` in like's dtype and device (cast once)."""
        def vec(a) -> torch.Tensor:
            t = torch.tensor(np.broadcast_to(a, (self.n,)), dtype=torch.float64)
            return t.to(dtype=like.dtype, device=like.device)

        return StepParams(vec(self.keep_u), vec(self.keep_v), vec(self.gain), vec(self.bias),
                          vec(self.v_th))


def _uniform(name: str, arr: np.ndarray) -> float:
    if not np.all(arr == arr.reshape(-1)[0]):
        raise UnsupportedError(
            f"sparse backward: {name} must be the same for all {arr.size} neurons (the input "
            f"trace is shared by the population), got values in [{arr.min()}, {arr.max()}]")
    return float(arr.reshape(-1)[0])


def _from_per_step(du, dv, gain, bias, vth) -> LIFStep:
    flat = [np.asarray(a, dtype=np.float64).reshape(-1) for a in (du, dv, gain, bias, vth)]
    n = max(a.size for a in flat)
    du, dv, gain, bias, vth = (np.broadcast_to(a, (n,)).copy() for a in flat)
    return LIFStep(_uniform("1 - du (tau_syn)", 1 - du), _uniform("1 - dv (tau_mem)", 1 - dv),
                   gain, bias, vth)


def lif_step(n: int, *, tau_mem, tau_syn=None, r=1.0, v_leak=0.0, v_threshold=1.0,
             w_in=1.0, dt: float = 1e-3) -> LIFStep:
    """Per-step parameters of NIR LIF (tau_syn None) or CubaLIF, through semantics.per_step."""
    if not (dt > 0 and np.isfinite(dt)):
        raise UnsupportedError(f"time step dt must be a positive number, got {dt}")

    def f64(v) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()

    if tau_syn is None:
        params = dict(tau=f64(tau_mem), r=f64(r), v_leak=f64(v_leak),
                      v_threshold=f64(v_threshold))
        return _from_per_step(*per_step("LIF", params, dt))
    params = dict(tau_syn=f64(tau_syn), tau_mem=f64(tau_mem), r=f64(r), v_leak=f64(v_leak),
                  v_threshold=f64(v_threshold), w_in=f64(w_in))
    return _from_per_step(*per_step("CubaLIF", params, dt))


def step_from_layer(layer) -> LIFStep:
    """The LIFStep of a neurocompile.models.neurons LIF/CubaLIF layer (fixed time constants)."""
    kind = getattr(layer, "kind", "")
    if kind not in ("LIF", "CubaLIF"):
        raise UnsupportedError(f"sparse backward: needs a LIF or CubaLIF layer, got {kind!r}")
    if getattr(layer, "learn", ()):
        raise UnsupportedError(f"sparse backward: trainable time constants {layer.learn} are "
                               "not supported (no gradient for tau on the active set)")
    with torch.no_grad():
        p = layer.step_params(torch.float64)  # neurons' parameters, built on per_step
    arrays = [a.detach().cpu().numpy() for a in (p.keep_u, p.keep_v, p.gain, p.bias,
                                                 p.v_threshold)]
    keep_u, keep_v, gain, bias, vth = (a.reshape(-1) for a in arrays)
    return LIFStep(_uniform("1 - du (tau_syn)", keep_u), _uniform("1 - dv (tau_mem)", keep_v),
                   gain.copy(), bias.copy(), vth.copy())


def _shift(x: torch.Tensor) -> torch.Tensor:
    """x[:, t-1] at step t, zeros at t = 0 (the synaptic delay)."""
    out = torch.zeros_like(x)
    out[:, 1:] = x[:, :-1]
    return out


def _bias_trace(p: LIFStep, T: int) -> np.ndarray:
    """The trace of a constant input of 1 at every step (what dv[t]/d(bias of I) is), float64."""
    out = np.empty(T)
    a = y = 0.0
    for t in range(T):
        a = p.keep_u * a + 1.0
        y = p.keep_v * y + a
        out[t] = y
    return out


def _compact(x: torch.Tensor) -> torch.Tensor:
    """Binary spike input as bool (1 byte instead of 4-8); anything else kept as is."""
    if x.dtype == torch.bool:
        return x
    return x.to(torch.bool) if bool(((x == 0) | (x == 1)).all()) else x


def _cumulative(counts: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """CSR row pointers from per-row counts."""
    ptr = torch.zeros(counts.numel() + 1, dtype=dtype, device=counts.device)
    ptr[1:] = counts.cumsum(0)
    return ptr


# --------------------------------------------------------------------------------------------
# The autograd function
# --------------------------------------------------------------------------------------------

class SparseLIFFunction(torch.autograd.Function):
    """Whole-sequence Linear -> LIF with the sparse (or dense) surrogate backward.

    forward(x, weight, lin_bias, step, b_th, beta, mode, input_active, delay, force_torch)
    returns (spikes (B, T, N) in x's dtype, active (B, T, N) bool, non-differentiable).
    """

    @staticmethod
    def forward(ctx, x, weight, lin_bias, step: LIFStep, b_th: float, beta: float, mode: str,
                input_active, delay: bool, force_torch: bool):
        if mode not in ("sparse", "dense"):
            raise UnsupportedError(f"sparse backward: mode must be 'sparse' or 'dense', got "
                                   f"{mode!r}")
        B, T, n_in = x.shape
        N = weight.shape[0]
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        xs = _shift(x) if delay else x
        cur = torch.matmul(xs.to(weight.dtype), weight.t())
        if lin_bias is not None:
            cur = cur + lin_bias
        s, sg, act = sk.lif_scan(cur, step.params(weight), b_th, beta, force_torch)
        del cur
        ctx.step, ctx.mode, ctx.delay, ctx.force_torch = step, mode, delay, force_torch
        ctx.shape = (B, T, N, n_in)
        ctx.has_bias = lin_bias is not None
        saved: dict[str, torch.Tensor] = {"weight": weight}
        if input_active is not None:
            saved["input_active"] = input_active
        if mode == "dense":
            saved.update(xc=_compact(xs), sg=sg)
        else:
            saved.update(_sparse_pattern(xs, act, sg, step, weight.dtype, need_x, need_w,
                                         delay, force_torch))
        del sg
        ctx.names = tuple(saved)
        ctx.save_for_backward(*saved.values())
        ctx.mark_non_differentiable(act)
        ctx.set_materialize_grads(False)  # no dense zeros for the mask's (absent) gradient
        return s, act

    @staticmethod
    def backward(ctx, g_s, _g_act):
        saved = dict(zip(ctx.names, ctx.saved_tensors, strict=True))
        need = ctx.needs_input_grad[:3]
        if g_s is None:  # the spikes reached no loss
            return (None,) * 10
        if ctx.mode == "sparse":
            gx, gw, gb = _sparse_backward(ctx, saved, g_s, need)
        else:
            gx, gw, gb = _dense_backward(ctx, saved, g_s, need)
        return gx, gw, gb, None, None, None, None, None, None, None


def _sparse_pattern(xs: torch.Tensor, act: torch.Tensor, sg: torch.Tensor, p: LIFStep,
                    dtype: torch.dtype, need_x: bool, need_w: bool, delay: bool,
                    force_torch: bool) -> dict[str, torch.Tensor]:
    """What the sparse backward keeps: the active set in the orders its two products read it.

    Always: row b*T+t and neuron j of each active entry (in (b, t, j) order) and the surrogate
    there. For dW: the entries ordered by (trace chunk, j, row) with chunk pointers, and the
    input trace (or, when dL/dx is needed too, the compact input, whose trace is built in the
    gradient buffer). For dL/dx: CSR row pointers over (b, t) rows, shifted by the delay.
    """
    B, T, N = act.shape
    n_in = xs.shape[2]
    nz = act.nonzero()
    bt = nz[:, 0] * T + nz[:, 1]
    j = nz[:, 2]
    del nz
    vals = sg.view(-1)[bt * N + j]
    it = sk.index_dtype(max(vals.numel(), B * T, N) + 1)
    out = {"bt": bt.to(it), "j": j.to(it), "vals": vals}
    if need_w:
        per = sk.chunk_rows(n_in, torch.empty((), dtype=dtype).element_size())
        n_chunks = -(-(B * T) // per)
        chunk = bt // per
        key = (chunk * N + j) * per + (bt - chunk * per)
        perm = torch.argsort(key)
        del key
        out["perm"] = perm.to(it)
        out["rows_w"] = bt[perm].to(it)
        out["ptr_w"] = _cumulative(torch.bincount(chunk * N + j, minlength=n_chunks * N), it)
        del perm, chunk
        if need_x:  # the trace is built in the dL/dx buffer during backward
            out["xc"] = _compact(xs)
        else:
            out["tr"] = sk.time_filter(xs, p.keep_u, p.keep_v, dtype, False,
                                       force_torch=force_torch)
    if need_x:
        # dL/dx[b, t'] = F^T(q')[b, t'] with q'[b, t'] = (Delta gain W)[b, t' + delay]: an
        # active entry at (b, t) lands on row b*T + t - delay; with the delay those at t = 0
        # (which would reach x[-1]) are left out.
        if delay:
            keep = (bt % T) > 0
            sel = keep.nonzero().squeeze(1)
            rows = bt[sel] - 1
            out["sel_x"] = sel.to(it)
            out["col_x"] = j[sel].to(it)
        else:
            rows = bt
        out["crow_x"] = _cumulative(torch.bincount(rows, minlength=B * T), it)
    return out


def _sparse_backward(ctx, saved: dict[str, torch.Tensor], g_s: torch.Tensor, need
                     ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """dL/dx, dL/dW, dL/db from the active set (see the module docstring)."""
    B, T, N, n_in = ctx.shape
    p: LIFStep = ctx.step
    weight = saved["weight"]
    dtype, dev = weight.dtype, weight.device
    gain = p.params(weight).gain
    need_x, need_w, need_b = need
    bt, j = saved["bt"], saved["j"]
    if sk.index_dtype(B * T * N) != bt.dtype:  # flat indices need the wider type
        bt, j = bt.long(), j.long()
    # dL/dv on A only; index_select keeps int32 indices as they are (no int64 copies)
    delta = g_s.contiguous().view(-1).index_select(0, bt * N + j).mul_(saved["vals"])
    gx = gw = gb = None
    if need_b and ctx.has_bias:
        kc = torch.as_tensor(_bias_trace(p, T), dtype=dtype, device=dev)
        gb = torch.zeros(N, dtype=dtype, device=dev)
        gb.index_add_(0, j, delta * kc.index_select(0, bt % T))
        gb.mul_(gain)
    del bt
    buf = None
    if need_x:  # the returned gradient; also the trace's workspace when dW needs one
        buf = (torch.empty if need_w else torch.zeros)((B, T, n_in), dtype=dtype, device=dev)
    if need_w:
        if "tr" in saved:
            tr = saved["tr"]
        else:
            tr = sk.time_filter(saved["xc"], p.keep_u, p.keep_v, dtype, False, out=buf,
                                force_torch=ctx.force_torch)
        gw = sk.dw_product(saved["ptr_w"], saved["rows_w"], delta.index_select(0, saved["perm"]),
                           tr.view(B * T, n_in), N, sk.chunk_rows(n_in, tr.element_size()),
                           ctx.force_torch)
        gw.mul_(gain[:, None])
        del tr
    if need_x:
        if ctx.delay:
            vals, col = delta.index_select(0, saved["sel_x"]), saved["col_x"]
        else:
            vals, col = delta, saved["j"]
        S = sk.csr(saved["crow_x"], col, vals, (B * T, N))
        sk.spmm_into(S, weight * gain[:, None], buf.view(B * T, n_in))
        del S, vals
        sk.time_filter(buf, p.keep_u, p.keep_v, dtype, True, out=buf,
                       force_torch=ctx.force_torch)
        if "input_active" in saved:
            buf.mul_(saved["input_active"])
        gx = buf
    return gx, gw, gb


def _dense_backward(ctx, saved: dict[str, torch.Tensor], g_s: torch.Tensor, need
                    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The same closed form on dense tensors: dL/dI = gain F^T(g_s sg), then two GEMMs."""
    B, T, N, n_in = ctx.shape
    p: LIFStep = ctx.step
    weight, xc = saved["weight"], saved["xc"]
    dtype = weight.dtype
    need_x, need_w, need_b = need
    gI = sk.time_filter(g_s.contiguous() * saved["sg"], p.keep_u, p.keep_v, dtype, True,
                        force_torch=ctx.force_torch)
    gI.mul_(p.params(weight).gain)
    gx = gw = gb = None
    if need_w:
        gw = gI.reshape(B * T, N).t() @ xc.reshape(B * T, -1).to(dtype)
    if need_b and ctx.has_bias:
        gb = gI.sum((0, 1))
    if need_x:
        if ctx.delay:
            gx = torch.zeros((B, T, n_in), dtype=dtype, device=weight.device)
            gx[:, :-1] = gI[:, 1:] @ weight
        else:
            gx = gI @ weight
        if "input_active" in saved:
            gx.mul_(saved["input_active"])
    return gx, gw, gb


def sparse_lif(x: torch.Tensor, weight: torch.Tensor, lin_bias: torch.Tensor | None,
               step: LIFStep, *, b_th: float, beta: float = PAPER_BETA, mode: str = "sparse",
               input_active: torch.Tensor | None = None, delay: bool = True,
               force_torch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear -> LIF over a whole sequence x (B, T, n_in): (spikes, active mask)."""
    if x.dim() != 3 or x.shape[2] != weight.shape[1]:
        raise UnsupportedError(f"sparse_lif: x must be (batch, steps, {weight.shape[1]}), "
                               f"got {tuple(x.shape)}")
    if step.n != weight.shape[0]:
        raise UnsupportedError(f"sparse_lif: {step.n} neurons in the LIF step but weight has "
                               f"{weight.shape[0]} rows")
    if not b_th > 0:
        raise UnsupportedError(f"sparse_lif: band half-width b_th must be > 0, got {b_th}")
    if input_active is not None and input_active.shape != x.shape:
        raise UnsupportedError(f"sparse_lif: input_active shape {tuple(input_active.shape)} "
                               f"differs from x {tuple(x.shape)}")
    return SparseLIFFunction.apply(x, weight, lin_bias, step, float(b_th), float(beta), mode,
                                   input_active, delay, force_torch)


# --------------------------------------------------------------------------------------------
# Dense autograd reference (BPTT through the time loop, the same surrogate)
# --------------------------------------------------------------------------------------------

class _SpikeFn(torch.autograd.Function):
    """Heaviside forward; fast-sigmoid surrogate backward, optionally masked to the band."""

    @staticmethod
    def forward(ctx, d, b_th, beta):
        ctx.save_for_backward(d)
        ctx.b_th, ctx.beta = b_th, beta
        return (d > 0).to(d.dtype)

    @staticmethod
    def backward(ctx, g):
        (d,) = ctx.saved_tensors
        ad = d.abs()
        sg = 1.0 / (ctx.beta * ad + 1.0) ** 2
        if ctx.b_th is not None:
            sg = torch.where(ad < ctx.b_th, sg, 0.0)
        return g * sg, None, None


def dense_lif_reference(x: torch.Tensor, weight: torch.Tensor, lin_bias: torch.Tensor | None,
                        step_p: LIFStep, *, b_th: float | None = None, beta: float = PAPER_BETA,
                        delay: bool = True) -> torch.Tensor:
    """Plain autograd BPTT: the time loop recorded step by step; b_th=None: unmasked surrogate.

    The membrane update is `neurons.step` (non-spiking parameters, so v before the reset comes
    back); the spike uses the paper's surrogate and the reset is not differentiated.
    """
    xs = _shift(x) if delay else x
    cur = torch.matmul(xs.to(weight.dtype), weight.t())
    if lin_bias is not None:
        cur = cur + lin_bias
    p = step_p.params(weight)
    membrane = StepParams(p.keep_u, p.keep_v, p.gain, p.bias, None)
    B, T, N = cur.shape
    state = zero_state(B, (N,), weight.dtype, weight.device)
    out = []
    for t in range(T):
        v, state = step(cur[:, t], state, membrane)
        s = _SpikeFn.apply(v - p.v_threshold, b_th, beta)
        out.append(s)
        state = NeuronState(state.u, v - (v * s).detach())  # reset to 0, not differentiated
    return torch.stack(out, 1)


# --------------------------------------------------------------------------------------------
# Layer
# --------------------------------------------------------------------------------------------

class SparseLIF(nn.Module):
    """Linear(n_in, n_out) then LIF (or CubaLIF with tau_syn) over a whole sequence.

    x (batch, steps, n_in) -> spikes (batch, steps, n_out). With sparse_backward=True the
    backward pass visits only the active set |v - v_th| < b_th; `last_active` holds that mask
    after each call, to pass as `input_active` to the next SparseLIF.
    """

    def __init__(self, n_in: int, n_out: int, *, tau_mem: float = 10e-3,
                 tau_syn: float | None = None, r: float = 1.0, v_leak: float = 0.0,
                 v_threshold: float = 1.0, dt: float = 1e-3, bias: bool = True,
                 sparse_backward: bool = True, b_th: float | None = None,
                 beta: float = PAPER_BETA, delay: bool = True, device=None, dtype=None):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out, bias=bias, device=device, dtype=dtype)
        self.step = lif_step(n_out, tau_mem=tau_mem, tau_syn=tau_syn, r=r, v_leak=v_leak,
                             v_threshold=v_threshold, dt=dt)
        self.sparse_backward = sparse_backward
        self.b_th = PAPER_BAND * float(np.max(np.abs(self.step.v_th))) if b_th is None \
            else float(b_th)
        self.beta = float(beta)
        self.delay = delay
        self.last_active: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, input_active: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes (batch, steps, n_out); the active mask is kept in `last_active`."""
        mode = "sparse" if self.sparse_backward else "dense"
        s, act = sparse_lif(x, self.fc.weight, self.fc.bias, self.step, b_th=self.b_th,
                            beta=self.beta, mode=mode, input_active=input_active,
                            delay=self.delay)
        self.last_active = act
        return s
