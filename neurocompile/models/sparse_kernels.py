"""Kernels of the sparse spiking backward: the LIF scan, the time filters and the sparse dW product.

Each has a torch version (any device, any float dtype; the reference) and, for CUDA float32
when Triton is importable and `USE_TRITON` is left on, a Triton kernel. The torch LIF loop
advances the state with `neurocompile.models.neurons.step`; the Triton scan computes the same
operations in the same order with FMA contraction off, so both give the same spikes.

Time filter (the neuron's two exponentials, time constants shared by the population):

    forward  F:   a[t] = keep_u a[t-1] + x[t];   y[t] = keep_v y[t-1] + a[t]
    adjoint  F^T: z[t] = x[t] + keep_v z[t+1];   y[t] = z[t] + keep_u y[t+1]
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from neurocompile.models.neurons import NeuronState, StepParams, step, zero_state

try:  # Triton is optional: CUDA float32 uses it when present
    import triton
    import triton.language as tl

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the install
    HAS_TRITON = False

USE_TRITON = HAS_TRITON  # set False to force the torch versions everywhere
CHUNK_BYTES = 16 << 20  # rows of the trace one dW pass gathers from (an L2-sized share)

__all__ = ["CHUNK_BYTES", "HAS_TRITON", "USE_TRITON", "chunk_rows", "csr", "dw_product",
           "index_dtype", "lif_scan", "spmm_into", "time_filter", "use_triton"]


def use_triton(t: torch.Tensor, force_torch: bool = False) -> bool:
    """Whether the Triton kernel runs for tensor t (CUDA float32, Triton present and on)."""
    return USE_TRITON and not force_torch and t.is_cuda and t.dtype == torch.float32


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
        # y may be x (in place): each element is loaded before the same program stores it
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
            if REVERSE:
                y = x + keep_v * y
                a = y + keep_u * a
                tl.store(y_ptr + p, a, mask=m)
            else:
                a = keep_u * a + x
                y = keep_v * y + a
                tl.store(y_ptr + p, y, mask=m)

    @triton.jit
    def _dw_kernel(ptr_ptr, row_ptr, val_ptr, tr_ptr, dw_ptr, N, NIN, NIB,
                   BLOCK_E: tl.constexpr, BLOCK_I: tl.constexpr):
        # program (j, input block) of chunk c: dW[j, block] += sum_e val[e] * tr[row[e], block]
        # over the active entries e of neuron j whose trace row lies in chunk c
        pid = tl.program_id(0)
        c = tl.program_id(1)
        j = pid // NIB
        ib = pid - j * NIB
        start = tl.load(ptr_ptr + c * N + j)
        end = tl.load(ptr_ptr + c * N + j + 1)
        offs_i = ib * BLOCK_I + tl.arange(0, BLOCK_I)
        mi = offs_i < NIN
        acc = tl.zeros([BLOCK_I], dtype=tl.float32)
        for e0 in range(start, end, BLOCK_E):
            offs_e = e0 + tl.arange(0, BLOCK_E)
            me = offs_e < end
            r = tl.load(row_ptr + offs_e, mask=me, other=0).to(tl.int64)
            v = tl.load(val_ptr + offs_e, mask=me, other=0.0)
            tr = tl.load(tr_ptr + r[:, None] * NIN + offs_i[None, :],
                         mask=me[:, None] & mi[None, :], other=0.0)
            acc += tl.sum(v[:, None] * tr, axis=0)
        tl.atomic_add(dw_ptr + j.to(tl.int64) * NIN + offs_i, acc, mask=mi & (end > start))


# ---------------------------------------------------------------------------------------------
# LIF scan
# ---------------------------------------------------------------------------------------------

def lif_scan(cur: torch.Tensor, p: StepParams, b_th: float, beta: float,
             force_torch: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The LIF loop on input currents (B, T, N): spikes, masked surrogate, active mask.

    p: per-step parameters in cur's dtype (from `neurons.torch_step_params`). The active set is
    |v - v_th| < b_th on the membrane before the reset; the surrogate there is
    1 / (beta |v - v_th| + 1)^2 and 0 elsewhere.
    """
    B, T, N = cur.shape
    if use_triton(cur, force_torch):
        cur = cur.contiguous()
        s = torch.empty_like(cur)
        sg = torch.empty_like(cur)
        act = torch.empty(cur.shape, dtype=torch.int8, device=cur.device)
        BLOCK = 128
        grid = (B, triton.cdiv(N, BLOCK))
        _lif_scan_kernel[grid](cur, s, sg, act, p.gain.contiguous(), p.bias.contiguous(),
                               p.v_threshold.contiguous(), T, N, float(p.keep_u[0]),
                               float(p.keep_v[0]), float(b_th), float(beta), BLOCK=BLOCK,
                               enable_fp_fusion=False)
        return s, sg, act.view(torch.bool)
    membrane = StepParams(p.keep_u, p.keep_v, p.gain, p.bias, None)  # v before the reset
    s = torch.empty_like(cur)
    sg = torch.empty_like(cur)
    act = torch.empty(cur.shape, dtype=torch.bool, device=cur.device)
    state = zero_state(B, (N,), cur.dtype, cur.device)
    for t in range(T):
        v, state = step(cur[:, t], state, membrane)
        spk = v > p.v_threshold
        ad = (v - p.v_threshold).abs()
        a = ad < b_th
        s[:, t] = spk
        act[:, t] = a
        sg[:, t] = torch.where(a, 1.0 / (beta * ad + 1.0) ** 2, 0.0)
        state = NeuronState(state.u, torch.where(spk, 0.0, v))
    return s, sg, act


# ---------------------------------------------------------------------------------------------
# Time filters
# ---------------------------------------------------------------------------------------------

def time_filter(x: torch.Tensor, keep_u: float, keep_v: float, dtype: torch.dtype,
                reverse: bool, out: torch.Tensor | None = None,
                force_torch: bool = False) -> torch.Tensor:
    """F (trace) or F^T (reverse) of x (B, T, C) along time, in `dtype`; out may be x itself."""
    B, T, C = x.shape
    if out is None:
        out = torch.empty((B, T, C), dtype=dtype, device=x.device)
    if use_triton(out, force_torch):
        xin = x.view(torch.uint8) if x.dtype == torch.bool else x
        grid = (B, triton.cdiv(C, 128))
        _filter_kernel[grid](xin.contiguous(), out, T, C, float(np.float32(keep_u)),
                             float(np.float32(keep_v)), REVERSE=reverse, BLOCK=128,
                             enable_fp_fusion=False)
        return out
    ku = torch.tensor(keep_u, dtype=dtype, device=x.device)
    kv = torch.tensor(keep_v, dtype=dtype, device=x.device)
    a = torch.zeros((B, C), dtype=dtype, device=x.device)
    z = torch.zeros_like(a)
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        xt = x[:, t].to(dtype)
        if reverse:
            z = xt + kv * z
            a = z + ku * a
            out[:, t] = a
        else:
            a = ku * a + xt
            z = kv * z + a
            out[:, t] = z
    return out


# ---------------------------------------------------------------------------------------------
# dW = Delta^T tr over the active set, chunked over trace rows
# ---------------------------------------------------------------------------------------------

def chunk_rows(n_in: int, itemsize: int) -> int:
    """Trace rows per dW chunk: CHUNK_BYTES of trace, at least one row."""
    return max(1, CHUNK_BYTES // max(1, n_in * itemsize))


def dw_product(ptr: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor, tr: torch.Tensor,
               n_out: int, per_chunk: int, force_torch: bool = False) -> torch.Tensor:
    """dW[j, :] = sum over active entries e of neuron j: vals[e] * tr[rows[e], :].

    Entries are ordered by (chunk, neuron j, row) with chunk = row // per_chunk; ptr[c * n_out
    + j] is where the entries of (c, j) start. Each chunk reads a band of trace rows that fits
    in cache while every neuron's entries in it are summed, so each trace row is fetched from
    memory about once instead of once per active neuron.
    """
    n_rows, n_in = tr.shape
    n_chunks = (ptr.numel() - 1) // n_out
    if use_triton(tr, force_torch) and vals.dtype == torch.float32:
        dw = torch.zeros((n_out, n_in), dtype=tr.dtype, device=tr.device)
        if vals.numel():
            BLOCK_I = 64
            nib = triton.cdiv(n_in, BLOCK_I)
            _dw_kernel[(n_out * nib, n_chunks)](ptr, rows, vals, tr, dw, n_out, n_in, nib,
                                                BLOCK_E=32, BLOCK_I=BLOCK_I)
        return dw
    dw = torch.zeros((n_out, n_in), dtype=tr.dtype, device=tr.device)
    bounds = ptr[::n_out].tolist()  # start of each chunk, and the end
    for c in range(n_chunks):
        e0, e1 = bounds[c], bounds[c + 1]
        if e1 == e0:
            continue
        r0 = c * per_chunk
        r1 = min(n_rows, r0 + per_chunk)
        crow = ptr[c * n_out:(c + 1) * n_out + 1] - e0
        with warnings.catch_warnings():  # CSR support is marked beta in torch
            warnings.simplefilter("ignore", UserWarning)
            S = torch.sparse_csr_tensor(crow, rows[e0:e1] - r0, vals[e0:e1],
                                        size=(n_out, r1 - r0), check_invariants=False)
            dw.addmm_(S, tr[r0:r1])
    return dw


def csr(crow: torch.Tensor, col: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int]
        ) -> torch.Tensor:
    """A CSR tensor from trusted (sorted, in-range) indices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, vals, size=shape, check_invariants=False)


def spmm_into(S: torch.Tensor, D: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = S @ D (S sparse CSR, D dense), written into out (2-D, contiguous)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.addmm(out, S, D, beta=0, out=out)


def index_dtype(n: int) -> torch.dtype:
    """int32 when every index below n fits, else int64."""
    return torch.int32 if n < 2**31 - 1 else torch.int64

