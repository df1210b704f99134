"""Norse target: Norse's neuron step functions under the contract's timing, equal to the
reference on the generated matrix of graphs, with no time shift. Also pins why Norse's own NIR
import is not used: it matches only shifted by the network depth."""

from __future__ import annotations

import nir
import numpy as np
import pytest

pytest.importorskip("norse")

import torch  # noqa: E402
from backend_graphs import random_graph, spikes  # noqa: E402

from neurocompile.errors import NeurocompileError, UnsupportedError  # noqa: E402
from neurocompile.targets import get_target  # noqa: E402

SEEDS = range(18)


def run(target: str, graph, x, **options):
    t = get_target(target)
    return t.run(t.compile(graph, options), {"input": x})


def _spike_outputs(graph) -> list[str]:
    """Output nodes fed by spiking nodes (the readout Output carries a membrane)."""
    return [n for n, node in graph.nodes.items() if isinstance(node, nir.Output) and n != "out_v"]


@pytest.mark.parametrize("weights", ["dyadic", "normal"])
@pytest.mark.parametrize("seed", SEEDS)
def test_float64_spikes_and_counters_equal_reference(seed, weights):
    graph, shape = random_graph(seed, weights)
    x = spikes(seed, 3, 30, shape)
    ref, got = run("reference", graph, x), run("norse", graph, x)
    assert ref.total("spikes") > x.sum()
    assert got.counters_dict() == ref.counters_dict()
    for name in _spike_outputs(graph):
        np.testing.assert_array_equal(got.outputs[name], ref.outputs[name], err_msg=name)
    # the LI / CubaLI readout membrane: Norse's operation order, equal to the last bits
    np.testing.assert_allclose(got.outputs["out_v"], ref.outputs["out_v"], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_agreement(seed):
    graph, shape = random_graph(seed, "normal")
    x = spikes(seed, 3, 30, shape)
    ref, got = run("reference", graph, x, dtype="float32"), run("norse", graph, x, dtype="float32")
    for name in _spike_outputs(graph):
        assert np.mean(got.outputs[name] == ref.outputs[name]) >= 0.99, name


def test_norse_step_functions_do_the_work(monkeypatch):
    """Every neuron kind is advanced by Norse's own functional step."""
    from norse.torch.functional import iaf, leaky_integrator, leaky_integrator_box, lif, lif_box

    calls: dict[str, int] = {}
    for module, fn in ((lif_box, "lif_box_feed_forward_step"), (lif, "lif_feed_forward_step"),
                       (iaf, "iaf_feed_forward_step"),
                       (leaky_integrator_box, "li_box_feed_forward_step"),
                       (leaky_integrator, "li_feed_forward_step")):
        original = getattr(module, fn)

        def counted(*a, _fn=fn, _orig=original, **k):
            calls[_fn] = calls.get(_fn, 0) + 1
            return _orig(*a, **k)

        monkeypatch.setattr(module, fn, counted)
    for seed in range(12):
        graph, shape = random_graph(seed)
        run("norse", graph, spikes(seed, 1, 5, shape))
    assert set(calls) == {"lif_box_feed_forward_step", "lif_feed_forward_step",
                          "iaf_feed_forward_step", "li_box_feed_forward_step",
                          "li_feed_forward_step"}


def test_a_lowering_that_ignores_r_is_caught(monkeypatch):
    """Norse's from_nir drops r of LIF and IF; the comparison above catches that."""
    from neurocompile.targets.norse import target

    init = target.NorsePopulation.__init__

    def drop_r(self, node, *args):
        init(self, node, *args)
        if isinstance(node, (nir.LIF, nir.IF)):
            self.scale = None

    monkeypatch.setattr(target.NorsePopulation, "__init__", drop_r)
    differs = 0
    for seed in range(6):
        graph, shape = random_graph(seed)
        x = spikes(seed, 2, 30, shape)
        ref, got = run("reference", graph, x), run("norse", graph, x)
        differs += not all(np.array_equal(got.outputs[k], ref.outputs[k])
                           for k in _spike_outputs(graph))
    assert differs >= 3


def test_norse_from_nir_matches_only_after_a_shift_by_the_depth():
    """Norse's own import runs edges without the one-step delay: on a two-layer feed-forward
    graph (r = 1, float32-exact weights, the case it imports exactly) its spikes equal the
    reference's two steps later, and at no smaller shift."""
    import norse.torch as nt

    rng = np.random.default_rng(0)

    def lif(n, vth):
        return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.full(n, vth))

    w = lambda *s: rng.integers(-48, 64, s) / 64  # noqa: E731
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([6])), "fc1": nir.Affine(w(5, 6), w(5) / 8),
               "lif1": lif(5, 0.5), "fc2": nir.Affine(w(3, 5), np.zeros(3)),
               "lif2": lif(3, 0.25), "output": nir.Output(np.array([3]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")], metadata={"dt": 1e-3}, type_check=False)
    x = spikes(0, 2, 30, (6,), 0.5)
    ref = run("reference", graph, x).outputs["output"]
    ours = run("norse", graph, x).outputs["output"]
    np.testing.assert_array_equal(ours, ref)
    module = nt.from_nir(graph, dt=1e-3)
    state, ys = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            y, state = module(torch.tensor(x[:, t], dtype=torch.float32), state)
            ys.append(y.numpy())
    theirs = np.stack(ys, 1)
    assert ref.sum() > 0
    same = [np.array_equal(theirs[:, :30 - s], ref[:, s:]) for s in range(4)]
    assert same == [False, False, True, False]


def test_refusals():
    graph, _ = random_graph(0)
    with pytest.raises(UnsupportedError, match="fixed point"):
        get_target("norse").compile(graph, {"fixed_point": True})
    shape = np.shape(graph.nodes["fc1"].weight)[:1]
    graph.nodes["h1"] = nir.LIF(tau=np.full(shape, 2e-3), r=np.ones(shape),
                                v_leak=np.zeros(shape), v_threshold=np.ones(shape),
                                v_reset=np.full(shape, 0.5))
    with pytest.raises(NeurocompileError, match="node 'h1'.*v_reset"):
        get_target("norse").compile(graph)
