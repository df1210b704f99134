"""Norse 1.1 models exported with norse.torch.utils.export_nir.to_nir, run through the norse
import profile (--from norse), against Norse's own simulation of the same modules.

Norse writes tau = dt / tau_inv and CubaLIF without w_in; the profile restores tau = 1/tau_inv
and w_in = 1/du. Norse applies a layer in the step it receives, so neurocompile's output is
k steps later for k neuron layers (the documented shift) and is otherwise equal spike for spike.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.interop import PROFILE_KEY, import_graph
from neurocompile.ir import validate
from neurocompile.ir.io import load_graph
from neurocompile.semantics import discretise
from neurocompile.targets.reference import simulate

torch = pytest.importorskip("torch")
norse = pytest.importorskip("norse.torch")
from norse.torch.functional.lif import LIFParameters  # noqa: E402
from norse.torch.utils.export_nir import to_nir  # noqa: E402

STEPS, BATCH, SIZES = 60, 4, (5, 8, 3)


def _params(n: int, v_th: float = 0.3) -> LIFParameters:
    """Per-neuron parameters (nir.write cannot store Norse's 0-dim defaults)."""
    return LIFParameters(tau_syn_inv=torch.full((n,), 200.0), tau_mem_inv=torch.full((n,), 100.0),
                         v_leak=torch.zeros(n), v_th=torch.full((n,), v_th),
                         v_reset=torch.zeros(n))


def _net(bias: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    n_in, n_hid, n_out = SIZES
    net = norse.SequentialState(torch.nn.Linear(n_in, n_hid, bias=bias), norse.LIFCell(_params(n_hid)),
                                torch.nn.Linear(n_hid, n_out, bias=bias), norse.LIFCell(_params(n_out)))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[2].weight.mul_(6.0)
    return net


def _export(net, path) -> nir.NIRGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(path, to_nir(net, torch.zeros(1, SIZES[0])))
    return load_graph(path, check=False)  # Norse's Input/Output carry the batch dim


def _x(seed: int = 1) -> np.ndarray:
    """(time, batch, features): Norse's layout."""
    return (np.random.default_rng(seed).random((STEPS, BATCH, SIZES[0])) < 0.3).astype(np.float32)


def _norse_run(net, x: np.ndarray) -> np.ndarray:
    """Norse stepping its cells over time (batch, time, features)."""
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = net(torch.as_tensor(x[t]), state)
            outs.append(out)
    return torch.stack(outs).numpy().swapaxes(0, 1)


def _ours(graph, x: np.ndarray) -> np.ndarray:
    return np.asarray(simulate(graph, {"input": x.swapaxes(0, 1)}).outputs["output"])


def test_export_without_a_profile_is_warned_and_refused(tmp_path):
    graph = _export(_net(), tmp_path / "n.nir")
    assert validate(graph)  # Input (1, 5) for a (5,) population: a shape mismatch as written
    fixed, notes = import_graph(graph)
    assert validate(fixed) == []  # singleton dimensions tolerated
    assert any("pass --from norse" in n and "tau = dt / tau_inv" in n for n in notes)
    cuba = fixed.nodes["1"]
    assert np.allclose(cuba.tau_mem, 1e-5) and np.all(np.asarray(cuba.w_in) == 1)
    with pytest.raises(UnsupportedError, match="dt/tau_syn = 200 > 1"):
        discretise("1", cuba, 1e-3)


def test_profile_restores_tau_and_w_in_and_records_them(tmp_path):
    graph, notes = import_graph(_export(_net(), tmp_path / "n.nir"), "norse")
    assert not any("--from" in n for n in notes)
    assert graph.metadata[PROFILE_KEY] == "norse" and graph.metadata["dt"] == 1e-3
    p = discretise("1", graph.nodes["1"], 1e-3)
    np.testing.assert_allclose(p.dv, 0.1, rtol=1e-6)   # dt * tau_mem_inv
    np.testing.assert_allclose(p.du, 0.2, rtol=1e-6)   # dt * tau_syn_inv
    np.testing.assert_allclose(p.gain, 0.1, rtol=1e-6)  # input added unscaled: gain = dv
    again, _ = import_graph(graph, "norse")  # recorded: not applied twice
    np.testing.assert_array_equal(again.nodes["1"].tau_mem, graph.nodes["1"].tau_mem)
    with pytest.raises(UnsupportedError, match="imported with profile 'norse' already"):
        import_graph(graph, "snntorch")


def test_feedforward_equals_norse_after_the_depth_shift(tmp_path):
    net = _net()
    graph, _ = import_graph(_export(net, tmp_path / "n.nir"), "norse")
    x = _x()
    ref, ours = _norse_run(net, x), _ours(graph, x)
    depth = 2
    assert ref.sum() > 50
    assert not ours[:, :depth].any()
    np.testing.assert_array_equal(ours[:, depth:], ref[:, :-depth])
    wrong, _ = import_graph(_export(net, tmp_path / "w.nir"))  # no profile: taus as written
    with pytest.raises(UnsupportedError, match="dt/tau"):
        _ours(wrong, x)


def test_missing_w_in_alone_silences_the_network(tmp_path):
    """With the taus restored but w_in left at the file's 1, the input gain is du = 0.2 times
    too small: (almost) no spikes against Norse's."""
    net = _net()
    graph, _ = import_graph(_export(net, tmp_path / "n.nir"), "norse")
    for name in ("1", "3"):
        graph.nodes[name].w_in = np.ones_like(graph.nodes[name].w_in)
    x = _x()
    ours, ref = _ours(graph, x).sum(), _norse_run(net, x).sum()
    assert ref > 50 and ours < ref / 20


def test_bias_is_seen_one_step_early(tmp_path):
    """Named difference BIAS: each neuron reads its Affine's bias at t = 0, before any input
    can arrive; Norse's own modules stepped with one step per connection match exactly."""
    net = _net(bias=True)
    graph, _ = import_graph(_export(net, tmp_path / "b.nir"), "norse")
    x = _x()
    ours, ref = _ours(graph, x), _norse_run(net, x)
    assert not np.array_equal(ours[:, 2:], ref[:, :-2])
    fc1, lif1, fc2, lif2 = net
    s1, s2, prev_x, prev_s1, out = None, None, torch.zeros(BATCH, SIZES[0]), \
        torch.zeros(BATCH, SIZES[1]), []
    with torch.no_grad():
        for t in range(STEPS):
            z1, s1 = lif1(fc1(prev_x), s1)
            z2, s2 = lif2(fc2(prev_s1), s2)
            out.append(z2)
            prev_x, prev_s1 = torch.as_tensor(x[t]), z1
    delayed = torch.stack(out, 1).numpy()
    assert delayed.sum() > 50
    np.testing.assert_array_equal(ours, delayed)


@pytest.mark.parametrize("cell", ["box", "iaf"])
def test_lif_box_and_iaf_cells_equal_norse(tmp_path, cell):
    """LIFBoxCell (current-free LIF, exported as LIF) and IAFCell (as IF)."""
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.module.iaf import IAFCell
    from norse.torch.module.lif_box import LIFBoxCell

    def neuron(n):
        if cell == "box":
            return LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.full((n,), 100.0),
                                               v_leak=torch.zeros(n), v_th=torch.full((n,), 0.3),
                                               v_reset=torch.zeros(n)))
        return IAFCell(IAFParameters(v_th=torch.full((n,), 1.0), v_reset=torch.zeros(n)))

    torch.manual_seed(2)
    n_in, n_hid, n_out = SIZES
    net = norse.SequentialState(torch.nn.Linear(n_in, n_hid, bias=False), neuron(n_hid),
                                torch.nn.Linear(n_hid, n_out, bias=False), neuron(n_out))
    with torch.no_grad():
        net[0].weight.mul_(6.0 if cell == "box" else 2.0)
        net[2].weight.mul_(6.0 if cell == "box" else 2.0)
    graph, _ = import_graph(_export(net, tmp_path / "b.nir"), "norse")
    assert type(graph.nodes["1"]).__name__ == ("LIF" if cell == "box" else "IF")
    x = _x()
    ref, ours = _norse_run(net, x), _ours(graph, x)
    assert ref.sum() > 20
    np.testing.assert_array_equal(ours[:, 2:], ref[:, :-2])


def test_recurrent_cell_has_no_nir_export():
    """Norse 1.1's exporter has no rule for LIFRecurrentCell: the node comes out as None,
    which no NIR reader (nir.write included) accepts."""
    net = norse.SequentialState(torch.nn.Linear(5, 8), norse.LIFRecurrentCell(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_nir(net, torch.zeros(1, 5))
    assert any(node is None for node in graph.nodes.values())


@pytest.mark.lava
@pytest.mark.slow
def test_lava_float_runs_the_norse_profile_like_norse(tmp_path):
    from test_lava_helpers import ensure_lava_env

    from neurocompile.targets import get_target

    if ensure_lava_env() is None:
        pytest.skip("no Lava interpreter: set NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")
    net = _net()
    graph, _ = import_graph(_export(net, tmp_path / "n.nir"), "norse")
    x = _x()
    target = get_target("lava")
    res = target.run(target.compile(graph, {}), {"input": x.swapaxes(0, 1)})
    ref = _norse_run(net, x)
    np.testing.assert_array_equal(res.outputs["output"][:, 2:], ref[:, :-2])
    np.testing.assert_array_equal(res.outputs["output"], _ours(graph, x))
