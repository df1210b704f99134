"""Sparse spiking backward: forward spikes and gradients against dense BPTT references."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
import torch.utils._python_dispatch
import torch.utils._pytree

from neurocompile.errors import UnsupportedError
from neurocompile.models import sparse_backward as sb
from neurocompile.models import sparse_kernels as sk
from neurocompile.models.sparse_backward import (
    SparseLIF,
    dense_lif_reference,
    lif_step,
    sparse_lif,
)

B, T, N_IN, N = 3, 40, 12, 9


def _data(seed: int, dtype=torch.float64, n_in=N_IN, n=N, rate=0.3, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(B, T, n_in, generator=g) < rate).to(dtype)
    w = (torch.randn(n, n_in, generator=g, dtype=dtype) * scale / math.sqrt(n_in))
    b = torch.randn(n, generator=g, dtype=dtype) * 0.5
    r = torch.randn(B, T, n, generator=g, dtype=dtype)  # upstream gradient dL/ds
    return x, w, b, r


STEPS = {
    "lif": dict(tau_mem=10e-3, r=2.0, v_leak=0.1, v_threshold=1.0),
    "cubalif": dict(tau_mem=8e-3, tau_syn=4e-3, r=1.5, v_leak=0.0, v_threshold=0.8),
}


def _grads(fn, x, w, b, r):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    b = b.clone().requires_grad_(True)
    s = fn(x, w, b)
    (s * r).sum().backward()
    return s.detach(), x.grad, w.grad, b.grad


def _close(a, b_, tol=1e-10):
    assert torch.allclose(a, b_, rtol=tol, atol=tol), (a - b_).abs().max().item()


@pytest.mark.parametrize("kind", ["lif", "cubalif"])
@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_full_band_equals_dense_bptt(kind, mode):
    x, w, b, r = _data(1)
    st = lif_step(N, **STEPS[kind])
    ref = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=None), x, w, b, r)
    got = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=math.inf, mode=mode)[0],
                 x, w, b, r)
    assert torch.equal(got[0], ref[0])
    assert ref[0].sum() > 0 and ref[0].mean() < 0.9  # some but not all neurons spike
    for a, c in zip(got[1:], ref[1:], strict=True):
        _close(a, c)


@pytest.mark.parametrize("kind", ["lif", "cubalif"])
@pytest.mark.parametrize("delay", [True, False])
def test_narrow_band_equals_masked_dense_bptt(kind, delay):
    x, w, b, r = _data(2)
    st = lif_step(N, **STEPS[kind])
    band = 0.15
    ref = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=band, delay=delay),
                 x, w, b, r)
    full = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=None, delay=delay),
                  x, w, b, r)
    got = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=band, delay=delay)[0], x, w, b, r)
    assert torch.equal(got[0], ref[0])
    for a, c in zip(got[1:], ref[1:], strict=True):
        _close(a, c)
    # the band matters: the masked gradient is not the full one
    assert not torch.allclose(full[2], ref[2], rtol=1e-3, atol=1e-6)


def test_active_set_is_the_band():
    x, w, b, _ = _data(3)
    st = lif_step(N, **STEPS["lif"])
    s, act = sparse_lif(x, w, b, st, b_th=0.1)
    assert act.dtype == torch.bool and act.shape == s.shape
    frac = act.float().mean().item()
    assert 0.0 < frac < 0.5
    _, act_all = sparse_lif(x, w, b, st, b_th=math.inf)
    assert bool(act_all.all())


@pytest.mark.parametrize("chunk_bytes", [1 << 24, 200])  # one dW chunk, many
def test_two_layer_chain_with_input_active(chunk_bytes, monkeypatch):
    """Layer 2 evaluates dL/ds1 only on layer 1's active set; gradients equal masked BPTT."""
    monkeypatch.setattr(sk, "CHUNK_BYTES", chunk_bytes)
    x, w1, b1, _ = _data(4, n=10)
    g = torch.Generator().manual_seed(5)
    w2 = torch.randn(7, 10, generator=g, dtype=torch.float64) * 4.0 / math.sqrt(10)
    r = torch.randn(B, T, 7, generator=g, dtype=torch.float64)
    st1, st2 = lif_step(10, **STEPS["lif"]), lif_step(7, **STEPS["cubalif"])
    band = 0.3

    def run(sparse: bool):
        W1 = w1.clone().requires_grad_(True)
        W2 = w2.clone().requires_grad_(True)
        if sparse:
            s1, a1 = sparse_lif(x, W1, None, st1, b_th=band)
            s2, _ = sparse_lif(s1, W2, None, st2, b_th=band, input_active=a1)
        else:
            s1 = dense_lif_reference(x, W1, None, st1, b_th=band)
            s2 = dense_lif_reference(s1, W2, None, st2, b_th=band)
        (s2 * r).sum().backward()
        return s2.detach(), W1.grad, W2.grad

    got, ref = run(True), run(False)
    assert torch.equal(got[0], ref[0])
    assert ref[1].abs().sum() > 0
    _close(got[1], ref[1])
    _close(got[2], ref[2])


def test_forward_matches_reference_simulator():
    """Spikes equal the NumPy reference simulator on the NIR graph Affine -> LIF."""
    from neurocompile.targets.reference import simulate

    x, w, b, _ = _data(6)
    p = STEPS["lif"]
    dt = 1e-3
    st = lif_step(N, dt=dt, **p)
    s, _ = sparse_lif(x, w, b, st, b_th=0.2)
    ones = np.ones(N)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([N_IN])),
            "fc": nir.Affine(weight=w.numpy(), bias=b.numpy()),
            "lif": nir.LIF(tau=p["tau_mem"] * ones, r=p["r"] * ones, v_leak=p["v_leak"] * ones,
                           v_threshold=p["v_threshold"] * ones),
            "output": nir.Output(output_type=np.array([N])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata={"dt": dt},
    )
    res = simulate(graph, {"input": x.numpy()}, T, dt=dt)
    out = res.outputs["output"]
    assert out.sum() > 0
    np.testing.assert_array_equal(out.astype(bool), s.numpy().astype(bool))


def test_float32_sparse_matches_dense_modes():
    x, w, b, r = _data(7, dtype=torch.float32)
    st = lif_step(N, **STEPS["cubalif"])
    a = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=0.2)[0], x, w, b, r)
    c = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=0.2, mode="dense")[0], x, w, b, r)
    assert torch.equal(a[0], c[0])
    for u, v in zip(a[1:], c[1:], strict=True):
        assert torch.allclose(u, v, rtol=1e-5, atol=1e-5)


def test_sparse_saves_less_than_autograd():
    """What the sparse backward keeps is a fraction of what autograd BPTT keeps."""
    x, w, b, _ = _data(8, dtype=torch.float32, n_in=50, n=40, rate=0.1)
    st = lif_step(40, **STEPS["lif"])
    w.requires_grad_(True)

    def saved_bytes(fn) -> int:
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return total

    sparse = saved_bytes(lambda: sparse_lif(x, w, b, st, b_th=0.2))
    dense = saved_bytes(lambda: dense_lif_reference(x, w, b, st, b_th=0.2))
    assert sparse < 0.5 * dense


def test_layer_module_and_errors():
    torch.manual_seed(0)
    layer = SparseLIF(N_IN, N, tau_mem=5e-3, dtype=torch.float64)
    assert layer.b_th == pytest.approx(0.2)
    x, _, _, r = _data(9)
    with torch.no_grad():
        layer.fc.weight.mul_(8.0)
    s = layer(x)
    assert s.shape == (B, T, N) and layer.last_active.shape == (B, T, N)
    (s * r).sum().backward()
    g_sparse = layer.fc.weight.grad.clone()
    layer.fc.weight.grad = None
    layer.sparse_backward = False
    (layer(x) * r).sum().backward()
    _close(g_sparse, layer.fc.weight.grad)
    with pytest.raises(UnsupportedError, match="tau_mem"):
        lif_step(3, tau_mem=np.array([1e-2, 2e-2, 1e-2]))
    with pytest.raises(UnsupportedError, match="b_th"):
        sparse_lif(x, layer.fc.weight, None, layer.step, b_th=0.0)
    with pytest.raises(UnsupportedError, match="steps"):
        sparse_lif(x[0], layer.fc.weight, None, layer.step, b_th=0.1)


@pytest.mark.parametrize("kind", ["lif", "cubalif"])
def test_forward_equals_models_layers(kind):
    """Spikes equal neurocompile.models' Affine -> LIF/CubaLIF on shifted input (float32)."""
    networks = pytest.importorskip("neurocompile.models.networks")
    neurons = pytest.importorskip("neurocompile.models.neurons")
    torch.manual_seed(3)
    fc = networks.Affine(N_IN, N)
    with torch.no_grad():
        fc.weight.mul_(20.0)
    if kind == "lif":
        lif = neurons.LIF(N, 1e-3, tau=10e-3, r=2.0, v_leak=0.1, v_threshold=1.0)
    else:
        lif = neurons.CubaLIF(N, 1e-3, tau_syn=4e-3, tau_mem=8e-3, r=1.5, v_leak=0.0,
                              v_threshold=0.8, w_in=2.0)
    x, _, _, _ = _data(10, dtype=torch.float32)
    ref, _ = lif(fc(networks.shift(x)))
    s, _ = sparse_lif(x, fc.weight, fc.bias, sb.step_from_layer(lif), b_th=0.2)
    assert ref.sum() > 0
    assert torch.equal(s, ref)


class _Sizes(torch.utils._python_dispatch.TorchDispatchMode):
    """Record (numel, op) of every new strided tensor an op returns (not views, not out=)."""

    def __init__(self):
        super().__init__()
        self.outputs: list[tuple[int, int, str]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        leaves = torch.utils._pytree.tree_leaves((args, kwargs or {}))
        seen = {t.untyped_storage().data_ptr() for t in leaves
                if isinstance(t, torch.Tensor) and t.layout == torch.strided}
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                ptr = t.untyped_storage().data_ptr()
                if ptr not in seen:
                    self.outputs.append((t.numel(), ptr, str(func)))
        return out


@pytest.mark.parametrize("mode", ["sparse", "dense"])
def test_backward_allocates_nothing_dense(mode):
    """Sparse: no tensor of B*T*N or B*T*n_in entries is made in backward but dL/dx itself.

    The dense closed form (the disabled version) must fail the same check."""
    n_in, n = 24, 32
    x, w, b, r = _data(11, n_in=n_in, n=n, rate=0.3)
    st = lif_step(n, **STEPS["cubalif"])
    ia = torch.rand(B, T, n_in, generator=torch.Generator().manual_seed(0)) < 0.5
    X, W, Bb = (a.clone().requires_grad_(True) for a in (x, w, b))
    s, act = sparse_lif(X, W, Bb, st, b_th=0.1, mode=mode, input_active=ia)
    assert 0 < act.double().mean() < 0.2
    with _Sizes() as rec:
        gx, _, _ = torch.autograd.grad(s, (X, W, Bb), r)
    limit = B * T * min(n, n_in)
    big = [(k, f) for k, ptr, f in rec.outputs
           if k >= limit and ptr != gx.untyped_storage().data_ptr()]
    if mode == "sparse":
        assert big == [], big
    else:
        assert big  # dense work: the masked dense-BPTT buffers


def test_disabled_adjoint_filter_fails(monkeypatch):
    """dL/dx without the adjoint time filter (Delta gain W alone) is not the BPTT gradient."""
    x, w, b, r = _data(12)
    st = lif_step(N, **STEPS["lif"])
    ref = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=0.3), x, w, b, r)
    got = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=0.3)[0], x, w, b, r)
    _close(got[1], ref[1])
    real = sk.time_filter

    def no_adjoint(x, keep_u, keep_v, dtype, reverse, out=None, force_torch=False):
        if reverse:
            return x if out is None else out
        return real(x, keep_u, keep_v, dtype, reverse, out=out, force_torch=force_torch)

    monkeypatch.setattr(sk, "time_filter", no_adjoint)
    bad = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=0.3)[0], x, w, b, r)
    assert not torch.allclose(bad[1], ref[1], rtol=1e-3, atol=1e-6)
    _close(bad[2], ref[2])  # dW does not use the adjoint filter


@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("chunk_bytes", [1 << 24, 8 * N_IN * 7, 1])
def test_chunked_dw_and_dx_equal_dense_bptt(delay, chunk_bytes, monkeypatch):
    """dW summed over many trace chunks (down to one row each) and dL/dx equal BPTT."""
    monkeypatch.setattr(sk, "CHUNK_BYTES", chunk_bytes)
    x, w, b, r = _data(13)
    st = lif_step(N, **STEPS["cubalif"])
    ref = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=None, delay=delay),
                 x, w, b, r)
    got = _grads(lambda x, w, b: sparse_lif(x, w, b, st, b_th=math.inf, delay=delay)[0],
                 x, w, b, r)
    for a, c in zip(got[1:], ref[1:], strict=True):
        _close(a, c)
    # first layer (x needs no gradient): the trace is saved by forward instead
    W = w.clone().requires_grad_(True)
    (sparse_lif(x, W, b, st, b_th=math.inf, delay=delay)[0] * r).sum().backward()
    _close(W.grad, ref[2])


def test_forward_equals_neurons_step():
    """The spikes are those of neurocompile.models.neurons.step on the same currents."""
    from neurocompile.models.neurons import step, torch_step_params, zero_state

    x, w, b, _ = _data(14)
    p = STEPS["cubalif"]
    st = lif_step(N, **p)
    s, _ = sparse_lif(x, w, b, st, b_th=0.2, delay=False)
    ones = torch.ones(N, dtype=torch.float64)
    nir_params = dict(tau_syn=p["tau_syn"] * ones, tau_mem=p["tau_mem"] * ones,
                      r=p["r"] * ones, v_leak=p["v_leak"] * ones,
                      v_threshold=p["v_threshold"] * ones, w_in=ones)
    sp = torch_step_params("CubaLIF", nir_params, 1e-3, torch.float64)
    cur = x @ w.t() + b
    state = zero_state(B, (N,), torch.float64)
    ref = []
    for t in range(T):
        z, state = step(cur[:, t], state, sp)
        ref.append(z)
    ref = torch.stack(ref, 1)
    assert 0 < ref.sum() < ref.numel()
    assert torch.equal(s, ref)


def test_input_gradient_with_frozen_weights():
    """dL/dx alone (weight and bias need no gradient): BPTT's, no trace built."""
    x, w, b, r = _data(15)
    st = lif_step(N, **STEPS["lif"])
    ref = _grads(lambda x, w, b: dense_lif_reference(x, w, b, st, b_th=0.25), x, w, b, r)
    X = x.clone().requires_grad_(True)
    (sparse_lif(X, w, b, st, b_th=0.25)[0] * r).sum().backward()
    assert ref[1].abs().max() > 0
    _close(X.grad, ref[1])
