"""Lyapunov Noise Pruning: each of the four steps, their dependence on the time constants, the
composed pass, its options and its command line."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from click.testing import CliRunner

from neurocompile import config
from neurocompile.cli.main import cli, main
from neurocompile.config import ConfigError
from neurocompile.errors import UnsupportedError
from neurocompile.ir.io import load_graph, save_graph
from neurocompile.passes.lnp import LNPOptions, lnp_prune, run_lnp
from neurocompile.passes.lnp_graph import (
    find_recurrent_population,
    make_hrsnn_graph,
    noise_drive,
    population_params,
    remove_neurons,
    timescales,
    with_timescales,
)
from neurocompile.passes.lnp_steps import (
    NoiseResponse,
    betweenness,
    betweenness_neuron_prune,
    delocalise_eigenvectors,
    ipr,
    noise_response,
    noise_synapse_prune,
    optimise_timescales,
    random_synapse_prune,
)
from neurocompile.semantics.float import step
from neurocompile.targets.reference import simulate

FAST = dict(optimise=False, lyapunov_steps=150, lyapunov_batch=2)


def _noise(n_in: int, batch: int = 4, steps: int = 200, rate: float = 0.1, seed: int = 7):
    rng = np.random.default_rng(seed)
    return {"input": (rng.random((batch, steps, n_in)) < rate).astype(np.float64)}


def _permuted_timescales(g: nir.NIRGraph, seed: int) -> nir.NIRGraph:
    pop = find_recurrent_population(g)
    tm, ts = timescales(g, pop)
    perm = np.random.default_rng(100 + seed).permutation(pop.size)
    return with_timescales(g, pop, tm[perm], ts[perm])


def _response(n: int, *, cov=None, local=None, gain=None, slope=None) -> NoiseResponse:
    """A hand-made linearised model, to test the steps' arithmetic in isolation."""
    one = np.ones(n)
    return NoiseResponse(jacobian=np.eye(n), cov=np.eye(n) if cov is None else cov,
                         coupling=np.zeros((n, n)),
                         local_exponent=-0.05 * one if local is None else local,
                         exponents=np.array([-0.01]), rates=0.1 * one,
                         slope=one if slope is None else slope, gain=one if gain is None else gain)


def _radius(w, resp):
    return np.abs(np.linalg.eigvals(resp.gain[:, None] * w * resp.slope[None, :])).max()


# -- the time constants drive the selection ------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permuting_time_constants_changes_kept_neurons_and_synapses(seed):
    g = make_hrsnn_graph(12, 48, 4, seed=seed)
    gp = _permuted_timescales(g, seed)
    kw = dict(neuron_sparsity=0.25, seed=seed, **FAST)
    a_out, a = lnp_prune(g, 0.7, **kw)
    b_out, b = lnp_prune(gp, 0.7, **kw)
    again_out, again = lnp_prune(g, 0.7, **kw)
    assert again.lnp["kept_neurons"] == a.lnp["kept_neurons"]  # deterministic given the seed
    np.testing.assert_array_equal(again_out.nodes["rec1"].weight, a_out.nodes["rec1"].weight)
    assert a.lnp["kept_neurons"] != b.lnp["kept_neurons"]
    # Step 1 alone (same random neurons in both): the recurrent masks differ too.
    kw1 = dict(kw, betweenness=False, delocalise=False)
    m1 = lnp_prune(g, 0.7, **kw1)[0].nodes["rec1"].weight != 0
    m2 = lnp_prune(gp, 0.7, **kw1)[0].nodes["rec1"].weight != 0
    assert m1.sum() == m2.sum() and np.mean(m1 != m2) > 0.05


def test_synapse_scores_follow_lyapunov_timescales():
    """Equal weights and covariance: synapses among slow neurons (|lambda_i| small) are kept
    far more often than among fast ones; with equal timescales they would tie."""
    n = 20
    w = np.ones((n, n)) - np.eye(n)
    local = np.where(np.arange(n) < n // 2, -0.002, -0.2)
    resp = _response(n, local=local)
    slow = np.ix_(range(n // 2), range(n // 2))
    fast = np.ix_(range(n // 2, n), range(n // 2, n))
    kept_slow = kept_fast = 0
    for seed in range(5):
        new, _ = noise_synapse_prune(w, 100, resp, reweight=False, seed=seed)
        kept_slow += np.count_nonzero(new[slow])
        kept_fast += np.count_nonzero(new[fast])
    assert kept_slow > 5 * kept_fast


@pytest.mark.parametrize("seed", [0, 2])
def test_linearised_covariance_matches_the_simulated_membranes(seed):
    """The noise-response model's covariance of v' against the covariance measured by running
    the population (the contract's step) on long noise: entries correlate above 0.7."""
    g = make_hrsnn_graph(16, 40, 3, seed=seed)
    resp = noise_response(g, steps=300, batch=4)
    pop = find_recurrent_population(g)
    d = population_params(g, pop).prepare()
    drive = noise_drive(g, pop, 1500, 4, 0.1, seed=5)
    w = np.asarray(g.nodes["rec1"].weight)
    u, v = d.state(4)
    s, vpre, rows = np.zeros((4, 40), bool), np.zeros((4, 40)), []
    for t in range(1500):
        step(d, u, v, s.astype(float) @ w.T + drive[:, t], out=s, pre_reset=vpre)
        if t >= 100:
            rows.append(vpre.copy())
    emp = np.cov(np.concatenate(rows).T)
    off = ~np.eye(40, dtype=bool)
    assert np.corrcoef(emp[off], resp.cov[off])[0, 1] > 0.7
    assert np.corrcoef(np.diag(emp), np.diag(resp.cov))[0, 1] > 0.7


# -- step 1: synapses -----------------------------------------------------------------------------
@pytest.mark.parametrize("keep_frac", [0.1, 0.37, 0.9])
def test_noise_synapse_prune_keeps_exactly_the_budget_and_signs(keep_frac):
    g = make_hrsnn_graph(8, 30, 3, seed=1)
    resp = noise_response(g, steps=120, batch=2)
    w = np.asarray(g.nodes["rec1"].weight)
    budget = int(round(keep_frac * np.count_nonzero(w)))
    new, info = noise_synapse_prune(w, budget, resp, seed=3)
    kept = new != 0
    assert kept.sum() == budget == info["kept"]
    assert np.all(np.sign(new[kept]) == np.sign(w[kept]))


def test_reweighting_preserves_the_linearised_spectral_radius():
    g = make_hrsnn_graph(8, 40, 3, seed=2)
    resp = noise_response(g, steps=120, batch=2)
    w = np.asarray(g.nodes["rec1"].weight)
    new, _ = noise_synapse_prune(w, 400, resp, seed=0)
    assert _radius(new, resp) == pytest.approx(_radius(w, resp), rel=1e-9)
    # Skipping the reweighting (or the step: uniform removal) shrinks the radius.
    plain, _ = noise_synapse_prune(w, 400, resp, reweight=False, seed=0)
    assert _radius(plain, resp) < 0.6 * _radius(w, resp)
    assert _radius(random_synapse_prune(w, 400, seed=0), resp) < 0.6 * _radius(w, resp)


def test_pass_synapse_step_preserves_the_radius_and_skipping_it_does_not():
    g = make_hrsnn_graph(12, 40, 4, seed=4)
    kw = dict(neuron_sparsity=0.25, delocalise=False, **FAST)
    out_on, on = lnp_prune(g, 0.8, **kw)
    out_off, off = lnp_prune(g, 0.8, noise_synapses=False, **kw)
    assert on.lnp["kept_neurons"] == off.lnp["kept_neurons"]
    pop = find_recurrent_population(g)
    base = remove_neurons(g, pop, np.array(on.lnp["kept_neurons"]))
    resp = noise_response(base, steps=150, batch=2, seed=1)  # the pass's model of this network
    ref = _radius(np.asarray(base.nodes["rec1"].weight), resp)
    assert _radius(np.asarray(out_on.nodes["rec1"].weight), resp) == pytest.approx(ref, rel=1e-9)
    assert _radius(np.asarray(out_off.nodes["rec1"].weight), resp) < 0.7 * ref
    assert on.lnp["steps"]["synapses"]["method"] == "noise"


def test_noise_covariance_keeps_bridges_between_clusters():
    """Moore & Chaudhuri's bracket: neurons in different clusters are uncorrelated, so the few
    synapses joining the clusters get keep probability one; uniform removal loses them."""
    n = 15
    w = np.zeros((2 * n, 2 * n))
    rng = np.random.default_rng(0)
    w[:n, :n] = rng.uniform(0.5, 1.0, (n, n))
    w[n:, n:] = rng.uniform(0.5, 1.0, (n, n))
    bridges = [(0, n), (n + 1, 1), (5, n + 5)]
    for i, j in bridges:
        w[i, j] = 0.5
    cov = np.zeros((2 * n, 2 * n))
    cov[:n, :n] = cov[n:, n:] = 0.9
    np.fill_diagonal(cov, 1.0)
    resp = _response(2 * n, cov=cov)
    budget = int(0.3 * np.count_nonzero(w))
    lost = 0
    for seed in range(5):
        new, _ = noise_synapse_prune(w, budget, resp, reweight=False, seed=seed)
        assert all(new[i, j] != 0 for i, j in bridges)
        rnd = random_synapse_prune(w, budget, seed=seed)
        lost += sum(rnd[i, j] == 0 for i, j in bridges)
    assert lost >= 5


# -- step 2: neurons ------------------------------------------------------------------------------
def test_betweenness_on_known_graphs():
    # Directed path 0 -> 1 -> 2 -> 3 (coupling[dst, src]): 1 and 2 each lie on 2 of 6 pairs.
    c = np.zeros((4, 4))
    c[1, 0] = c[2, 1] = c[3, 2] = 1.0
    np.testing.assert_allclose(betweenness(c), np.array([0, 2, 2, 0]) / 6)
    # A strong detour beats a weak direct coupling: 0 -> 2 directly (length 10) vs via 1 (2).
    c = np.zeros((3, 3))
    c[2, 0], c[1, 0], c[2, 1] = 0.1, 1.0, 1.0
    np.testing.assert_allclose(betweenness(c), [0, 0.5, 0])


def test_betweenness_prune_keeps_the_hubs():
    """Two rings joined through hub neurons 0 and 10: keeping half, the hubs survive."""
    n = 20
    c = np.zeros((n, n))
    for ring in (range(0, 10), range(10, 20)):
        r = list(ring)
        for a, b in zip(r, r[1:] + r[:1]):
            c[b, a] = c[a, b] = 1.0
    c[10, 0] = c[0, 10] = 1.0
    keep, bc = betweenness_neuron_prune(c, 10)
    assert {0, 10} <= set(keep.tolist()) and len(keep) == 10
    assert bc[keep].min() >= np.delete(bc, keep).max()


def test_betweenness_ties_are_broken_by_coupling_strength():
    """All-to-all equal couplings: every shortest path is direct, every betweenness 0; the
    neurons with the strongest couplings are kept, not the lowest indices."""
    n = 8
    c = np.ones((n, n))
    strong = [2, 5, 7]
    c[strong, :] *= 1.5
    keep, bc = betweenness_neuron_prune(c, 3)
    assert np.all(bc == 0) and keep.tolist() == strong


def test_pass_neuron_step_keeps_the_highest_betweenness_and_skipping_it_does_not():
    g = make_hrsnn_graph(12, 40, 4, seed=5)
    bc = betweenness(noise_response(g, steps=150, batch=2, seed=0).coupling)
    _, on = lnp_prune(g, 0.5, neuron_sparsity=0.5, delocalise=False, **FAST)
    _, off = lnp_prune(g, 0.5, neuron_sparsity=0.5, delocalise=False, betweenness=False, **FAST)
    k_on, k_off = on.lnp["kept_neurons"], off.lnp["kept_neurons"]
    assert len(k_on) == len(k_off) == 20
    assert bc[k_on].min() >= np.delete(bc, k_on).max()
    assert bc[k_off].sum() < bc[k_on].sum()


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
    small = remove_neurons(g, find_recurrent_population(g), np.arange(15))
    np.testing.assert_array_equal(small.nodes["lif1"].tau_mem, g.nodes["lif1"].tau_mem[:15])
    x = _noise(10, batch=2, steps=80)
    a, b = simulate(g, x), simulate(small, x)
    np.testing.assert_array_equal(a.outputs["output"], b.outputs["output"])
    assert a.counters["lif1"].spikes == b.counters["lif1"].spikes > 0


# -- step 3: delocalisation -----------------------------------------------------------------------
def test_delocalise_adds_exactly_n_synapses_and_lowers_the_ipr():
    """A hub makes the leading eigenvector localised; the added synapses spread it, far more
    than as many synapses added at random."""
    rng = np.random.default_rng(0)
    n = 30
    w = rng.choice([-0.3, 0.3], (n, n)) * (rng.random((n, n)) < 0.15)
    np.fill_diagonal(w, 0)
    w[0, 1:8] = w[1:8, 0] = 1.0
    before = ipr(w, 1)
    new, info = delocalise_eigenvectors(w, 12, _response(n), k=1, seed=0)
    assert np.count_nonzero(new) == np.count_nonzero(w) + 12
    np.testing.assert_array_equal(new[w != 0], w[w != 0])  # existing synapses untouched
    assert info["added"] == 12 and info["ipr_before"] == pytest.approx(before)
    assert info["ipr_after"] < 0.8 * before
    free = np.flatnonzero((w == 0) & ~np.eye(n, dtype=bool))
    random_ipr = []
    for seed in range(5):
        rnd = w.copy()
        pick = np.random.default_rng(seed).choice(free, 12, replace=False)
        rnd.reshape(-1)[pick] = 0.3
        random_ipr.append(ipr(rnd, 1))
    assert info["ipr_after"] < min(random_ipr) - 0.03


def test_pass_delocalise_step_counts_and_skipping_it_leaves_ipr_higher():
    g = make_hrsnn_graph(12, 40, 4, seed=6)
    kw = dict(neuron_sparsity=0.25, add_fraction=0.1, **FAST)
    out_on, on = lnp_prune(g, 0.8, **kw)
    out_off, off = lnp_prune(g, 0.8, delocalise=False, **kw)
    budget = round(0.2 * 40 * 40)
    assert np.count_nonzero(out_on.nodes["rec1"].weight) == budget
    assert np.count_nonzero(out_off.nodes["rec1"].weight) == budget
    s3 = on.lnp["steps"]["delocalise"]
    assert s3["added"] == round(0.1 * budget) and "delocalise" not in off.lnp["steps"]
    assert s3["ipr_after"] < s3["ipr_before"]


# -- step 4: time constants ----------------------------------------------------------------------
def test_optimise_timescales_moves_the_exponent_to_the_target_and_is_seeded():
    g = make_hrsnn_graph(8, 24, 3, seed=2, rec_radius=0.3)
    kw = dict(trials=10, timeout_s=60, target_mle=-0.01, steps=150, batch=2, seed=1)
    out, info = optimise_timescales(g, **kw)
    assert info["trials"] == 10
    assert abs(info["mle_best"] - kw["target_mle"]) < 0.7 * abs(info["mle_start"] - kw["target_mle"])
    pop = find_recurrent_population(g)
    tm0, ts0 = timescales(g, pop)
    tm1, ts1 = timescales(out, pop)
    assert not np.allclose(tm0, tm1)
    np.testing.assert_allclose(tm1 / tm0, info["best"]["tau_mem_scale"] * np.ones(24), rtol=1e-9)
    again, info2 = optimise_timescales(g, **kw)
    assert info2["best"] == info["best"]
    # The time limit bounds the search.
    _, quick = optimise_timescales(g, **dict(kw, trials=1000, timeout_s=0.5))
    assert 1 <= quick["trials"] < 1000


def test_pass_optimise_step_changes_time_constants_only_when_on():
    g = make_hrsnn_graph(8, 24, 3, seed=2, rec_radius=0.3)
    kw = dict(neuron_sparsity=0.0, delocalise=False, lyapunov_steps=150, lyapunov_batch=2,
              trials=8)
    out_on, on = lnp_prune(g, 0.5, **kw)
    out_off, off = lnp_prune(g, 0.5, optimise=False, **kw)
    np.testing.assert_array_equal(out_off.nodes["lif1"].tau_mem, g.nodes["lif1"].tau_mem)
    assert not np.allclose(out_on.nodes["lif1"].tau_mem, g.nodes["lif1"].tau_mem)
    target = -0.01
    assert abs(on.row("lif1").extra["mle_after"] - target) < abs(
        off.row("lif1").extra["mle_after"] - target)


# -- the pass, options, command line --------------------------------------------------------------
def test_lnp_prune_budget_report_and_bounded_activity():
    g = make_hrsnn_graph(16, 48, 5, seed=3)
    out, rep = lnp_prune(g, 0.8, neuron_sparsity=0.25, trials=5, lyapunov_steps=150)
    rec, pop = rep.row("rec1"), rep.row("lif1")
    assert pop.neurons_before == 48 and pop.neurons_after == 36
    assert rec.params_after == round(0.2 * 48 * 48)
    assert rep.row("fc1").params_after == 36 * 16 and rep.row("fc_out").params_after == 5 * 36
    assert set(rep.lnp["steps"]) == {"neurons", "synapses", "delocalise", "timescales"}
    assert np.count_nonzero(g.nodes["rec1"].weight) == 48 * 48  # input untouched
    x = _noise(16, batch=4, steps=300)
    pruned = simulate(out, x)
    assert 0 < pruned.counters["lif1"].spikes
    assert np.all(np.isfinite(pruned.outputs["output"]))
    assert pop.extra["mle_after"] < 0.05


def test_run_lnp_adapter_and_errors():
    g = make_hrsnn_graph(8, 16, 3, seed=0)
    opts = LNPOptions(sparsity=0.5, neuron_sparsity=0.0, optimise=False, delocalise=False,
                      lyapunov_steps=100)
    _, rep = run_lnp(g, opts)
    assert rep.row("rec1").params_after == 128
    with pytest.raises(ConfigError, match="'sparsity'"):
        config.from_mapping(LNPOptions, {"trials": 1}, "lnp")
    with pytest.raises(ConfigError, match="lnp: trials: must be >= 1, got 0"):
        config.from_mapping(LNPOptions, {"sparsity": 0.5, "trials": 0}, "lnp")
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


def test_cli_reaches_the_step_options(tmp_path, capsys):
    g = make_hrsnn_graph(8, 24, 3, seed=0)
    src, dst = tmp_path / "g.nir", tmp_path / "p.nir"
    save_graph(g, src)
    args = ["prune", str(src), "--method", "lnp", "--sparsity", "0.5", "--neuron-sparsity",
            "0.25", "--no-optimise", "--no-betweenness", "--add-fraction", "0.1",
            "--lyapunov-steps", "100", "-o", str(dst), "--json", "-", "-q"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{"):])
    opts = rep["options"]
    assert opts["optimise"] is False and opts["betweenness"] is False
    assert opts["add_fraction"] == 0.1
    out = load_graph(dst)
    assert np.count_nonzero(out.nodes["rec1"].weight) == round(0.5 * 24 * 24)
    assert np.asarray(out.nodes["lif1"].tau_mem).size == 18
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["prune", str(src), "--method", "lnp", "--sparsity", "0.5", "--trials", "0",
              "-o", str(dst)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "trials: must be >= 1, got 0" in err and err.count("\n") == 1
