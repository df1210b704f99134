"""Torch neuron layers and networks: hand-computed traces, surrogate gradient, delay rule."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from neurocompile.models import (
    IF,
    LI,
    LIF,
    MODEL_NAMES,
    CubaLI,
    CubaLIF,
    build_model,
    classify,
    spike,
    step,
)
from neurocompile.models.neurons import NeuronState, zero_state
from neurocompile.semantics import discretise

F64 = torch.float64


def _trace(layer, current: list[float]) -> tuple[list[float], list[float]]:
    """Run a one-neuron float64 layer; return (outputs, membrane after reset) per step."""
    p = layer.step_params(F64)
    state = zero_state(1, layer.shape, F64)
    outs, vs = [], []
    for i in current:
        out, state = step(torch.tensor([[i]], dtype=F64), state, p)
        outs.append(float(out[0, 0]))
        vs.append(float(state.v[0, 0]))
    return outs, vs


def test_lif_trace_matches_hand_computation():
    # dt/tau = 0.1, gain = dv*r = 0.1: u = 0.5 each step; v = 0.9 v + 0.5; threshold 1.
    layer = LIF(1, dt=1e-3, tau=10e-3, r=1.0, v_threshold=1.0)
    spikes, vs = _trace(layer, [5.0] * 9)
    assert spikes == [0, 0, 1, 0, 0, 1, 0, 0, 1]
    v, expected = 0.0, []
    dv = 1e-3 / 10e-3
    for _ in range(9):
        v = v * (1 - dv) + dv * 1.0 * 5.0 + dv * 0.0
        v = 0.0 if v > 1.0 else v
        expected.append(v)
    assert vs == expected
    assert vs[:2] == [0.5, 0.5 * 0.9 + 0.5]


def test_cuba_lif_trace_matches_hand_computation():
    dt, tau_syn, tau_mem, r, w_in, v_leak = 1e-3, 4e-3, 8e-3, 2.0, 3.0, 0.25
    layer = CubaLIF(1, dt=dt, tau_syn=tau_syn, tau_mem=tau_mem, r=r, w_in=w_in,
                    v_leak=v_leak, v_threshold=0.3)
    current = [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]
    spikes, vs = _trace(layer, current)
    du, dv = dt / tau_syn, dt / tau_mem
    gain, bias = (dv * r) * (du * w_in), dv * v_leak
    u = v = 0.0
    exp_s, exp_v = [], []
    for i in current:
        u = u * (1 - du) + gain * i
        v = v * (1 - dv) + u + bias
        s = v > 0.3
        v = 0.0 if s else v
        exp_s.append(float(s))
        exp_v.append(v)
    assert spikes == exp_s and vs == exp_v
    assert 0 < sum(exp_s) < len(exp_s)  # the trace exercises both branches


def test_if_li_cubali_traces():
    spikes, vs = _trace(IF(1, r=0.4, v_threshold=1.0), [1.0] * 6)
    assert spikes == [0, 0, 1, 0, 0, 1]
    assert vs[:2] == [0.4, 0.4 + 0.4]
    out, _ = _trace(LI(1, dt=1e-3, tau=5e-3, r=1.0, v_leak=0.0), [1.0, 0.0, 0.0])
    assert out == [0.2, 0.2 * 0.8, 0.2 * 0.8 * 0.8]
    out, _ = _trace(CubaLI(1, dt=1e-3, tau_syn=2e-3, tau_mem=4e-3, r=1.0, w_in=1.0),
                    [1.0, 0.0])
    gain = (0.25 * 1.0) * (0.5 * 1.0)
    assert out == [gain, gain * 0.75 + gain * 0.5]


@pytest.mark.parametrize("dtype,np_dtype", [(torch.float64, np.float64),
                                            (torch.float32, np.float32)])
def test_step_params_equal_ir_semantics(dtype, np_dtype):
    rng = np.random.default_rng(0)
    tau_syn, tau_mem = rng.uniform(1e-3, 9e-3, 5), rng.uniform(3e-3, 30e-3, 5)
    r, w_in, v_leak = rng.uniform(0.5, 3, 5), rng.uniform(0.5, 3, 5), rng.uniform(-1, 1, 5)
    vth = rng.uniform(0.5, 2, 5)
    dt = 0.7e-3
    layers = [
        (LIF(5, dt, tau=tau_mem, r=r, v_leak=v_leak, v_threshold=vth),
         nir.LIF(tau=tau_mem, r=r, v_leak=v_leak, v_threshold=vth)),
        (CubaLIF(5, dt, tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, v_threshold=vth,
                 w_in=w_in),
         nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, v_threshold=vth,
                     w_in=w_in)),
        (IF(5, dt, r=r, v_threshold=vth), nir.IF(r=r, v_threshold=vth)),
        (LI(5, dt, tau=tau_mem, r=r, v_leak=v_leak), nir.LI(tau=tau_mem, r=r, v_leak=v_leak)),
        (CubaLI(5, dt, tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, w_in=w_in),
         nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, w_in=w_in)),
    ]
    for layer, node in layers:
        ref = discretise("n", node, dt)
        p = layer.step_params(dtype)
        np.testing.assert_array_equal(p.keep_u.numpy(), (1 - ref.du).astype(np_dtype))
        np.testing.assert_array_equal(p.keep_v.numpy(), (1 - ref.dv).astype(np_dtype))
        np.testing.assert_array_equal(p.gain.numpy(), ref.gain.astype(np_dtype))
        np.testing.assert_array_equal(p.bias.numpy(), ref.bias.astype(np_dtype))
        assert (p.v_threshold is None) == (ref.v_threshold is None)
        if ref.v_threshold is not None:
            np.testing.assert_array_equal(p.v_threshold.numpy(),
                                          ref.v_threshold.astype(np_dtype))
        assert p.keep_u.dtype == dtype


def test_surrogate_gradient_near_and_far_from_threshold():
    x = torch.tensor([-10.0, -1e-3, 0.0, 1e-3, 10.0], dtype=F64, requires_grad=True)
    s = spike(x, slope=10.0)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # exact Heaviside of x > 0
    s.sum().backward()
    g = x.grad.tolist()
    assert g[2] == 1.0 and g[1] > 0.9 and g[3] > 0.9
    assert g[0] < 1e-3 and g[4] < 1e-3 and g[0] > 0
    x2 = torch.tensor([0.5], requires_grad=True)
    spike(x2, slope=100.0).sum().backward()
    assert x2.grad.item() == pytest.approx(1 / 51**2)


def test_spike_and_reset_through_membrane_gradient():
    layer = LIF(3, dt=1e-3, tau=10e-3, r=10.0)
    w = torch.tensor([0.8, 1.0, 3.0], requires_grad=True)
    out, _ = layer(torch.ones(2, 6, 3) * w)
    out.sum().backward()
    assert out[:, :, 2].sum() > 0  # the strongly driven neuron spikes
    assert torch.all(w.grad != 0)


def test_neuron_parameters_stay_float64():
    m = build_model("hrsnn", n_in=4, n_out=2, n_hidden=3, seed=0)
    tau = m.lif1.values()["tau_mem"].detach().clone()
    m.float()
    assert m.lif1.raw_tau_mem.dtype == F64 and torch.equal(m.lif1.values()["tau_mem"], tau)
    assert m.fc1.weight.dtype == torch.float32 and m.readout.tau.dtype == F64
    m.double()
    assert m.fc1.weight.dtype == F64 and torch.equal(m.lif1.values()["tau_mem"], tau)


def test_learned_tau_is_clamped_scaled_and_gets_gradient():
    m = build_model("hrsnn", n_in=6, n_out=3, n_hidden=5, seed=0, tau_mem=20e-3, tau_syn=5e-3)
    layer = m.lif1
    assert layer.tau_units == {"tau_mem": 2.0**-6, "tau_syn": 2.0**-8}
    tau = layer.values()["tau_mem"]
    assert tau.std() > 0 and bool(torch.all((tau >= 10e-3) & (tau <= 40e-3)))  # heterogeneous
    x = (torch.rand(2, 15, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    out, _ = m(x)
    out.square().sum().backward()
    assert torch.any(layer.raw_tau_mem.grad != 0) and torch.any(layer.raw_tau_syn.grad != 0)
    with torch.no_grad():
        layer.raw_tau_mem[0] = -1.0
    used = layer.values()["tau_mem"]
    assert used[0] == layer.tau_min and bool(torch.all(used > 0))
    assert layer.nir_params()["tau_mem"][0] == layer.tau_min
    # Loading NIR values is exact (division by a power of two).
    values = np.array([0.0123456789, 0.02, 0.0300001, 0.04, 0.05])
    layer.load_nir_params({**layer.nir_params(), "tau_mem": values})
    np.testing.assert_array_equal(layer.nir_params()["tau_mem"], values)


def _kwargs(name: str) -> dict:
    if name == "conv":
        return dict(n_out=3, in_shape=(1, 6, 6), channels=2)
    if name == "ff":
        return dict(n_in=8, n_out=3, n_hidden=[6, 5])
    return dict(n_in=8, n_out=3, n_hidden=6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_network_shapes_and_classify(name):
    m = build_model(name, seed=0, **_kwargs(name))
    n_in = 36 if name == "conv" else 8
    x = (torch.rand(2, 7, n_in) < 0.4).float()
    out, spikes = m(x)
    assert out.shape == (2, 7, 3)
    assert all(s.shape[:2] == (2, 7) and set(s.unique().tolist()) <= {0.0, 1.0}
               for s in spikes.values())
    logits = classify(out)
    assert torch.equal(logits, out.mean(dim=1))
    np.testing.assert_allclose(classify(out.detach().numpy()), logits.detach().numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_delay_rule_input_reaches_readout_after_depth_steps(name):
    m = build_model(name, seed=0, **_kwargs(name)).double()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear | torch.nn.Conv2d):
                mod.weight.abs_().mul_(4.0)  # strong excitation: every layer fires
    n_in = 36 if name == "conv" else 8
    x = torch.zeros(1, 8, n_in, dtype=F64)
    x[0, 0] = 1.0  # one input volley at t = 0
    out, spikes = m(x)
    zero_out, zero_spikes = m(torch.zeros_like(x))
    depth = m.depth
    assert depth == (3 if name == "ff" else 2)
    differs = (out != zero_out).any(dim=2)[0]
    assert not differs[:depth].any() and differs[depth]
    for k, layer in enumerate(spikes, start=1):
        d = (spikes[layer] != zero_spikes[layer]).any(dim=2)[0]
        assert not d[:k].any() and d[k], layer


def test_zero_input_at_t0_sees_bias_only():
    m = build_model("ff", n_in=3, n_out=2, n_hidden=[4], seed=0).double()
    with torch.no_grad():
        m.fc1.bias.fill_(50.0)  # the bias alone drives lif1 over threshold at t = 0
    _, spikes = m(torch.zeros(1, 3, 3, dtype=F64))
    assert spikes["lif1"][0, 0].sum() == 4


def test_build_model_errors():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", n_in=3, n_out=2)
    with pytest.raises(ValueError, match="neuron"):
        build_model("ff", n_in=3, n_out=2, neuron="izhikevich")
    with pytest.raises(ValueError, match="square"):
        build_model("conv", n_in=10, n_out=2)
    with pytest.raises(ValueError, match="tau"):
        LIF(2, tau=0.0)


def test_seed_makes_builds_identical():
    a = build_model("rsnn", n_in=5, n_out=2, n_hidden=4, seed=3)
    b = build_model("rsnn", n_in=5, n_out=2, n_hidden=4, seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_functional_step_state_is_pure():
    layer = LIF(2, r=10.0)
    p = layer.step_params(torch.float32)
    state = NeuronState(torch.zeros(1, 2), torch.zeros(1, 2))
    _, new = step(torch.ones(1, 2), state, p)
    assert torch.equal(state.v, torch.zeros(1, 2)) and torch.all(new.v > 0)
