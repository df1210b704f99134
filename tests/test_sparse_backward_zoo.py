"""build_model("ff", sparse_backward=True): same forward and export, the sparse layer's gradients."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurocompile.errors import UnsupportedError
from neurocompile.models import build_model, classify, shift
from neurocompile.models.sparse_backward import (
    PAPER_BAND,
    PAPER_BETA,
    dense_lif_reference,
    step_from_layer,
)
from neurocompile.targets.reference import simulate
from neurocompile.train.export import from_nir, to_nir

BATCH, STEPS, N_IN = 4, 20, 64
KW = dict(n_in=N_IN, n_out=4, n_hidden=[24, 16])


def _x(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(BATCH, STEPS, N_IN, generator=g) < 0.3).float()


def _pair(neuron: str, b_th: float | None = None, dtype=torch.float32):
    """The default ff model and a sparse-backward one holding the same weights."""
    dense = build_model("ff", seed=0, neuron=neuron, **KW).to(dtype)
    sparse = build_model("ff", seed=1, neuron=neuron, sparse_backward=True, b_th=b_th,
                         **KW).to(dtype)
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


def _loss(out: torch.Tensor, spikes: dict[str, torch.Tensor]) -> torch.Tensor:
    """Readout and direct spike terms, with fixed random weights (every path gets gradient)."""
    g = torch.Generator().manual_seed(5)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in spikes.values():
        loss = loss + 0.1 * (s * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    return loss


def _reference(model, x: torch.Tensor, b_th: float | None):
    """Autograd BPTT with the paper's surrogate through the ff structure (b_th None: unmasked)."""
    spikes, s = {}, x
    for k in range(1, model.n_layers + 1):
        fc, lif = getattr(model, f"fc{k}"), getattr(model, f"lif{k}")
        s = dense_lif_reference(s, fc.weight, fc.bias, step_from_layer(lif), b_th=b_th,
                                beta=PAPER_BETA)
        spikes[f"lif{k}"] = s
    out, _ = model.readout(model.fc_out(shift(s)))
    return out, spikes


def _grads(model, x, forward=None) -> dict[str, torch.Tensor]:
    model.zero_grad()
    out, spikes = (forward or model)(x)
    _loss(out, spikes).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("neuron", ["lif", "cubalif"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_bit_identical(neuron, dtype):
    dense, sparse = _pair(neuron, dtype=dtype)
    x = _x().to(dtype)
    out_d, sp_d = dense(x)
    out_s, sp_s = sparse(x)
    assert torch.equal(out_d, out_s)
    assert sp_d.keys() == sp_s.keys() == {"lif1", "lif2"}
    for name in sp_d:
        assert torch.equal(sp_d[name], sp_s[name]), name
        assert 0 < sp_s[name].sum() < sp_s[name].numel(), name  # not vacuous


@pytest.mark.parametrize("neuron", ["lif", "cubalif"])
def test_band_covering_everything_gives_dense_bptt(neuron):
    # b_th far above any |v - v_th|: every entry active, so the gradient is plain BPTT with the
    # paper's surrogate (beta = 100) and the reset not differentiated.
    _, sparse = _pair(neuron, b_th=1e6, dtype=torch.float64)
    x = _x(1).double()
    got = _grads(sparse, x)
    want = _grads(sparse, x, lambda x: _reference(sparse, x, None))
    for name in want:
        assert want[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("neuron", ["lif", "cubalif"])
def test_default_band_gives_masked_bptt(neuron):
    # b_th None: 0.2 * v_th per layer, chained through input_active; equal to BPTT with the
    # surrogate masked to the band in both layers, and different from the unmasked gradient.
    _, sparse = _pair(neuron, dtype=torch.float64)
    assert sparse.band(1) == sparse.band(2) == PAPER_BAND * 1.0
    x = _x(2).double()
    got = _grads(sparse, x)
    masked = _grads(sparse, x, lambda x: _reference(sparse, x, PAPER_BAND))
    unmasked = _grads(sparse, x, lambda x: _reference(sparse, x, None))
    for name in masked:
        torch.testing.assert_close(got[name], masked[name], rtol=1e-10, atol=1e-12, msg=name)
    assert got["fc1.weight"].abs().max() > 0
    assert not torch.allclose(got["fc1.weight"], unmasked["fc1.weight"], rtol=1e-3)


def test_sparse_gradient_differs_from_default_backward():
    # Documented difference: beta 100 vs slope 10, and the reset (not) differentiated.
    dense, sparse = _pair("lif", b_th=1e6, dtype=torch.float64)
    x = _x(3).double()
    g_d, g_s = _grads(dense, x), _grads(sparse, x)
    torch.testing.assert_close(g_s["fc_out.weight"], g_d["fc_out.weight"], rtol=0, atol=0)
    assert not torch.allclose(g_s["fc1.weight"], g_d["fc1.weight"], rtol=1e-3)


def test_export_simulate_and_round_trip():
    # A few training steps through the sparse backward, then NIR: the reference simulator
    # gives the model's readout and spikes bit for bit (float32 weights run in float64).
    torch.manual_seed(0)
    model = build_model("ff", seed=0, sparse_backward=True, b_th=0.3, **KW)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(3):
        x = _x(10 + step)
        y = torch.randint(0, 4, (BATCH,), generator=torch.Generator().manual_seed(step))
        out, spikes = model(x)
        loss = F.cross_entropy(classify(out), y) + 1e-3 * sum(s.mean() for s in spikes.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = copy.deepcopy(model).double()
    x = _x(99).double()
    with torch.no_grad():
        out, spikes = model(x)
    graph = to_nir(model, spike_outputs=True)
    res = simulate(graph, {"input": x.numpy()}, dtype=np.float64)
    np.testing.assert_array_equal(res.outputs["output"], out.numpy())
    for name, s in spikes.items():
        np.testing.assert_array_equal(res.outputs[f"spikes_{name}"], s.numpy(), err_msg=name)
        assert 0 < s.sum() < s.numel(), name
    # the config round-trips; the nodes are those of the default model with the same weights
    cfg = json.loads(graph.metadata["model_config"])
    assert cfg["sparse_backward"] is True and cfg["b_th"] == 0.3
    rebuilt = from_nir(graph)
    assert rebuilt.config == model.config and rebuilt.sparse_backward and rebuilt.b_th == 0.3
    with torch.no_grad():
        assert torch.equal(rebuilt(x)[0], out)
    plain = build_model("ff", **KW).double()
    plain.load_state_dict(model.state_dict())
    g_plain = to_nir(plain, spike_outputs=True)
    assert set(g_plain.nodes) == set(graph.nodes) and g_plain.edges == graph.edges
    for name, node in graph.nodes.items():
        other = g_plain.nodes[name]
        assert type(node) is type(other), name
        for attr in ("weight", "bias", "tau", "tau_mem", "tau_syn", "r", "v_threshold"):
            if hasattr(node, attr):
                np.testing.assert_array_equal(getattr(node, attr), getattr(other, attr))


def test_default_config_round_trips():
    m = build_model("ff", **KW)
    assert m.config["sparse_backward"] is False and m.config["b_th"] is None
    assert from_nir(to_nir(m)).sparse_backward is False


@pytest.mark.parametrize("name,kwargs,reason", [
    ("rsnn", dict(n_in=N_IN, n_out=4, n_hidden=8), "recurrent"),
    ("hrsnn", dict(n_in=N_IN, n_out=4, n_hidden=8), "tau"),
    ("conv", dict(n_out=4, in_shape=(1, 8, 8), channels=2), "conv"),
])
def test_unsupported_models_raise(name, kwargs, reason):
    with pytest.raises(UnsupportedError, match=rf"model '{name}': sparse_backward=True .*{reason}"):
        build_model(name, sparse_backward=True, **kwargs)
    with pytest.raises(UnsupportedError, match=rf"model '{name}': b_th=0.2"):
        build_model(name, b_th=0.2, **kwargs)
    assert build_model(name, sparse_backward=False, **kwargs).name == name


def test_bad_band_raises():
    with pytest.raises(UnsupportedError, match="needs sparse_backward=True"):
        build_model("ff", b_th=0.2, **KW)
    with pytest.raises(UnsupportedError, match="must be > 0, got -0.1"):
        build_model("ff", sparse_backward=True, b_th=-0.1, **KW)
