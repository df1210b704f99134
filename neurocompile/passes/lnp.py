"""Lyapunov Noise Pruning (LNP): task-agnostic pruning of an untrained heterogeneous recurrent SNN.

After Chakraborty, Kang, Kumar & Mukhopadhyay, "Sparse Spiking Neural Network: Exploiting
Heterogeneity in Timescales for Pruning Recurrent SNN", ICLR 2024 (arXiv:2403.03409). A large,
randomly initialised recurrent population with per-neuron time constants is pruned without task
data, from its weights, its time constants and its response to noise; the sparse network is
then trained for any task. The graph must hold one spiking population (LIF or CubaLIF) with a
recurrent Linear/Affine edge onto itself (neurocompile/passes/lnp_graph.py).

The pass composes the four steps of neurocompile/passes/lnp_steps.py, each with an on/off
option whose "off" is the random choice at the same budget (the benchmark's ablations):

    noise response of the dense network (Lyapunov spectrum, linearised model)
    -> step 2: remove neurons (betweenness of the effective couplings | random)
    -> noise response of the smaller network
    -> step 1: remove synapses (noise/Lyapunov sampling + reweighting | uniform random)
    -> step 3: add synapses that delocalise the leading eigenvectors (| none)
    -> step 4: optimise the time constants and recurrent gain with optuna (| keep them)

Neurons go before synapses so that the synapse count is exactly the budget; step 3's synapses
come out of the same budget (add_fraction of it), so every variant ends with equal neurons and
equal recurrent synapses. Only the recurrent weights are sparsified; input and output synapses
shrink with the neurons removed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError
from neurocompile.passes.lnp_graph import (
    RecurrentPopulation,
    find_recurrent_population,
    make_hrsnn_graph,
    remove_neurons,
    weight,
    with_recurrent,
)
from neurocompile.passes.lnp_graph import noise_drive as _noise_drive  # noqa: F401 (tests)
from neurocompile.passes.lnp_steps import (
    betweenness_neuron_prune,
    delocalise_eigenvectors,
    noise_response,
    noise_synapse_prune,
    optimise_timescales,
    random_neuron_prune,
    random_synapse_prune,
)
from neurocompile.passes.report import PassReport, compare_graphs
from neurocompile.semantics.float import graph_dt

__all__ = [
    "LNPOptions",
    "RecurrentPopulation",
    "estimate_lyapunov",
    "find_recurrent_population",
    "lnp_prune",
    "make_hrsnn_graph",
    "remove_neurons",
    "run_lnp",
]


def estimate_lyapunov(graph: nir.NIRGraph, node: str | None = None, *, k: int = 8,
                      steps: int = 300, warmup: int = 50, batch: int = 4,
                      noise_rate: float = 0.1, beta: float = 4.0, seed: int = 0) -> dict:
    """Largest k Lyapunov exponents of the recurrent population under Bernoulli noise input:
    {"exponents": [...] nats/step (descending), "max", "per_second", "rate"}."""
    r = noise_response(graph, node, steps=steps, warmup=warmup, batch=batch,
                       noise_rate=noise_rate, k=k, beta=beta, seed=seed)
    return {"exponents": [float(x) for x in r.exponents], "max": r.mle,
            "per_second": r.mle / graph_dt(graph), "rate": float(r.rates.mean())}


def lnp_prune(graph: nir.NIRGraph, target_sparsity: float = 0.5, *,
              neuron_sparsity: float = 0.25, node: str | None = None,
              noise_synapses: bool = True, betweenness: bool = True, delocalise: bool = True,
              optimise: bool = True, reweight: bool = True, add_fraction: float = 0.05,
              trials: int = 20, timeout_s: float = 30.0, target_mle: float = -0.01,
              lyapunov_steps: int = 300, lyapunov_batch: int = 4, k: int = 8,
              noise_rate: float = 0.1, beta: float = 4.0, seed: int = 0
              ) -> tuple[nir.NIRGraph, PassReport]:
    """Prune the recurrent population of an untrained graph with LNP (module docstring).

    target_sparsity: fraction of the dense recurrent synapses removed (exact in the result);
    neuron_sparsity: fraction of the population's neurons removed. The four step switches
    (noise_synapses, betweenness, delocalise, optimise) replace a step by its random
    counterpart at the same budget when false. `report.lnp` holds every step's details.
    """
    if not 0.0 <= target_sparsity < 1.0:
        raise UnsupportedError(f"target sparsity must be in [0, 1), got {target_sparsity}")
    if not 0.0 <= neuron_sparsity < 1.0:
        raise UnsupportedError(f"neuron sparsity must be in [0, 1), got {neuron_sparsity}")
    if not 0.0 <= add_fraction < 1.0:
        raise UnsupportedError(f"add_fraction must be in [0, 1), got {add_fraction}")
    pop = find_recurrent_population(graph, node)
    rng = np.random.default_rng(seed)
    lyap = dict(steps=lyapunov_steps, batch=lyapunov_batch, noise_rate=noise_rate, k=k,
                beta=beta)
    w_dense = weight(graph.nodes[pop.recurrent])
    nnz_dense = int(np.count_nonzero(w_dense))
    budget = int(round((1.0 - target_sparsity) * nnz_dense))
    n_keep = max(1, int(round((1.0 - neuron_sparsity) * pop.size)))
    info: dict = {"steps": {}}
    dense = noise_response(graph, pop.neuron, seed=seed, **lyap)

    # Step 2 (first, so the synapse budget is exact): neurons.
    if n_keep < pop.size:
        if betweenness:
            kept, bc = betweenness_neuron_prune(dense.coupling, n_keep)
            info["steps"]["neurons"] = {"method": "betweenness",
                                        "removed_mean_bc": float(np.delete(bc, kept).mean()),
                                        "kept_mean_bc": float(bc[kept].mean())}
        else:
            kept = random_neuron_prune(pop.size, n_keep, seed=int(rng.integers(2**31)))
            info["steps"]["neurons"] = {"method": "random"}
        current = remove_neurons(graph, pop, kept)
    else:
        kept, current = np.arange(pop.size), graph
    cur_pop = find_recurrent_population(current, pop.neuron)
    w_base = weight(current.nodes[cur_pop.recurrent])
    budget = min(budget, int(np.count_nonzero(w_base)))
    n_add = int(round(add_fraction * budget)) if delocalise else 0

    # Step 1: synapses.
    resp = noise_response(current, pop.neuron, seed=seed + 1, **lyap)
    if noise_synapses:
        w_new, s1 = noise_synapse_prune(w_base, budget - n_add, resp, reweight=reweight,
                                        seed=int(rng.integers(2**31)))
        info["steps"]["synapses"] = {"method": "noise", **s1}
    else:
        w_new = random_synapse_prune(w_base, budget - n_add, seed=int(rng.integers(2**31)))
        info["steps"]["synapses"] = {"method": "random"}

    # Step 3: delocalising synapses.
    if n_add:
        w_new, s3 = delocalise_eigenvectors(w_new, n_add, resp, seed=int(rng.integers(2**31)))
        info["steps"]["delocalise"] = s3
    current = with_recurrent(current, cur_pop, w_new)

    # Step 4: time constants and recurrent gain.
    if optimise:
        current, s4 = optimise_timescales(current, pop.neuron, trials=trials,
                                          timeout_s=timeout_s, target_mle=target_mle,
                                          seed=seed, steps=lyapunov_steps,
                                          batch=lyapunov_batch, noise_rate=noise_rate,
                                          beta=beta)
        info["steps"]["timescales"] = s4

    after = noise_response(current, pop.neuron, seed=seed, **lyap)
    w_final = weight(current.nodes[pop.recurrent])
    out = copy.deepcopy(current)
    options = {"method": "lnp", "target_sparsity": float(target_sparsity),
               "neuron_sparsity": float(neuron_sparsity), "noise_synapses": noise_synapses,
               "betweenness": betweenness, "delocalise": delocalise, "optimise": optimise,
               "reweight": reweight, "add_fraction": add_fraction, "seed": seed}
    achieved = float(1.0 - np.count_nonzero(w_final) / max(1, nnz_dense))
    extra = {
        pop.neuron: {"mle_before": dense.mle, "mle_after": after.mle,
                     "rate_before": float(dense.rates.mean()),
                     "rate_after": float(after.rates.mean())},
        pop.recurrent: {"achieved_sparsity": achieved,
                        "added": info["steps"].get("delocalise", {}).get("added", 0)},
    }
    report = compare_graphs("lnp", options, graph, out, extra)
    report.notes.append(f"largest Lyapunov exponent {dense.mle:+.4f} -> {after.mle:+.4f} "
                        f"nats/step on noise (rate {noise_rate})")
    if optimise:
        t = info["steps"]["timescales"]
        report.notes.append(f"time constants: {t['trials']} optuna trials, best {t['best']}")
    report.lnp = {"lyapunov_units": "nats/step", "dt": graph_dt(graph),
                  "exponents_before": [float(x) for x in dense.exponents],
                  "exponents_after": [float(x) for x in after.exponents],
                  "kept_neurons": [int(i) for i in kept], "achieved_sparsity": achieved,
                  **info}
    return out, report


@dataclass(frozen=True)
class LNPOptions:
    """Options of `prune --method lnp` (the keywords of lnp_prune)."""

    sparsity: float = config.setting(min=0.0, max=1.0, max_open=True,
                                     help="Fraction of the recurrent synapses removed.")
    neuron_sparsity: float = config.setting(0.25, min=0.0, max=1.0, max_open=True,
                                            help="Fraction of the population's neurons removed.")
    node: str | None = config.setting(None, help="The recurrent population (if several).")
    noise_synapses: bool = config.setting(
        True, help="Step 1: remove synapses by noise response and Lyapunov timescales (else "
                   "uniformly at random).")
    betweenness: bool = config.setting(
        True, help="Step 2: remove the neurons of lowest betweenness (else random ones).")
    delocalise: bool = config.setting(
        True, help="Step 3: add synapses that delocalise the leading eigenvectors.")
    optimise: bool = config.setting(
        True, help="Step 4: tune time constants and recurrent gain with optuna.")
    reweight: bool = config.setting(True, help="Step 1: reweight the kept synapses.")
    add_fraction: float = config.setting(0.05, min=0.0, max=1.0, max_open=True,
                                         help="Step 3: share of the synapse budget added.")
    trials: int = config.setting(20, min=1, help="Step 4: optuna trials at most.")
    timeout_s: float = config.setting(30.0, min=0.0, min_open=True,
                                      help="Step 4: seconds at most.")
    target_mle: float = config.setting(-0.01, help="Step 4: target largest exponent "
                                                   "(nats/step).")
    lyapunov_steps: int = config.setting(300, min=60, help="Steps of each noise run.")
    lyapunov_batch: int = config.setting(4, min=1, help="Noise trajectories averaged.")
    k: int = config.setting(8, min=1, help="Lyapunov exponents estimated.")
    noise_rate: float = config.setting(0.1, min=0.0, max=1.0, help="Input noise spike rate.")
    beta: float = config.setting(4.0, min=0.0, min_open=True, help="Surrogate steepness.")
    seed: int = config.setting(0, min=0, help="Random seed.")


def run_lnp(graph: nir.NIRGraph, options: LNPOptions, activity=None
            ) -> tuple[nir.NIRGraph, PassReport]:
    """Registry entry point: lnp_prune with the options' values."""
    kw = {f: getattr(options, f) for f in options.__dataclass_fields__ if f != "sparsity"}
    return lnp_prune(graph, options.sparsity, **kw)
