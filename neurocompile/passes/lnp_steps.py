"""The four steps of Lyapunov Noise Pruning, each a function of its own (docs/lnp.md).

1. `noise_synapse_prune`: synapses kept at random with probabilities from a linearised
   noise-response model (matrices built from the neurons' time constants and noise-driven
   spike rates) and from the Lyapunov spectrum; kept weights reweighted to preserve the
   spectral radius of the linearised recurrent coupling.
2. `betweenness_neuron_prune`: the neurons of lowest betweenness centrality in the graph of
   effective couplings are removed.
3. `delocalise_eigenvectors`: synapses are added where they most lower the inverse
   participation ratio of the leading eigenvectors of the effective coupling.
4. `optimise_timescales`: the time-constant scales and the recurrent gain are tuned with
   optuna's TPE sampler (seeded, bounded in trials and seconds) so that the largest Lyapunov
   exponent sits at a target just below zero.

`noise_response` computes the linearised model all steps share. The random counterparts
(`random_synapse_prune`, `random_neuron_prune`) are the ablations at equal budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import scipy.linalg

from neurocompile.errors import UnsupportedError
from neurocompile.passes.lnp_graph import (
    RecurrentPopulation,
    find_recurrent_population,
    noise_drive,
    population_params,
    timescales,
    weight,
    with_recurrent,
    with_timescales,
)
from neurocompile.passes.lyapunov import spiking_lyapunov_spectrum

_STABLE_RADIUS = 0.99  # the linear model is scaled to this radius when it is unstable


def _require(module: str, step: str, switch: str):
    """Import an optional library of the lnp extra, or fail in one line naming the fix."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise UnsupportedError(f"LNP {step} needs {module}, which is not installed: pip install "
                               f"'neurocompile[lnp]' (or turn the step off with {switch})"
                               ) from None


# -- the linearised noise-response model -------------------------------------------------------
@dataclass
class NoiseResponse:
    """Linearised response of a recurrent population to noise around its operating point.

    jacobian: the mean surrogate Jacobian of the map (u, v') (or v' for LIF) along the noise-
    driven trajectory; cov: stationary covariance of v' in the linear model driven by the
    input and spike shot noise; coupling: the per-step coupling g_i w_ij D_j scaled by each
    neuron's DC filter gain 1 / ((1 - a_u,i)(1 - leak_i)); local_exponent: each neuron's
    participation-weighted Lyapunov exponent (nats/step); exponents: the top-k spectrum.
    """

    jacobian: np.ndarray
    cov: np.ndarray
    coupling: np.ndarray
    local_exponent: np.ndarray
    exponents: np.ndarray
    rates: np.ndarray
    slope: np.ndarray
    gain: np.ndarray

    @property
    def mle(self) -> float:
        return float(self.exponents[0])


def _mean_jacobian(w: np.ndarray, keep_u: np.ndarray, leak: np.ndarray, gain: np.ndarray,
                   slope: np.ndarray) -> np.ndarray:
    rec = gain[:, None] * w * slope[None, :]
    if np.all(keep_u == 0):
        return np.diag(leak) + rec
    n = len(w)
    a = np.zeros((2 * n, 2 * n))
    a[:n, :n] = np.diag(keep_u)
    a[:n, n:] = rec
    a[n:, :n] = np.diag(keep_u)
    a[n:, n:] = np.diag(leak) + rec
    return a


def noise_response(graph: nir.NIRGraph, node: str | None = None, *, steps: int = 300,
                   warmup: int = 50, batch: int = 4, noise_rate: float = 0.1, k: int = 8,
                   beta: float = 4.0, seed: int = 0) -> NoiseResponse:
    """Run the population on Bernoulli noise, estimate its Lyapunov spectrum and build the
    linearised noise-response model (see NoiseResponse)."""
    pop = find_recurrent_population(graph, node)
    p = population_params(graph, pop)
    w = weight(graph.nodes[pop.recurrent])
    drive = noise_drive(graph, pop, steps, batch, noise_rate, seed)
    ly = spiking_lyapunov_spectrum(w, drive, p.du, p.dv, p.gain, p.bias, p.v_threshold, k=k,
                                   warmup=warmup, beta=beta, seed=seed)
    keep_u = 1.0 - p.du
    a = _mean_jacobian(w, keep_u, ly["leak"], p.gain, ly["slope"])
    # Shot noise entering u: the input noise through the input synapses, and each neuron's
    # own spike train (Bernoulli at its rate) through the recurrent weights.
    q_u = np.zeros((pop.size, pop.size))
    for name in pop.inputs:
        w_in = weight(graph.nodes[name])
        q_u += (w_in * (noise_rate * (1 - noise_rate))) @ w_in.T
    r = ly["rates"]
    q_u += (w * (r * (1 - r))) @ w.T
    q_u = p.gain[:, None] * q_u * p.gain[None, :]
    n = pop.size
    if len(a) == n:
        q = q_u
    else:  # u[t+1] enters v'[t+1] in the same step: the noise reaches both blocks
        q = np.block([[q_u, q_u], [q_u, q_u]])
    radius = float(np.abs(np.linalg.eigvals(a)).max())
    a_solve = a * (_STABLE_RADIUS / radius) if radius >= _STABLE_RADIUS else a
    c = scipy.linalg.solve_discrete_lyapunov(a_solve, q)
    cov = c[-n:, -n:]
    dc = 1.0 / (np.maximum(1.0 - keep_u, 1e-3) * np.maximum(1.0 - ly["leak"], 1e-3))
    coupling = dc[:, None] * p.gain[:, None] * w * ly["slope"][None, :]
    part = ly["participation"]
    lam = ly["exponents"]
    share = part.sum(axis=1)
    local = np.where(share > 1e-12, part @ lam / np.maximum(share, 1e-12), lam.mean())
    return NoiseResponse(jacobian=a, cov=0.5 * (cov + cov.T), coupling=coupling,
                         local_exponent=local, exponents=lam, rates=r, slope=ly["slope"],
                         gain=p.gain)


# -- step 1: noise/Lyapunov synapse removal ------------------------------------------------------
def _systematic_sample(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a sample of round(sum p) items, item i included with probability p_i."""
    order = rng.permutation(p.size)
    cum = np.cumsum(p[order])
    k = int(round(cum[-1])) if cum.size else 0
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    marks = rng.random() + np.arange(k)
    picks = np.searchsorted(cum, marks, side="right")
    return np.unique(order[np.minimum(picks, p.size - 1)])


def keep_probabilities(score: np.ndarray, budget: int) -> np.ndarray:
    """p = min(1, c * score) with c chosen by bisection so that sum p = budget."""
    score = np.maximum(np.asarray(score, np.float64), 0.0)
    pos = score > 0
    if budget >= int(pos.sum()):
        return pos.astype(np.float64)
    lo, hi = 0.0, budget / score[pos].min()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(1.0, mid * score).sum() < budget:
            lo = mid
        else:
            hi = mid
    p = np.minimum(1.0, hi * score)
    return p * (budget / p.sum()) if p.sum() > budget else p


def _sample_exactly(p: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    idx = _systematic_sample(p, rng)
    if idx.size < budget:  # a rounding edge: top up by probability so the budget is exact
        rest = np.setdiff1d(np.nonzero(p > 0)[0], idx)
        idx = np.concatenate([idx, rest[np.argsort(-p[rest], kind="stable")][: budget - idx.size]])
    elif idx.size > budget:
        idx = idx[np.argsort(-p[idx], kind="stable")][:budget]
    return idx


def synapse_scores(w: np.ndarray, resp: NoiseResponse) -> np.ndarray:
    """Keep score of each synapse i <- j: |w_ij| (C_ii + C_jj - 2 sign(w_ij) C_ij) H_ij, with C
    the noise-response covariance and H_ij the harmonic mean of the two neurons' Lyapunov
    timescales 1 / |lambda_i| (steps)."""
    c = resp.cov
    d = np.diag(c)
    bracket = np.maximum(d[:, None] + d[None, :] - 2.0 * np.sign(w) * c, 0.0)
    tau = 1.0 / np.maximum(np.abs(resp.local_exponent), 1e-3)
    harmonic = 2.0 * tau[:, None] * tau[None, :] / (tau[:, None] + tau[None, :])
    score = np.abs(w) * bracket * harmonic
    pos = score[(w != 0) & (score > 0)]
    floor = pos.min() * 1e-3 if pos.size else 1.0  # zero bracket: still compete by weight
    return np.where(w != 0, np.maximum(score, floor * (w != 0)), 0.0)


def _coupling_radius(w: np.ndarray, resp: NoiseResponse) -> float:
    m = resp.gain[:, None] * w * resp.slope[None, :]
    return float(np.abs(np.linalg.eigvals(m)).max()) if m.size else 0.0


def noise_synapse_prune(w: np.ndarray, keep: int, resp: NoiseResponse, *, reweight: bool = True,
                        seed: int = 0) -> tuple[np.ndarray, dict]:
    """Step 1: keep exactly `keep` synapses of W, sampled with p_ij = min(1, c score_ij)
    (synapse_scores); kept weights become w_ij / p_ij, then all are scaled so the spectral
    radius of the linearised coupling diag(g) W diag(D) equals the unpruned one."""
    w = np.asarray(w, np.float64)
    keep = int(keep)
    nnz = int(np.count_nonzero(w))
    if keep < 0:
        raise UnsupportedError(f"synapse budget must be >= 0, got {keep}")
    if keep >= nnz:
        return w.copy(), {"kept": nnz, "scale": 1.0, "max_gain": 1.0}
    p = keep_probabilities(synapse_scores(w, resp).reshape(-1), keep)
    idx = _sample_exactly(p, keep, np.random.default_rng(seed))
    flat = np.zeros(w.size)
    gain = 1.0 / p[idx] if reweight else np.ones(idx.size)
    flat[idx] = w.reshape(-1)[idx] * gain
    out = flat.reshape(w.shape)
    scale = 1.0
    if reweight:
        new = _coupling_radius(out, resp)
        scale = _coupling_radius(w, resp) / new if new > 0 else 1.0
        out *= scale
    return out, {"kept": int(idx.size), "scale": float(scale),
                 "max_gain": float(gain.max()) if gain.size else 1.0}


def random_synapse_prune(w: np.ndarray, keep: int, *, seed: int = 0) -> np.ndarray:
    """Ablation of step 1: keep `keep` synapses chosen uniformly at random, weights unchanged."""
    w = np.asarray(w, np.float64)
    nz = np.flatnonzero(w)
    out = np.zeros(w.size)
    if keep >= nz.size:
        return w.copy()
    idx = np.random.default_rng(seed).choice(nz, int(keep), replace=False)
    out[idx] = w.reshape(-1)[idx]
    return out.reshape(w.shape)


# -- step 2: betweenness neuron removal -----------------------------------------------------------
def betweenness(coupling: np.ndarray) -> np.ndarray:
    """Shortest-path betweenness of each neuron in the directed graph j -> i with edge length
    1 / |coupling_ij| (networkx, exact, normalised). Couplings below 1e-6 of the largest (from
    neurons that hardly ever come near threshold) are no edges: their lengths would swamp the
    float sums and make ties of unequal paths."""
    nx = _require("networkx", "step 2 (betweenness)", "--no-betweenness")
    c = np.abs(np.asarray(coupling, np.float64))
    np.fill_diagonal(c, 0.0)
    c[c < 1e-6 * c.max(initial=0.0)] = 0.0
    g = nx.DiGraph()
    g.add_nodes_from(range(len(c)))
    dst, src = np.nonzero(c)
    g.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), (1.0 / c[dst, src]).tolist()),
                              weight="length")
    bc = nx.betweenness_centrality(g, weight="length", normalized=True)
    return np.array([bc[i] for i in range(len(c))])


def betweenness_neuron_prune(coupling: np.ndarray, n_keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: (sorted indices of the n_keep neurons of highest betweenness, all scores).

    In a dense weighted graph most shortest paths are direct edges, so many neurons have
    betweenness 0; ties are broken by coupling strength sum_j |K_ij| + |K_ji| (not by index).
    """
    bc = betweenness(coupling)
    c = np.abs(np.asarray(coupling, np.float64))
    strength = c.sum(axis=0) + c.sum(axis=1) - 2 * np.diag(c)
    keep = np.sort(np.lexsort((-strength, -bc))[: int(n_keep)])
    return keep, bc


def random_neuron_prune(n: int, n_keep: int, *, seed: int = 0) -> np.ndarray:
    """Ablation of step 2: n_keep neurons chosen uniformly at random (sorted)."""
    return np.sort(np.random.default_rng(seed).choice(n, int(n_keep), replace=False))


# -- step 3: eigenvector delocalisation -----------------------------------------------------------
def ipr(m: np.ndarray, k: int = 4) -> float:
    """Mean inverse participation ratio sum_i |x_i|^4 of the k leading (largest |eigenvalue|)
    unit eigenvectors of m: 1/N when spread evenly, 1 when on one neuron."""
    vals, vecs = np.linalg.eig(m)
    top = np.argsort(-np.abs(vals), kind="stable")[: min(k, len(vals))]
    x = np.abs(vecs[:, top])
    x = x / np.linalg.norm(x, axis=0, keepdims=True)
    return float(np.mean(np.sum(x ** 4, axis=0)))


def delocalise_eigenvectors(w: np.ndarray, n_add: int, resp: NoiseResponse, *, k: int = 4,
                            candidates: int = 8, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Step 3: add n_add synapses, one at a time, each where it most lowers the mean IPR of the
    k leading eigenvectors of the linearised coupling diag(g) W diag(D). Candidates are the
    absent pairs i <- j with the largest |x_j| (1 - |x_i| / max|x|) over those eigenvectors
    (first order: an edge from a high- to a low-amplitude neuron spreads the mode); each new
    synapse has the median |w| of the existing ones and a random sign."""
    w = np.asarray(w, np.float64).copy()
    rng = np.random.default_rng(seed)
    mag = float(np.median(np.abs(w[w != 0]))) if np.any(w != 0) else 1.0
    g, d = resp.gain, resp.slope

    def coupling(x):
        return g[:, None] * x * d[None, :]

    before = ipr(coupling(w), k)
    added = []
    for _ in range(int(n_add)):
        vals, vecs = np.linalg.eig(coupling(w))
        top = np.argsort(-np.abs(vals), kind="stable")[: min(k, len(vals))]
        amp = np.abs(vecs[:, top])
        amp = amp / amp.max(axis=0, keepdims=True)
        score = (1.0 - amp) @ amp.T  # score[i, j] = sum_k (1 - |x_ik|) |x_jk|
        score[(w != 0) | np.eye(len(w), dtype=bool)] = -np.inf
        flat = np.argsort(-score, axis=None, kind="stable")[:candidates]
        flat = flat[np.isfinite(score.reshape(-1)[flat])]
        if flat.size == 0:
            break
        signs = rng.choice([-1.0, 1.0], flat.size)
        best, best_ipr = None, np.inf
        for f, sgn in zip(flat, signs):
            i, j = np.unravel_index(f, w.shape)
            w[i, j] = sgn * mag
            val = ipr(coupling(w), k)
            w[i, j] = 0.0
            if val < best_ipr:
                best, best_ipr = (int(i), int(j), float(sgn * mag)), val
        w[best[0], best[1]] = best[2]
        added.append(best)
    return w, {"added": len(added), "ipr_before": before, "ipr_after": ipr(coupling(w), k)}


# -- step 4: Bayesian optimisation of the time constants -----------------------------------------
def optimise_timescales(graph: nir.NIRGraph, node: str | None = None, *, trials: int = 20,
                        timeout_s: float = 30.0, target_mle: float = -0.01,
                        scale_range: tuple[float, float] = (0.5, 2.0),
                        gain_range: tuple[float, float] = (0.7, 1.3), seed: int = 0,
                        steps: int = 300, batch: int = 4, noise_rate: float = 0.1,
                        beta: float = 4.0) -> tuple[nir.NIRGraph, dict]:
    """Step 4: optuna TPE (seeded) over a common scale of tau_mem, of tau_syn (log-uniform in
    scale_range; each neuron keeps its rank) and of the recurrent weights (gain_range),
    minimising |lambda_1 - target_mle| on the same noise. The unchanged network is the first
    trial, so the result is never further from the target. Stops after `trials` trials or
    `timeout_s` seconds, whichever comes first."""
    optuna = _require("optuna", "step 4 (time constants)", "--no-optimise")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pop = find_recurrent_population(graph, node)
    tau_m, tau_s = timescales(graph, pop)
    w0 = weight(graph.nodes[pop.recurrent])
    lo, hi = scale_range

    def build(mem: float, syn: float, gain: float) -> nir.NIRGraph:
        g = with_timescales(graph, pop, tau_m * mem, None if tau_s is None else tau_s * syn)
        return with_recurrent(g, pop, w0 * gain)

    def mle(g: nir.NIRGraph) -> float:
        return noise_response(g, pop.neuron, steps=steps, batch=batch, noise_rate=noise_rate,
                              k=1, beta=beta, seed=seed).mle

    def objective(trial) -> float:
        mem = trial.suggest_float("tau_mem_scale", lo, hi, log=True)
        syn = trial.suggest_float("tau_syn_scale", lo, hi, log=True) if tau_s is not None else 1.0
        gain = trial.suggest_float("gain_scale", *gain_range)
        lam = mle(build(mem, syn, gain))
        trial.set_user_attr("mle", lam)
        return abs(lam - target_mle)

    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    start = {"tau_mem_scale": 1.0, "gain_scale": 1.0}
    if tau_s is not None:
        start["tau_syn_scale"] = 1.0
    study.enqueue_trial(start)
    study.optimize(objective, n_trials=int(trials), timeout=float(timeout_s))
    best = study.best_trial.params
    out = build(best["tau_mem_scale"], best.get("tau_syn_scale", 1.0), best["gain_scale"])
    return out, {"trials": len(study.trials), "best": dict(best),
                 "mle_start": float(study.trials[0].user_attrs["mle"]),
                 "mle_best": float(study.best_trial.user_attrs["mle"]),
                 "target_mle": float(target_mle)}


__all__ = [
    "NoiseResponse",
    "RecurrentPopulation",
    "betweenness",
    "betweenness_neuron_prune",
    "delocalise_eigenvectors",
    "ipr",
    "keep_probabilities",
    "noise_response",
    "noise_synapse_prune",
    "optimise_timescales",
    "random_neuron_prune",
    "random_synapse_prune",
    "synapse_scores",
]
