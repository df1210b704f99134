"""Lyapunov Noise Pruning: synapse budget, spectral guarantee, neuron removal, stability."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurocompile import config
from neurocompile.config import ConfigError
from neurocompile.errors import UnsupportedError
from neurocompile.passes.lnp import (
    LNPOptions,
    betweenness_centrality,
    find_recurrent_population,
    laplacian,
    lnp_prune,
    make_hrsnn_graph,
    remove_neurons,
    run_lnp,
    sparsify_synapses,
    spectral_error,
)
from neurocompile.targets.reference import simulate


def _noise(n_in: int, batch: int = 4, steps: int = 200, rate: float = 0.1, seed: int = 7):
    rng = np.random.default_rng(seed)
    return {"input": (rng.random((batch, steps, n_in)) < rate).astype(np.float64)}


@pytest.mark.parametrize("keep_frac", [0.1, 0.37, 0.5, 0.9])
def test_sparsify_keeps_exactly_the_budget(keep_frac):
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (40, 40)) * (rng.random((40, 40)) < 0.6)
    budget = int(round(keep_frac * np.count_nonzero(w)))
    for seed in range(3):
        new, info = sparsify_synapses(w, budget, seed=seed)
        assert np.count_nonzero(new) == budget == info["kept"]
        # Only existing synapses survive, with their sign.
        kept = new != 0
        assert np.all(w[kept] != 0) and np.all(np.sign(new[kept]) == np.sign(w[kept]))


def test_resistance_sampling_preserves_the_laplacian_quadratic_form():
    """Dense 80-neuron graph, half the synapses kept: eps-spectral approximation, eps < 0.3."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (80, 80))
    new, _ = sparsify_synapses(w, w.size // 2, seed=3)
    err = spectral_error(w, new)
    assert err["epsilon"] < 0.3
    assert err["quadratic_form_max"] < 0.1
    assert err["top_eigenvalues"] < 0.1


def test_resistance_sampling_keeps_bridges_that_uniform_sampling_loses():
    """Two dense clusters joined by 3 synapses: the bridges have high effective resistance."""
    rng = np.random.default_rng(2)
    n = 30
    w = np.zeros((2 * n, 2 * n))
    w[:n, :n] = rng.uniform(0.5, 1.0, (n, n))
    w[n:, n:] = rng.uniform(0.5, 1.0, (n, n))
    bridges = [(0, n), (n + 1, 1), (5, n + 5)]
    for i, j in bridges:
        w[i, j] = 0.3
    budget = int(0.4 * np.count_nonzero(w))
    uniform_lost = 0
    for seed in range(5):
        new, _ = sparsify_synapses(w, budget, seed=seed)
        assert all(new[i, j] != 0 for i, j in bridges)  # keep probability 1
        assert spectral_error(w, new)["epsilon"] < 0.7
        keep = np.random.default_rng(seed).choice(np.flatnonzero(w), budget, replace=False)
        uniform_lost += sum(np.ravel_multi_index((i, j), w.shape) not in keep for i, j in bridges)
    # Uniform sampling keeps each bridge with probability 0.4 only.
    assert uniform_lost >= 5


def test_covariance_score_needs_covariance_and_unknown_score_fails():
    w = np.random.default_rng(0).normal(size=(5, 5))
    with pytest.raises(UnsupportedError, match="covariance"):
        sparsify_synapses(w, 10, score="covariance")
    with pytest.raises(UnsupportedError, match="unknown"):
        sparsify_synapses(w, 10, score="magic")


def test_laplacian_rows_sum_to_zero_and_is_symmetric():
    w = np.random.default_rng(0).normal(size=(6, 6))
    lap = laplacian(w)
    np.testing.assert_allclose(lap.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(lap, lap.T)


def test_betweenness_on_known_graphs():
    # Directed path 0 -> 1 -> 2 -> 3 (w[dst, src]): node 1 lies on (0,2),(0,3); node 2 on (0,3),(1,3).
    w = np.zeros((4, 4))
    w[1, 0] = w[2, 1] = w[3, 2] = 1.0
    np.testing.assert_array_equal(betweenness_centrality(w), [0, 2, 2, 0])
    # A strong detour beats a weak direct synapse: 0 -> 2 directly (length 10) vs via 1 (1 + 1).
    w = np.zeros((3, 3))
    w[2, 0], w[1, 0], w[2, 1] = 0.1, 1.0, 1.0
    np.testing.assert_array_equal(betweenness_centrality(w), [0, 1, 0])


def test_remove_neurons_of_silent_neurons_keeps_outputs_identical():
    g = make_hrsnn_graph(10, 20, 3, seed=1)
    silent = np.arange(15, 20)
    for name, axis in (("fc1", 0), ("rec1", 0), ("rec1", 1), ("fc_out", 1)):
        w = np.array(g.nodes[name].weight)
        if axis == 0:
            w[silent] = 0
        else:
            w[:, silent] = 0
        g.nodes[name].weight = w
    pop = find_recurrent_population(g)
    small = remove_neurons(g, pop, np.arange(15))
    assert np.asarray(small.nodes["lif1"].tau_mem).shape == (15,)
    np.testing.assert_array_equal(small.nodes["lif1"].tau_mem, g.nodes["lif1"].tau_mem[:15])
    x = _noise(10, batch=2, steps=80)
    a, b = simulate(g, x), simulate(small, x)
    np.testing.assert_array_equal(a.outputs["output"], b.outputs["output"])
    assert a.counters["lif1"].spikes == b.counters["lif1"].spikes > 0


def test_lnp_prune_budget_report_and_stability():
    g = make_hrsnn_graph(16, 64, 5, seed=3)
    out, rep = lnp_prune(g, 0.8, neuron_sparsity=0.25, rounds=2, lyapunov_steps=200)
    d = rep.to_dict()
    rec, pop = rep.row("rec1"), rep.row("lif1")
    assert pop.neurons_before == 64 and pop.neurons_after == 48
    assert rec.params_before == 64 * 64
    assert rec.params_after == round(0.2 * 64 * 64)  # exactly the budget
    assert rep.row("fc1").params_after == 48 * 16
    assert rep.row("fc_out").params_after == 5 * 48
    lyap = pop.extra
    assert lyap["stable"] and lyap["mle_after"] <= lyap["mle_bound"]
    assert len(lyap["exponents_before"]) == 8 and lyap["mle_after"] == rep.lnp["lyapunov_after"]["max"]
    assert rec.extra["spectral_eps"] < 1.0 and rec.extra["achieved_sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert len(rep.lnp["kept_neurons"]) == 48
    assert d["pass"] == "lnp" and d["options"]["target_sparsity"] == 0.8
    # The input graph is untouched.
    assert np.count_nonzero(g.nodes["rec1"].weight) == 64 * 64
    # Pruned network on noise in the reference simulator: bounded, no runaway firing.
    x = _noise(16, batch=4, steps=300)
    dense, pruned = simulate(g, x), simulate(out, x)
    rate_dense = dense.counters["lif1"].spikes / dense.counters["lif1"].neuron_updates
    rate_pruned = pruned.counters["lif1"].spikes / pruned.counters["lif1"].neuron_updates
    assert 0 < rate_pruned <= max(1.5 * rate_dense, 0.05)
    assert np.all(np.isfinite(pruned.outputs["output"]))
    assert np.abs(pruned.outputs["output"]).max() < 10 * max(1.0, np.abs(dense.outputs["output"]).max())


def test_unreachable_bound_is_reported_as_unstable():
    g = make_hrsnn_graph(8, 24, 3, seed=4)
    _, rep = lnp_prune(g, 0.5, neuron_sparsity=0.0, rounds=1, tol=-1.0, retries=1,
                       lyapunov_steps=120)
    extra = rep.row("lif1").extra
    assert extra["stable"] is False
    assert extra["candidates"] == extra["rejected"] == 3
    assert not any(r["accepted"] for r in rep.lnp["rounds"])
    assert rep.row("rec1").params_after == round(0.5 * 24 * 24)


def test_run_lnp_adapter_and_errors():
    g = make_hrsnn_graph(8, 16, 3, seed=0)
    opts = LNPOptions(sparsity=0.5, neuron_sparsity=0.0, rounds=1, lyapunov_steps=100)
    out, rep = run_lnp(g, opts)
    assert rep.row("rec1").params_after == 128
    with pytest.raises(ConfigError, match="'sparsity'"):  # required: no default
        config.from_mapping(LNPOptions, {"rounds": 1}, "lnp")
    with pytest.raises(ConfigError, match="lnp: rounds: must be >= 1, got 0"):
        config.from_mapping(LNPOptions, {"sparsity": 0.5, "rounds": 0}, "lnp")
    with pytest.raises(UnsupportedError, match="sparsity"):
        lnp_prune(g, 1.0)
    ff = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([2])),
                             "fc": nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
                             "lif": nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                            v_threshold=np.ones(2)),
                             "output": nir.Output(output_type=np.array([2]))},
                      edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(UnsupportedError, match="recurrent"):
        lnp_prune(ff, 0.5)
