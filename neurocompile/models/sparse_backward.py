"""Sparse spiking gradient descent for a feed-forward LIF layer (Perez-Nieves & Goodman, 2021).

Reference: N. Perez-Nieves and D. F. M. Goodman, "Sparse Spiking Gradient Descent",
NeurIPS 2021 (arXiv:2105.08810). Only neurons whose membrane lies in a band around threshold,
|v - v_th| < b_th, carry gradient; the backward pass touches those entries alone.

Forward (the project contract, docs/models.md and neurocompile/ir/semantics.py), per step t:

    I[t] = W x[t-1] + b          (x[-1] = 0: the one-step synaptic delay; delay=False: W x[t] + b)
    u[t] = u[t-1] * (1 - du) + gain * I[t]
    v[t] = v[t-1] * (1 - dv) + u[t] + bias
    s[t] = v[t] > v_th;  v[t] = 0 where s[t]

Backward, as in the paper:

* surrogate: ds/dv = 1 / (beta |v - v_th| + 1)^2 (the fast-sigmoid / SuperSpike derivative,
  beta = 100 in the paper's code) inside the band |v - v_th| < b_th, and exactly 0 outside;
* the reset is not differentiated (the paper detaches its reset term): dv[t+1]/dv[t] = 1 - dv,
  du[t+1]/du[t] = 1 - du, whether or not the neuron spiked;
* hence with delta = dL/ds * ds/dv, nonzero only on the active set A,
      dL/dW[j, i] = gain_j * sum_{(b,t,j) in A} delta[b,t,j] * tr[b,t,i],
  where tr is the input x[t-1] filtered by the neuron's two exponentials (the input "trace"
  of the paper, which filters with the single exponential of its plain LIF). The weight
  gradient is one sparse (CSR) x dense product over the active entries only.
* dL/dx (only when x needs a gradient) is the adjoint of I, filtered backwards in time, times
  W; with `input_active` (the active mask of the layer that produced x) it is evaluated only at
  those entries, the only ones the upstream sparse layer reads.

The paper writes the band as b_th < v < 2 v_th - b_th with v_th = 1 and b_th = 0.8, i.e. a
half-width B_th = 0.2: our `b_th` is that half-width (default 0.2 * v_th).

`mode="dense"` runs the same closed-form backward on dense tensors (the same gradient, dense
work); `dense_lif_reference` is plain autograd BPTT through the time loop with the same
surrogate, used to check both. Float64 runs the torch loops; float32 on CUDA uses Triton scans
when Triton is importable.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurocompile.errors import UnsupportedError

try:  # Triton is optional: CUDA float32 scans use it when present
    import triton
    import triton.language as tl

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the install
    HAS_TRITON = False

PAPER_BETA = 100.0  # surrogate steepness: Perez-Nieves & Goodman 2021, code release (scale=100)
GATHER_DENSITY = 0.01  # input-gradient entries gathered one by one below this density
PAPER_BAND = 0.2  # band half-width for v_th = 1: paper Sec. 3 / config b_th=0.8, B_th = 1 - b_th

__all__ = [
    "HAS_TRITON", "PAPER_BAND", "PAPER_BETA", "LIFStep", "SparseLIF", "SparseLIFFunction",
    "dense_lif_reference", "lif_step", "sparse_lif", "step_from_layer",
]


# --------------------------------------------------------------------------------------------
# Per-step parameters (exactly the formulas of neurocompile/ir/semantics.py, float64 then cast)
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


def _uniform(name: str, value, n: int) -> float:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
    if not np.all(arr == arr[0]):
        raise UnsupportedError(
            f"sparse backward: {name} must be the same for all {n} neurons (the input trace is "
            f"shared by the population), got values in [{arr.min()}, {arr.max()}]")
    return float(arr[0])


def lif_step(n: int, *, tau_mem, tau_syn=None, r=1.0, v_leak=0.0, v_threshold=1.0,
             w_in=1.0, dt: float = 1e-3) -> LIFStep:
    """Discretise LIF (tau_syn None) or CubaLIF parameters as semantics.neuron_step does."""
    if not (dt > 0 and math.isfinite(dt)):
        raise UnsupportedError(f"time step dt must be a positive number, got {dt}")
    f64 = lambda x: np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()  # noqa: E731
    dv = dt / f64(tau_mem)
    r_, v_leak_ = f64(r), f64(v_leak)
    if tau_syn is None:  # LIF: du = 1, gain = dv * r
        du = np.ones_like(dv)
        gain = dv * r_
    else:  # CubaLIF: gain = (dv * r) * (du * w_in)
        du = dt / f64(tau_syn)
        gain = (dv * r_) * (du * f64(w_in))
    bias = dv * v_leak_
    keep_u = _uniform("1 - du (tau_syn)", 1 - du, n)
    keep_v = _uniform("1 - dv (tau_mem)", 1 - dv, n)
    return LIFStep(keep_u, keep_v, gain, bias, f64(v_threshold))


def step_from_layer(layer) -> LIFStep:
    """The LIFStep of a neurocompile.models.neurons LIF/CubaLIF layer (fixed time constants)."""
    kind = getattr(layer, "kind", "")
    if kind not in ("LIF", "CubaLIF"):
        raise UnsupportedError(f"sparse backward: needs a LIF or CubaLIF layer, got {kind!r}")
    if getattr(layer, "learn", ()):
        raise UnsupportedError(f"sparse backward: trainable time constants {layer.learn} are "
                               "not supported (no gradient for tau on the active set)")
    p = layer.nir_params()
    n = int(np.prod(layer.shape))
    flat = {k: np.asarray(v).reshape(-1) for k, v in p.items()}
    if kind == "LIF":
        return lif_step(n, tau_mem=flat["tau"], r=flat["r"], v_leak=flat["v_leak"],
                        v_threshold=flat["v_threshold"], dt=layer.dt)
    return lif_step(n, tau_mem=flat["tau_mem"], tau_syn=flat["tau_syn"], r=flat["r"],
                    v_leak=flat["v_leak"], v_threshold=flat["v_threshold"], w_in=flat["w_in"],
                    dt=layer.dt)


def _vec(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


def _scalar(a: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(a, dtype=like.dtype, device=like.device)


def _shift(x: torch.Tensor) -> torch.Tensor:
    """x[:, t-1] at step t, zeros at t = 0 (the synaptic delay)."""
    out = torch.zeros_like(x)
    out[:, 1:] = x[:, :-1]
    return out


def _unshift(g: torch.Tensor) -> torch.Tensor:
    """Adjoint of _shift: g[:, t+1] at step t, zeros at the last step."""
    out = torch.zeros_like(g)
    out[:, :-1] = g[:, 1:]
    return out


# --------------------------------------------------------------------------------------------
# Scans over time: torch loops (any device, any float dtype) and Triton kernels (CUDA float32)
# --------------------------------------------------------------------------------------------

if HAS_TRITON:

    @triton.jit
    def _lif_scan_kernel(i_ptr, s_ptr, sg_ptr, act_ptr, gain_ptr, bias_ptr, vth_ptr,
                         T, N, keep_u, keep_v, b_th, beta, BLOCK: tl.constexpr):
        pid_b = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = offs < N
        gain = tl.load(gain_ptr + offs, mask=m, other=0.0)
        bias = tl.load(bias_ptr + offs, mask=m, other=0.0)
        vth = tl.load(vth_ptr + offs, mask=m, other=0.0)
        u = tl.zeros([BLOCK], dtype=tl.float32)
        v = tl.zeros([BLOCK], dtype=tl.float32)
        base = pid_b.to(tl.int64) * T * N
        for t in range(T):
            p = base + t * N + offs
            cur = tl.load(i_ptr + p, mask=m, other=0.0)
            u = u * keep_u + gain * cur
            v = v * keep_v + u + bias
            s = v > vth
            ad = tl.abs(v - vth)
            act = ad < b_th
            q = beta * ad + 1.0
            sg = tl.where(act, 1.0 / (q * q), 0.0)
            tl.store(s_ptr + p, s.to(tl.float32), mask=m)
            tl.store(sg_ptr + p, sg, mask=m)
            tl.store(act_ptr + p, act.to(tl.int8), mask=m)
            v = tl.where(s, 0.0, v)

    @triton.jit
    def _filter_kernel(x_ptr, y_ptr, T, C, keep_u, keep_v, REVERSE: tl.constexpr,
                       BLOCK: tl.constexpr):
        pid_b = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        m = offs < C
        a = tl.zeros([BLOCK], dtype=tl.float32)
        y = tl.zeros([BLOCK], dtype=tl.float32)
        base = pid_b.to(tl.int64) * T * C
        for k in range(T):
            if REVERSE:
                t = T - 1 - k
            else:
                t = k
            p = base + t * C + offs
            x = tl.load(x_ptr + p, mask=m, other=0).to(tl.float32)
            if REVERSE:  # adjoint: gv[t] = x[t] + keep_v gv[t+1]; gu[t] = gv[t] + keep_u gu[t+1]
                y = x + keep_v * y
                a = y + keep_u * a
                tl.store(y_ptr + p, a, mask=m)
            else:  # trace: a[t] = keep_u a[t-1] + x[t]; y[t] = keep_v y[t-1] + a[t]
                a = keep_u * a + x
                y = keep_v * y + a
                tl.store(y_ptr + p, y, mask=m)


def _use_triton(t: torch.Tensor, force_torch: bool) -> bool:
    return HAS_TRITON and not force_torch and t.is_cuda and t.dtype == torch.float32


def _lif_scan(cur: torch.Tensor, p: LIFStep, b_th: float, beta: float, force_torch: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the LIF loop on input currents (B, T, N): spikes, masked surrogate, active mask."""
    B, T, N = cur.shape
    gain, bias, vth = _vec(p.gain, cur), _vec(p.bias, cur), _vec(p.v_th, cur)
    if _use_triton(cur, force_torch):
        cur = cur.contiguous()
        s = torch.empty_like(cur)
        sg = torch.empty_like(cur)
        act = torch.empty(cur.shape, dtype=torch.int8, device=cur.device)
        BLOCK = 128
        grid = (B, triton.cdiv(N, BLOCK))
        _lif_scan_kernel[grid](cur, s, sg, act, gain, bias, vth, T, N,
                               float(np.float32(p.keep_u)), float(np.float32(p.keep_v)),
                               float(b_th), float(beta), BLOCK=BLOCK, enable_fp_fusion=False)
        return s, sg, act.view(torch.bool)
    keep_u, keep_v = _scalar(p.keep_u, cur), _scalar(p.keep_v, cur)
    s = torch.empty_like(cur)
    sg = torch.empty_like(cur)
    act = torch.empty(cur.shape, dtype=torch.bool, device=cur.device)
    u = torch.zeros((B, N), dtype=cur.dtype, device=cur.device)
    v = torch.zeros_like(u)
    for t in range(T):
        u = u * keep_u + gain * cur[:, t]
        v = v * keep_v + u + bias
        spk = v > vth
        ad = (v - vth).abs()
        a = ad < b_th
        s[:, t] = spk
        act[:, t] = a
        sg[:, t] = torch.where(a, 1.0 / (beta * ad + 1.0) ** 2, 0.0)
        v = torch.where(spk, 0.0, v)
    return s, sg, act


def _filter(x: torch.Tensor, keep_u: float, keep_v: float, dtype: torch.dtype, reverse: bool,
            force_torch: bool = False) -> torch.Tensor:
    """Two-exponential causal filter over time (trace) or its adjoint (reverse) of (B, T, C)."""
    B, T, C = x.shape
    if HAS_TRITON and not force_torch and x.is_cuda and dtype == torch.float32:
        xin = x.view(torch.uint8) if x.dtype == torch.bool else x
        xin = xin.contiguous()
        y = torch.empty((B, T, C), dtype=dtype, device=x.device)
        BLOCK = 128
        grid = (B, triton.cdiv(C, BLOCK))
        _filter_kernel[grid](xin, y, T, C, float(np.float32(keep_u)), float(np.float32(keep_v)),
                             REVERSE=reverse, BLOCK=BLOCK, enable_fp_fusion=False)
        return y
    ku = torch.tensor(keep_u, dtype=dtype, device=x.device)
    kv = torch.tensor(keep_v, dtype=dtype, device=x.device)
    y = torch.empty((B, T, C), dtype=dtype, device=x.device)
    a = torch.zeros((B, C), dtype=dtype, device=x.device)
    z = torch.zeros_like(a)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        xt = x[:, t].to(dtype)
        if reverse:
            z = xt + kv * z
            a = z + ku * a
            y[:, t] = a
        else:
            a = ku * a + xt
            z = kv * z + a
            y[:, t] = z
    return y


def _bias_trace(p: LIFStep, T: int) -> np.ndarray:
    """The trace of a constant input of 1 at every step (what dv[t]/d(bias of I) is), float64."""
    out = np.empty(T)
    a = y = 0.0
    for t in range(T):
        a = p.keep_u * a + 1.0
        y = p.keep_v * y + a
        out[t] = y
    return out


# --------------------------------------------------------------------------------------------
# The autograd function
# --------------------------------------------------------------------------------------------

def _compact(x: torch.Tensor) -> torch.Tensor:
    """Binary spike input as bool (1 byte instead of 4-8); anything else kept as is."""
    if x.dtype == torch.bool:
        return x
    return x.to(torch.bool) if bool(((x == 0) | (x == 1)).all()) else x


class SparseLIFFunction(torch.autograd.Function):
    """Whole-sequence Linear -> LIF with the sparse (or dense) surrogate backward.

    forward(x, weight, lin_bias, step, b_th, beta, mode, input_active, delay, force_torch)
    returns (spikes (B, T, N) in x's dtype, active (B, T, N) bool, non-differentiable).
    """

    @staticmethod
    def forward(ctx, x, weight, lin_bias, step: LIFStep, b_th: float, beta: float, mode: str,
                input_active, delay: bool, force_torch: bool):
        B, T, _ = x.shape
        N = weight.shape[0]
        xs = _shift(x) if delay else x
        cur = torch.matmul(xs.to(weight.dtype), weight.t())
        if lin_bias is not None:
            cur = cur + lin_bias
        s, sg, act = _lif_scan(cur, step, b_th, beta, force_torch)
        del cur
        xc = _compact(xs)
        ctx.step, ctx.mode, ctx.delay, ctx.force_torch = step, mode, delay, force_torch
        ctx.shape = (B, T, N)
        ctx.has_bias = lin_bias is not None
        ctx.has_input_active = input_active is not None
        if mode == "sparse":
            # entries ordered by neuron j, then (b, t): the rows of a CSR matrix (N x B*T)
            nz = act.permute(2, 0, 1).nonzero()
            j, bt = nz[:, 0], nz[:, 1] * T + nz[:, 2]
            idx_t = torch.int32 if B * T * N < 2**31 else torch.int64
            crow = torch.zeros(N + 1, dtype=idx_t, device=x.device)
            crow[1:] = torch.bincount(j, minlength=N).cumsum(0)
            vals = sg.view(-1)[bt * N + j]
            bt = bt.to(idx_t)
            saved = [xc, weight, crow, bt, vals]
        elif mode == "dense":
            saved = [xc, weight, sg]
        else:
            raise UnsupportedError(f"sparse backward: mode must be 'sparse' or 'dense', got {mode!r}")
        if input_active is not None:
            saved.append(input_active)
        ctx.save_for_backward(*saved)
        ctx.mark_non_differentiable(act)
        return s, act

    @staticmethod
    def backward(ctx, g_s, _g_act):
        B, T, N = ctx.shape
        p: LIFStep = ctx.step
        saved = list(ctx.saved_tensors)
        input_active = saved.pop() if ctx.has_input_active else None
        xc, weight = saved[0], saved[1]
        dtype, dev = weight.dtype, weight.device
        need_x, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], \
            ctx.needs_input_grad[2]
        gain = _vec(p.gain, weight)
        gx = gw = gb = None
        g_s = g_s.contiguous()
        if ctx.mode == "sparse":
            crow, bt, vals = saved[2], saved[3], saved[4]
            nnz = vals.shape[0]
            counts = (crow[1:] - crow[:-1]).long()
            j = torch.repeat_interleave(torch.arange(N, device=dev), counts, output_size=nnz)
            bt_l = bt.long()
            delta = g_s.view(-1)[bt_l * N + j] * vals  # dL/dv on the active set only
            with warnings.catch_warnings():  # CSR support is marked beta in torch
                warnings.simplefilter("ignore", UserWarning)
                S = torch.sparse_csr_tensor(crow, bt, delta, size=(N, B * T),
                                            check_invariants=False)
            if need_w:
                tr = _filter(xc, p.keep_u, p.keep_v, dtype, False, ctx.force_torch)
                gw = (S @ tr.view(B * T, -1)) * gain[:, None]
                del tr
            if need_b and ctx.has_bias:
                kc = _vec(_bias_trace(p, T), weight)
                tt = bt_l % T
                gb = torch.zeros(N, dtype=dtype, device=dev)
                gb.index_add_(0, j, delta * kc[tt])
                gb = gb * gain
            if need_x:
                dense = torch.zeros(B * T * N, dtype=dtype, device=dev)
                dense[bt_l * N + j] = delta
                gI = _filter(dense.view(B, T, N), p.keep_u, p.keep_v, dtype, True,
                             ctx.force_torch)
                del dense
                gI.mul_(gain)
                gx = _input_grad(gI, weight, input_active, ctx.delay)
        else:
            sg = saved[2]
            delta = g_s * sg
            gI = _filter(delta, p.keep_u, p.keep_v, dtype, True, ctx.force_torch)
            del delta
            gI.mul_(gain)
            if need_w:
                gw = gI.reshape(B * T, N).t() @ xc.reshape(B * T, -1).to(dtype)
            if need_b and ctx.has_bias:
                gb = gI.sum((0, 1))
            if need_x:
                gx = _input_grad(gI, weight, input_active, ctx.delay)
        return gx, gw, gb, None, None, None, None, None, None, None


def _input_grad(gI: torch.Tensor, weight: torch.Tensor, input_active, delay: bool) -> torch.Tensor:
    """dL/dx from dL/dI; with input_active, only at the entries the upstream layer reads.

    Below GATHER_DENSITY the active entries are computed one by one (gathered dot products);
    above it one dense product, masked, costs less. Either way entries outside the mask are 0.
    """
    B, T, N = gI.shape
    n_in = weight.shape[1]

    def dense_product() -> torch.Tensor:
        if not delay:
            return gI @ weight
        out = torch.zeros((B, T, n_in), dtype=gI.dtype, device=gI.device)
        out[:, :-1] = gI[:, 1:] @ weight
        return out

    if input_active is None:
        return dense_product()
    flat = input_active.reshape(-1).nonzero().squeeze(1)
    if flat.numel() > GATHER_DENSITY * input_active.numel():
        return dense_product().mul_(input_active)
    if delay:
        gI = _unshift(gI)
    gx = torch.zeros(B * T * n_in, dtype=gI.dtype, device=gI.device)
    rows = gI.reshape(B * T, N)
    wt = weight.t().contiguous()
    chunk = max(1, (1 << 24) // max(N, 1))  # about 16M elements per gathered block
    for k in range(0, flat.numel(), chunk):
        f = flat[k:k + chunk]
        gx[f] = torch.einsum("kn,kn->k", rows.index_select(0, f // n_in),
                             wt.index_select(0, f % n_in))
    return gx.view(B, T, n_in)


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
                        step: LIFStep, *, b_th: float | None = None, beta: float = PAPER_BETA,
                        delay: bool = True) -> torch.Tensor:
    """Plain autograd BPTT: the time loop recorded step by step; b_th=None: unmasked surrogate."""
    xs = _shift(x) if delay else x
    cur = torch.matmul(xs.to(weight.dtype), weight.t())
    if lin_bias is not None:
        cur = cur + lin_bias
    keep_u, keep_v = _scalar(step.keep_u, weight), _scalar(step.keep_v, weight)
    gain, bias, vth = _vec(step.gain, weight), _vec(step.bias, weight), _vec(step.v_th, weight)
    B, T, N = cur.shape
    u = torch.zeros((B, N), dtype=weight.dtype, device=weight.device)
    v = torch.zeros_like(u)
    out = []
    for t in range(T):
        u = u * keep_u + gain * cur[:, t]
        v = v * keep_v + u + bias
        s = _SpikeFn.apply(v - vth, b_th, beta)
        out.append(s)
        v = v - (v * s).detach()  # reset to 0, not differentiated (as in the paper)
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
