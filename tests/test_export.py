"""torch <-> NIR: trained zoo models run in the reference simulator give exactly their outputs."""

from __future__ import annotations

import copy
import json

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurocompile.errors import UnsupportedError
from neurocompile.ir.io import load_graph, save_graph
from neurocompile.ir.validate import check_graph
from neurocompile.models import MODEL_NAMES, READOUT, build_model, classify
from neurocompile.targets.reference import simulate
from neurocompile.train.export import from_nir, round_weights_, to_nir

BATCH, STEPS = 4, 20


def _kwargs(name: str) -> dict:
    if name == "conv":
        return dict(n_out=4, in_shape=(1, 8, 8), channels=3)
    if name == "ff":
        return dict(n_in=64, n_out=4, n_hidden=[24, 16])
    return dict(n_in=64, n_out=4, n_hidden=24)


def _data(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(BATCH, STEPS, 64, generator=g) < 0.3).float()
    if name == "conv":
        x = x.reshape(BATCH, STEPS, 1, 8, 8)
    return x, torch.randint(0, 4, (BATCH,), generator=g)


def _trained(name: str) -> torch.nn.Module:
    """A few Adam steps (float32) on random spike data: weights and taus off their init."""
    m = build_model(name, seed=0, **_kwargs(name))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for step in range(3):
        x, y = _data(name, seed=step + 10)
        out, spikes = m(x)
        loss = F.cross_entropy(classify(out), y) + 1e-3 * sum(s.mean() for s in spikes.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m


@pytest.fixture(scope="module")
def trained() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: _trained(name) for name in MODEL_NAMES}


def _compare(model, np_dtype, x) -> None:
    """Torch readout and every spiking layer equal the reference simulator's, bit for bit."""
    with torch.no_grad():
        out, spikes = model(x)
    graph = to_nir(model, spike_outputs=True)
    res = simulate(graph, {"input": x.numpy()}, dtype=np_dtype)
    ref = res.outputs["output"]
    assert ref.dtype == np_dtype and ref.shape == tuple(out.shape)
    np.testing.assert_array_equal(ref, out.numpy())
    for layer, s in spikes.items():
        ref_s = res.outputs[f"spikes_{layer}"].reshape(s.shape)
        np.testing.assert_array_equal(ref_s, s.numpy(), err_msg=layer)
        assert 0 < s.sum() < s.numel(), layer  # the comparison is not vacuous
    assert np.ptp(ref) > 0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_reference_equals_torch_float64(trained, name):
    # float32-trained weights, run in float64: every synaptic sum is exact (see docs/models.md).
    model = copy.deepcopy(trained[name]).double()
    x, _ = _data(name, seed=99)
    _compare(model, np.float64, x.double())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_reference_equals_torch_float32(trained, name):
    # float32 sums round; on the 2**-12 grid they are exact whatever order BLAS sums in.
    model = round_weights_(copy.deepcopy(trained[name]), frac_bits=12)
    x, _ = _data(name, seed=98)
    _compare(model, np.float32, x)


def test_trained_taus_are_exported_as_used(trained):
    m = trained["hrsnn"]
    node = to_nir(m).nodes["lif1"]
    assert isinstance(node, nir.CubaLIF)
    np.testing.assert_array_equal(node.tau_mem, m.lif1.values()["tau_mem"].detach().numpy())
    np.testing.assert_array_equal(node.tau_syn, m.lif1.values()["tau_syn"].detach().numpy())
    assert np.unique(node.tau_mem).size == node.tau_mem.size  # heterogeneous


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_from_nir_round_trip_exact(trained, name, tmp_path):
    model = trained[name]
    x, _ = _data(name, seed=97)
    graph = to_nir(model)
    path = save_graph(graph, tmp_path / f"{name}.nir")
    for g in (graph, load_graph(path)):
        rebuilt = from_nir(g)
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        assert rebuilt.fc_out.weight.dtype == torch.float32
        with torch.no_grad():
            a, sa = model(x)
            b, sb = rebuilt(x)
        assert torch.equal(a, b)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    double = from_nir(to_nir(copy.deepcopy(model).double()))
    assert double.fc_out.weight.dtype == torch.float64


def test_graph_structure_and_metadata(trained):
    g = to_nir(trained["rsnn"])
    check_graph(g)
    assert list(g.nodes) == ["input", "fc1", "lif1", "rec1", "fc_out", "readout", "output"]
    assert ("lif1", "rec1") in g.edges and ("rec1", "lif1") in g.edges
    assert isinstance(g.nodes["rec1"], nir.Linear) and isinstance(g.nodes["readout"], nir.LI)
    assert g.metadata["dt"] == 1e-3 and g.metadata["model"] == "rsnn"
    assert g.metadata["readout"] == READOUT
    assert json.loads(g.metadata["model_config"])["n_hidden"] == 24
    conv = to_nir(trained["conv"])
    assert list(conv.nodes) == ["input", "conv1", "lif1", "pool1", "flat", "fc_out", "readout",
                                "output"]
    assert isinstance(conv.nodes["pool1"], nir.SumPool2d)
    assert conv.nodes["lif1"].tau.shape == (3, 8, 8)
    ff = to_nir(trained["ff"])
    assert list(ff.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "fc_out", "readout", "output"]


def test_avg_pool_and_cuba_variants_match_reference():
    m = build_model("conv", n_out=3, in_shape=(1, 6, 6), channels=2, pool_kind="avg", seed=1)
    assert isinstance(to_nir(m).nodes["pool1"], nir.AvgPool2d)
    x, _ = _data("conv")
    _compare(m.double(), np.float64, x[..., :6, :6].contiguous().double())
    ff = build_model("ff", n_in=64, n_out=3, n_hidden=[16], neuron="cubalif", seed=2).double()
    assert isinstance(to_nir(ff).nodes["lif1"], nir.CubaLIF)
    _compare(ff, np.float64, _data("ff")[0].double())


def test_export_errors():
    m = build_model("ff", n_in=4, n_out=2, n_hidden=3)
    with pytest.raises(UnsupportedError, match="dt"):
        to_nir(m, dt=2e-3)
    assert to_nir(m, dt=1e-3).metadata["dt"] == 1e-3
    with pytest.raises(UnsupportedError, match="zoo"):
        to_nir(torch.nn.Linear(2, 2))
    g = to_nir(m)
    bare = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": 1e-3})
    with pytest.raises(UnsupportedError, match="metadata"):
        from_nir(bare)
    bad = to_nir(m)
    bad.nodes["fc1"] = nir.Affine(weight=np.zeros((5, 4)), bias=np.zeros(5))
    with pytest.raises(UnsupportedError, match="fc1"):
        from_nir(bad)


def test_round_weights_snaps_to_grid():
    m = round_weights_(build_model("ff", n_in=4, n_out=2, n_hidden=3, seed=0), frac_bits=8)
    w = m.fc1.weight.detach().numpy() * 256
    np.testing.assert_array_equal(w, np.round(w))
