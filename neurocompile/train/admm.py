"""ADMM training of feed-forward LIF networks with closed-form updates (no surrogate gradient).

The network is the contract's feed-forward LIF classifier (DESIGN.md semantics, du = 1):

    input -> fc1 -> lif1 -> ... -> fcL -> lifL -> fc_out -> readout (LI) -> output

Per hidden layer l (a_0 = x is the input), sample n, step t = 0..T-1 and neuron j:

    z_l[t] = W_l a_{l-1}[t-1] + b_l             (one-step delay per connection; a[-1] = 0)
    v_l[t] = c r_l[t-1] + g z_l[t] + beta        (c = 1 - dv, g = gain, beta = bias; r[-1] = 0)
    s_l[t] = H(v_l[t] - v_th)                    (strict: v > v_th spikes)
    r_l[t] = v_l[t] (1 - s_l[t])                 (reset to zero)

with c, g, beta exactly neurocompile.semantics.discretise of the exported LIF node.
The readout is an LI node, v_o[t] = c_o v_o[t-1] + g_o z_o[t], z_o[t] = W_o a_L[t-1] + b_o,
and the class score is the time mean of the readout membrane (the "mean_membrane" decoding of
neurocompile.models): (1/T) sum_t v_o[t] = sum_t kappa_t z_o[t] with
kappa_t = (g_o / T) sum_{t'=t}^{T-1} c_o^(t'-t).

Variable splitting
------------------
Auxiliary variables per hidden layer: pre-activations z_l, membranes v_l (before reset), spikes
s_l in {0,1} (r_l is a function of v_l and s_l), and, for spike_update="relay" only, a
continuous spike relay a_l that feeds the next layer (the default "downstream" update, below,
has a_l = s_l and no (R)). Given the spikes the membrane recursion is linear, so the
constraints are

    (S) z_l = A_{l-1} Theta_l,  A_{l-1} = [shift(a_{l-1}), 1], Theta_l = [W_l^T; b_l^T]   dual lam_l
    (M) v_l[t] = c r_l[t-1] + g z_l[t] + beta                                              dual mu_l
    (R) a_l = s_l                                                                          dual nu_l
    (H) s_l = H(v_l - v_th), r_l = v_l (1 - s_l)       kept exactly (inside the v/s update)
    (Q) W_l = Q_l  (only with l1 > 0; Q_l carries the l1 term and is the exported weight)  dual P_l

and for the output layer (S) with z_o, a_L, dual lam_o. The objective is the least-squares loss
1/2 ||Y - sum_t kappa_t z_o[t]||^2 on one-hot targets Y (a least-squares output layer, not a
cross-entropy surrogate) + ridge/2 ||W||^2 + l1 ||Q||_1. Each constraint C = 0 with dual y enters
the augmented Lagrangian as <y, C> + rho/2 ||C||^2 = rho/2 ||C + y/rho||^2 - ||y||^2/(2 rho).
The one-hot target value defaults to sum_t kappa_t (the score of a unit weight from an
always-on input), which keeps W_o of order one whatever the readout gain.

Closed-form updates (one iteration, layers in order, then the output layer, then the duals;
the v/s and a updates are those of spike_update="relay")
------------------------------------------------------------------------------------------
W (ridge least squares; bias row unregularised):
    Theta = (rho A^T A + D)^-1 (rho A^T (z + lam/rho) + [rho_q (Q - P/rho_q); 0]),
    D = diag(ridge + rho_q, ..., ridge + rho_q, 0)      (rho_q = 0 without the l1 split)
Q (l1 proximal step, soft thresholding):  Q = soft(W + P/rho_q, l1/rho_q)
z (elementwise, (S) and (M) terms; m = A Theta, w = v - c r_prev - beta + mu/rho):
    z = ((m - lam/rho) + g w) / (1 + g^2)
v, s (elementwise; swept forward in time so r[t-1] is current). With
    p = c r[t-1] + g z[t] + beta - mu[t]/rho          ((M) at t)
    q = v[t+1] - g z[t+1] - beta + mu[t+1]/rho        ((M) at t+1, where r[t] enters; absent at T-1)
    e = a[t] + nu[t]/rho                              ((R))
  the subproblem  min_{v, s in {0,1}, s = H(v - v_th)}
        rho_m/2 (v - p)^2 + rho_m/2 (c r - q)^2 + rho_r/2 (s - e)^2,  r = v (1 - s)
  is solved by comparing both branches:
    s = 0 (v <= v_th, r = v): v0 = min((p + c q) / (1 + c^2), v_th),
                              f0 = rho_m/2 [(v0 - p)^2 + (c v0 - q)^2] + rho_r/2 e^2
    s = 1 (v > v_th,  r = 0): v1 = max(p, v_th + eps),
                              f1 = rho_m/2 [(v1 - p)^2 + q^2] + rho_r/2 (1 - e)^2
    s = [f1 < f0], v = v1 if s else v0  (eps makes the open branch attainable; at T-1 there is
    no q term).
a (relay; per row (n, t) a ridge system with the next layer's (S) at t+1):
    a[t] = (rho W'^T W' + rho I)^-1 (rho W'^T (z'[t+1] - b' + lam'[t+1]/rho) + rho s[t] - nu[t]),
    a[T-1] = s[T-1] - nu[T-1]/rho          (W', b', z', lam' of the next layer or the output)
z_o (output pre-activation; loss + (S), per sample and class): with d = A_L Theta_o - lam_o/rho,
    K = sum_t kappa_t^2:  z_o[t] = d[t] + kappa_t (Y - sum_t' kappa_t' d[t']) / (K + rho)
Duals: lam += rho (z - A Theta), mu += rho (v - c r_prev - g z - beta), nu += rho (a - s),
P += rho_q (W - Q).

Joint output block (output="joint"; the default "split" is the block above). The output layer
gets no z_o split and no lam_o: the loss is written directly on the last relay, score =
F(a_L) Theta_o with F(a) = [sum_t kappa_t a[t-1], sum_t kappa_t], and (W_o, a_L) are updated
against it one after the other, both in closed form:
    Theta_o = ridge least squares of Y on F(a_L)                  (weight_update, rho = 1)
    a_L = argmin 1/2 ||Y - F(a) Theta_o||^2 + rho_r/2 ||a - s_L + nu_L/rho_r||^2, per sample:
        a[t] = e[t] + (k_t / rho_r) W_o^T r,  e = s_L - nu_L/rho_r,
        k_t = kappa_{t+1} (the weight of a[t] in the score; k_{T-1} = 0),
        r = (I + (sum k^2 / rho_r) W_o W_o^T)^-1 (Y - b_o sum kappa - W_o sum_t k_t e[t])
(output_relay_update). The hidden layers' updates and duals are unchanged; the (S) residual of
the output layer is then zero by construction.

Downstream spike update (spike_update="downstream", the default; "relay" is the block above).
No relay and no (R): the next layer reads the spikes themselves (a_l = s_l), and the v/s update
adds, per neuron j, the next layer's (S) term as a function of s_j with the other neurons held at
their current spikes s~ (a Jacobi step): with the residual r = W' s~[t] + b' - z'[t+1]
- lam'[t+1]/rho and d = s_j - s~_j,
    rho/2 ||r + d W'_j||^2 - rho/2 ||r||^2 = rho (d (W'^T r)_j + d^2 ||W'_j||^2 / 2),
exact for one flip, added to the branch costs f0 (d = -s~_j) and f1 (d = 1 - s~_j). The relay
form passes this pull through a continuous a and its dual, which spreads it thinly over all
neurons; pricing the flips directly measured better (docs/admm.md). The last hidden layer of
the joint output block keeps its relay.

Penalty schedule (rho_mode, RHO_MODES). "constant" (the default, rho = 1e-4): the duals then
sum the residuals of every iteration, which is the pressure that eventually flips a spike; with a
growing rho the scaled dual y/rho forgets all but the last few residuals while feasibility is
enforced at the starting point. "geometric": rho_k = min(rho rho_growth^k, rho_max).
"balance": residual balancing (Boyd et al. 2011, "Distributed Optimization and Statistical
Learning via ADMM", sec. 3.4.1): rho is multiplied by balance_tau when the primal residual
exceeds balance_mu times the dual one, divided by it in the opposite case, and kept within
[rho / balance_range, rho * balance_range]. The three constraint families use rho times fixed
weights (penalty_weights, default 1, 1, 1). The l1 split's penalty rho_q is constant (rho_l1,
default 1), so the exported weights' threshold l1/rho_q does not depend on the schedule. Duals
are stored unscaled, so nothing is rescaled when rho changes. Residuals (root-mean-square over
constraint entries): primal = ||(S), (M), (R), (Q) violations||, dual = rho ||change of z, v,
a (and Q)||.

After the last iteration the readout can be refitted in closed form (ridge least squares of
the one-hot targets on the true forward pass's time-filtered spikes), `refit_readout=True`;
`history` records the accuracy both ways at every iteration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import nir
import numpy as np

from neurocompile.errors import ConfigError, InputDataError, UnsupportedError
from neurocompile.semantics.float import NeuronParams, discretise, run
from neurocompile.semantics.inverse import neuron_node

READOUT = "mean_membrane"
# "constant": rho fixed, so the duals accumulate the residuals of every iteration (default);
# "geometric": rho_k = min(rho rho_growth^k, rho_max); "balance": residual balancing, bounded.
RHO_MODES = ("constant", "geometric", "balance")
# "downstream" (default): no relay, the spike update sees the next layer's (S) term linearised
# at the current spikes (each neuron's flip priced with the others held, a Jacobi step);
# "relay": spikes pulled towards a continuous relay a by the (R) split a = s
SPIKE_UPDATES = ("relay", "downstream")


# ---------------------------------------------------------------------------------------------
# Closed-form subproblem solvers (module level so each can be tested against brute force)
# ---------------------------------------------------------------------------------------------
def soft_threshold(x: np.ndarray, k: float) -> np.ndarray:
    """Proximal operator of k * ||.||_1: sign(x) max(|x| - k, 0)."""
    return np.sign(x) * np.maximum(np.abs(x) - k, 0.0)


def weight_update(a: np.ndarray, target: np.ndarray, rho: float, ridge: float,
                  q_target: np.ndarray | None = None, rho_q: float = 0.0) -> np.ndarray:
    """Minimise rho/2 ||a Theta - target||^2 + ridge/2 ||W||^2 + rho_q/2 ||W - q_target||^2.

    a: (rows, k+1) with a last column of ones (bias); Theta = [W^T; b^T] (k+1, out);
    q_target (out, k) is Q - P/rho_q. Solved by a Cholesky factorisation of the normal equations.
    """
    k1 = a.shape[1]
    gram = rho * (a.T @ a)
    diag = np.full(k1, ridge + rho_q)
    diag[-1] = 1e-10 * max(1.0, rho)  # bias unregularised (tiny jitter for definiteness)
    gram[np.diag_indices(k1)] += diag
    rhs = rho * (a.T @ target)
    if q_target is not None and rho_q > 0:
        rhs[:-1] += rho_q * q_target.T
    try:
        chol = np.linalg.cholesky(gram)
        y = np.linalg.solve(chol, rhs)
        return np.linalg.solve(chol.T, y)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0]


def preactivation_update(m: np.ndarray, lam: np.ndarray, w: np.ndarray, g: np.ndarray,
                         rho_s: float, rho_m: float) -> np.ndarray:
    """Elementwise argmin_z rho_s/2 (z - m + lam/rho_s)^2 + rho_m/2 (g z - w)^2."""
    return (rho_s * (m - lam / rho_s) + rho_m * g * w) / (rho_s + rho_m * g * g)


def spike_membrane_update(p: np.ndarray, q: np.ndarray | None, e: np.ndarray, c: np.ndarray,
                          v_th: np.ndarray, rho_m: float, rho_r: float, eps: float = 1e-6,
                          spike_cost: tuple[np.ndarray, np.ndarray] | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elementwise minimiser of the joint membrane/spike subproblem; returns (v, s, objective).

    min over v and s = H(v - v_th) of rho_m/2 (v-p)^2 + rho_m/2 (c r - q)^2 + rho_r/2 (s-e)^2
    + spike_cost[s] with r = v (1 - s); q None drops the second term (last step); spike_cost
    (cost of s = 0, cost of s = 1) is an extra per-branch term (the downstream layer's). Both
    branches are evaluated and the smaller one kept (ties: no spike).
    """
    if q is None:
        v0 = np.minimum(p, v_th)
        f0 = 0.5 * rho_m * (v0 - p) ** 2 + 0.5 * rho_r * e ** 2
        v1 = np.maximum(p, v_th + eps)
        f1 = 0.5 * rho_m * (v1 - p) ** 2 + 0.5 * rho_r * (1.0 - e) ** 2
    else:
        v0 = np.minimum((p + c * q) / (1.0 + c * c), v_th)
        f0 = 0.5 * rho_m * ((v0 - p) ** 2 + (c * v0 - q) ** 2) + 0.5 * rho_r * e ** 2
        v1 = np.maximum(p, v_th + eps)
        f1 = 0.5 * rho_m * ((v1 - p) ** 2 + q ** 2) + 0.5 * rho_r * (1.0 - e) ** 2
    if spike_cost is not None:
        f0, f1 = f0 + spike_cost[0], f1 + spike_cost[1]
    s = f1 < f0
    return np.where(s, v1, v0), s.astype(np.float64), np.where(s, f1, f0)


def relay_update(w_next: np.ndarray, target: np.ndarray, s: np.ndarray, nu: np.ndarray,
                 rho_s: float, rho_r: float) -> np.ndarray:
    """Row-wise argmin_a rho_s/2 ||W' a - target||^2 + rho_r/2 ||a - s + nu/rho_r||^2.

    w_next (out, k); target, rows (rows, out); s, nu (rows, k).
    """
    k = w_next.shape[1]
    gram = rho_s * (w_next.T @ w_next) + rho_r * np.eye(k)
    rhs = rho_s * (target @ w_next) + rho_r * s - nu
    return rhs @ np.linalg.inv(gram)  # gram is small (k x k) and symmetric positive definite


def readout_preactivation_update(d: np.ndarray, kappa: np.ndarray, y: np.ndarray,
                                 rho: float) -> np.ndarray:
    """argmin_z 1/2 ||y - sum_t kappa_t z[:, t]||^2 + rho/2 ||z - d||^2; d (n, T, C), y (n, C)."""
    kk = float(np.sum(kappa * kappa))
    resid = y - np.einsum("t,ntc->nc", kappa, d)
    return d + kappa[None, :, None] * (resid / (kk + rho))[:, None, :]


def output_relay_update(w_o: np.ndarray, y_res: np.ndarray, e: np.ndarray, k: np.ndarray,
                        rho_r: float) -> np.ndarray:
    """Per sample argmin_a 1/2 ||y_res - W_o sum_t k_t a[t]||^2 + rho_r/2 ||a - e||^2.

    w_o (C, H); y_res (n, C) the targets minus the bias' score; e (n, T, H); k (T,). The
    minimiser is a[t] = e[t] + (k_t / rho_r) W_o^T r with the residual
    r = (I + (sum k^2 / rho_r) W_o W_o^T)^-1 (y_res - W_o sum_t k_t e[t]), a C x C system.
    """
    kk = float(np.sum(k * k))
    r_e = y_res - np.einsum("t,nth->nh", k, e) @ w_o.T
    mat = np.eye(w_o.shape[0]) + (kk / rho_r) * (w_o @ w_o.T)
    r = np.linalg.solve(mat, r_e.T).T
    return e + (k[None, :, None] / rho_r) * (r @ w_o)[:, None, :]


# ---------------------------------------------------------------------------------------------
# The network: exact forward pass (reference semantics) and NIR export
# ---------------------------------------------------------------------------------------------
@dataclass
class ADMMNet:
    """A trained feed-forward LIF classifier: weights (out, in), biases (out,), neuron params."""

    weights: list[np.ndarray]  # hidden layers then the output layer
    biases: list[np.ndarray]
    dt: float = 1e-3
    tau_mem: float = 20e-3
    v_threshold: float = 1.0
    tau_out: float = 20e-3

    @property
    def n_hidden(self) -> list[int]:
        return [w.shape[0] for w in self.weights[:-1]]

    def lif_node(self, n: int) -> nir.LIF:
        """The hidden LIF node as neurocompile.models builds it: v_leak 0, gain 1."""
        return neuron_node("LIF", dt=self.dt, n=n, tau_mem=self.tau_mem,
                           v_threshold=float(self.v_threshold))

    def readout_node(self, n: int) -> nir.LI:
        """The LI readout as neurocompile.models builds it: r = 1, v_leak 0 (gain dt/tau_out)."""
        tau = np.full(n, self.tau_out)
        return neuron_node("LI", dt=self.dt, n=n, tau_mem=tau, gain=self.dt / tau)

    def hidden_step(self, layer: int) -> NeuronParams:
        return discretise(f"lif{layer + 1}", self.lif_node(self.n_hidden[layer]), self.dt)

    def readout_step(self) -> NeuronParams:
        return discretise("readout", self.readout_node(self.weights[-1].shape[0]), self.dt)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(out (n, T, C) readout membrane, {lif_k: (n, T, H) spikes}) in float64.

        Same operations, order and dtype as neurocompile.targets.reference, so the exported
        graph simulates to identical values.
        """
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.weights[0].shape[1]:
            raise InputDataError(f"ADMMNet.forward: expected x of shape (batch, steps, "
                                 f"{self.weights[0].shape[1]}), got {x.shape}")
        h = np.swapaxes(x, 0, 1).astype(np.float64)
        steps, batch = h.shape[:2]
        spikes: dict[str, np.ndarray] = {}
        n_layers = len(self.weights)
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            flat = h.reshape(-1, h.shape[2])
            cur = (flat @ w.T + b).reshape(steps, batch, -1)
            zero = np.zeros((1, w.shape[1])) @ w.T + b
            shifted = np.concatenate([np.broadcast_to(zero, (1,) + cur.shape[1:]), cur[:-1]])
            p = self.hidden_step(k) if k < n_layers - 1 else self.readout_step()
            h = _run_neuron(p, shifted)
            if k < n_layers - 1:
                spikes[f"lif{k + 1}"] = np.swapaxes(h, 0, 1)
        return np.swapaxes(h, 0, 1), spikes

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices: argmax over classes of the time-mean readout membrane."""
        return np.argmax(self.forward(x)[0].mean(axis=1), axis=1)

    def n_nonzero(self) -> int:
        """Non-zero parameters (weights and biases)."""
        return int(sum(np.count_nonzero(w) + np.count_nonzero(b)
                       for w, b in zip(self.weights, self.biases)))

    def n_params(self) -> int:
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases)))

    def model_config(self) -> dict:
        return {"n_in": int(self.weights[0].shape[1]), "n_out": int(self.weights[-1].shape[0]),
                "n_hidden": self.n_hidden, "dt": self.dt, "tau_mem": self.tau_mem,
                "v_threshold": self.v_threshold, "tau_out": self.tau_out, "neuron": "lif"}

    def to_nir(self) -> nir.NIRGraph:
        """NIR graph input, fc1, lif1, ..., fc_out, readout, output; metadata dt and readout."""
        n_in, n_out = self.weights[0].shape[1], self.weights[-1].shape[0]
        nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([n_in]))}
        order = ["input"]
        for k, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1])):
            nodes[f"fc{k + 1}"] = nir.Affine(weight=w.copy(), bias=b.copy())
            nodes[f"lif{k + 1}"] = self.lif_node(w.shape[0])
            order += [f"fc{k + 1}", f"lif{k + 1}"]
        nodes["fc_out"] = nir.Affine(weight=self.weights[-1].copy(), bias=self.biases[-1].copy())
        nodes["readout"] = self.readout_node(n_out)
        nodes["output"] = nir.Output(output_type=np.array([n_out]))
        order += ["fc_out", "readout", "output"]
        meta = {"dt": self.dt, "model": "ff", "readout": READOUT, "trainer": "admm",
                "model_config": json.dumps(self.model_config())}
        return nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), metadata=meta)


def _run_neuron(p: NeuronParams, shifted: np.ndarray) -> np.ndarray:
    """Step one population over time (T, batch, N) with the contract's step, in float64."""
    return run(p.prepare(np.float64), shifted).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
@dataclass
class ADMMConfig:
    """Hyper-parameters of the ADMM trainer (see the module docstring for their roles)."""

    n_hidden: tuple[int, ...] = (128,)
    iterations: int = 150
    rho: float = 1e-4  # penalty (the initial one for "geometric" and "balance")
    rho_mode: str = "constant"  # one of RHO_MODES
    rho_growth: float = 1.3  # "geometric": rho_k = min(rho * rho_growth^k, rho_max)
    rho_max: float = 10.0  # "geometric": cap
    balance_mu: float = 10.0  # "balance": change rho when one residual exceeds mu x the other
    balance_tau: float = 2.0  # "balance": factor by which rho changes
    balance_range: float = 100.0  # "balance": rho stays within [rho / range, rho * range]
    ridge: float = 1e-2
    l1: float = 0.0  # > 0 adds the W = Q split with soft thresholding (sparse weights)
    rho_l1: float = 1.0  # constant penalty rho_q of the W = Q split
    target: float | None = None  # one-hot target of the correct class' time-mean readout;
    # None: sum_t kappa_t, the mean readout that a unit weight from an always-on input gives
    init_scale: float = 1.0  # hidden weights ~ N(0, (init_scale / sqrt(fan_in))^2)
    init_bias: float = 0.0
    dt: float = 1e-3
    tau_mem: float = 20e-3
    v_threshold: float = 1.0
    tau_out: float = 20e-3
    output: str = "split"  # "split": z_o split with its dual; "joint": W_o, a_L against the loss
    penalty_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # rho multipliers (S), (M), (R)
    eps: float = 1e-6  # margin above v_th for the spiking branch
    spike_update: str = "downstream"  # one of SPIKE_UPDATES
    track_forward: bool = True  # run the true forward pass each iteration (loss, accuracy)
    refit_readout: bool = True
    seed: int = 0

    def check(self, where: str = "ADMMConfig") -> None:
        """Raise ConfigError naming the field for an unknown mode or an out-of-range value."""
        if self.rho_mode not in RHO_MODES:
            raise ConfigError(f"{where}: rho_mode must be one of {', '.join(RHO_MODES)}, got "
                              f"{self.rho_mode!r}")
        if self.spike_update not in SPIKE_UPDATES:
            raise ConfigError(f"{where}: spike_update must be one of {', '.join(SPIKE_UPDATES)}"
                              f", got {self.spike_update!r}")
        if self.output not in ("split", "joint"):
            raise ConfigError(f"{where}: output must be 'split' or 'joint', got "
                              f"{self.output!r}")
        for name, ok in (("rho", self.rho > 0), ("iterations", self.iterations >= 0),
                         ("rho_growth", self.rho_growth > 0), ("rho_max", self.rho_max > 0),
                         ("balance_range", self.balance_range >= 1),
                         ("balance_tau", self.balance_tau >= 1), ("ridge", self.ridge >= 0)):
            if not ok:
                raise ConfigError(f"{where}: {name} out of range, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Layer:
    theta: np.ndarray  # (k+1, out) = [W^T; b^T]
    z: np.ndarray  # (N, T, out)
    lam: np.ndarray
    v: np.ndarray | None = None  # hidden only
    s: np.ndarray | None = None
    a: np.ndarray | None = None
    mu: np.ndarray | None = None
    nu: np.ndarray | None = None
    q: np.ndarray | None = None  # (out, k) sparse copy of W (l1 split)
    p_dual: np.ndarray | None = None
    step: NeuronParams | None = None


def _shift_ones(a: np.ndarray) -> np.ndarray:
    """[shift(a), 1] as (N*T, k+1): row (n, t) holds a[n, t-1] (zeros at t = 0) and a one."""
    n, steps, k = a.shape
    out = np.zeros((n, steps, k + 1))
    out[:, 1:, :k] = a[:, :-1]
    out[:, :, k] = 1.0
    return out.reshape(n * steps, k + 1)


def _kappa(c: float, g: float, steps: int) -> np.ndarray:
    """g sum_{t'=t}^{T-1} c^(t'-t): weight of z_o[t] in sum_t v_o[t] (divide by T: the mean)."""
    out = np.zeros(steps)
    acc = 0.0
    for t in range(steps - 1, -1, -1):
        acc = 1.0 + c * acc
        out[t] = g * acc
    return out


def _one_hot(y: np.ndarray, n_classes: int, value: float) -> np.ndarray:
    out = np.zeros((len(y), n_classes))
    out[np.arange(len(y)), y] = value
    return out


def readout_features(net: ADMMNet, x: np.ndarray, spikes: dict | None = None) -> np.ndarray:
    """[sum_t kappa_t a_L[t-1], sum_t kappa_t] per sample: the readout score is this @ Theta_o.

    `spikes`: net.forward(x)'s spikes when already computed.
    """
    if spikes is None:
        _, spikes = net.forward(x)
    last = spikes[f"lif{len(net.n_hidden)}"] if net.n_hidden else np.asarray(x, np.float64)
    rs = net.readout_step()
    kappa = _kappa(float(1 - rs.dv[0]), float(rs.gain[0]), last.shape[1]) / last.shape[1]
    a = _shift_ones(last).reshape(last.shape[0], last.shape[1], -1)
    return np.einsum("t,ntk->nk", kappa, a)


@dataclass
class ADMMTrainer:
    """Full-batch ADMM training; `fit` returns the trained ADMMNet, `history` the residuals."""

    config: ADMMConfig = field(default_factory=ADMMConfig)
    history: list[dict] = field(default_factory=list)

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int | None = None,
            x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            progress: bool = False, callback: Callable[[dict], None] | None = None,
            eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> ADMMNet:
        """Train on x (n, T, F) with integer labels y; `history` gets one row before the first
        iteration (iteration 0) and one per iteration.

        With track_forward, each row holds the accuracy on the training set and on every
        evaluation set (x_val/y_val is the set "val"; eval_sets adds more by name) twice: with
        ADMM's own readout ("<name>_acc") and with the readout refitted in closed form on
        that iteration's true forward pass ("<name>_acc_refit").
        """
        cfg = self.config
        cfg.check()
        sets = {name: (np.asarray(a, np.float64), np.asarray(b).astype(np.int64))
                for name, (a, b) in (eval_sets or {}).items()}
        if x_val is not None and y_val is not None:
            sets["val"] = (np.asarray(x_val, np.float64), np.asarray(y_val).astype(np.int64))
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).astype(np.int64)
        if x.ndim != 3:
            raise InputDataError(f"ADMM fit: x must be (batch, steps, features), got {x.shape}")
        if len(y) != len(x):
            raise InputDataError(f"ADMM fit: {len(x)} inputs but {len(y)} labels")
        n_classes = int(n_classes if n_classes is not None else y.max() + 1)
        t_setup, c_setup = time.perf_counter(), time.process_time()
        n, steps, n_in = x.shape
        rng = np.random.default_rng(cfg.seed)
        sizes = [n_in, *cfg.n_hidden]
        weights = [rng.normal(0, cfg.init_scale / np.sqrt(k), (o, k))
                   for k, o in zip(sizes[:-1], sizes[1:])]
        biases = [np.full(o, cfg.init_bias) for o in cfg.n_hidden]
        weights.append(np.zeros((n_classes, sizes[-1])))
        biases.append(np.zeros(n_classes))
        net = ADMMNet(weights, biases, cfg.dt, cfg.tau_mem, cfg.v_threshold, cfg.tau_out)
        rs = net.readout_step()
        kappa = _kappa(float(1 - rs.dv[0]), float(rs.gain[0]), steps) / steps
        target = _one_hot(y, n_classes, float(kappa.sum()) if cfg.target is None else cfg.target)

        # initial state: the true forward pass (feasible for (S), (M), (R), (H)); duals zero
        _, spk = net.forward(x)
        layers: list[_Layer] = []
        prev = x
        for k in range(len(cfg.n_hidden)):
            st = net.hidden_step(k)
            theta = np.vstack([weights[k].T, biases[k][None]])
            z = (_shift_ones(prev) @ theta).reshape(n, steps, -1)
            s = spk[f"lif{k + 1}"].copy()
            v = _membrane(z, s, st)
            lay = _Layer(theta, z, np.zeros_like(z), v, s, s.copy(), np.zeros_like(z),
                         np.zeros_like(z), step=st)
            if cfg.l1 > 0:
                lay.q, lay.p_dual = weights[k].copy(), np.zeros_like(weights[k])
            layers.append(lay)
            prev = s
        feats = np.einsum("t,ntk->nk", kappa, _shift_ones(prev).reshape(n, steps, -1))
        theta_o = weight_update(feats, target, 1.0, cfg.ridge)
        out = _Layer(theta_o, (_shift_ones(prev) @ theta_o).reshape(n, steps, -1),
                     np.zeros((n, steps, n_classes)))
        if cfg.l1 > 0:
            out.q, out.p_dual = theta_o[:-1].T.copy(), np.zeros((n_classes, sizes[-1]))
        _set_net(net, layers, out, cfg.l1 > 0)
        self.history = []
        # set-up and iterations, without the per-iteration evaluation: wall clock and the
        # process' CPU time (the one to compare runs by on a shared machine)
        self.train_time_s = time.perf_counter() - t_setup
        self.train_cpu_s = time.process_time() - c_setup
        rho = cfg.rho
        if cfg.track_forward:
            self.history.append(self._evaluate(
                {"iteration": 0, "rho": rho, "time_s": self.train_time_s}, net, x, y, target,
                sets))
        bar = _progress(progress, cfg.iterations)
        for it in range(cfg.iterations):
            start, c_start = time.perf_counter(), time.process_time()
            row = self._iterate(x, target, kappa, layers, out, rho, it)
            self.train_time_s += time.perf_counter() - start
            self.train_cpu_s += time.process_time() - c_start
            row["time_s"] = self.train_time_s
            _set_net(net, layers, out, cfg.l1 > 0)
            row["nonzero"] = net.n_nonzero()
            if cfg.track_forward:
                row = self._evaluate(row, net, x, y, target, sets)
            self.history.append(row)
            if callback is not None:
                callback(row)
            if bar is not None:
                bar[0].update(bar[1], advance=1, description=(
                    f"ADMM it {it + 1}: primal {row['primal']:.3g} dual {row['dual']:.3g}"))
            rho = _next_rho(rho, row, cfg)
        if bar is not None:
            bar[0].stop()
        _set_net(net, layers, out, cfg.l1 > 0)
        if cfg.refit_readout:
            self.pre_refit_train_accuracy = float(np.mean(net.predict(x) == y))
            net.weights[-1], net.biases[-1] = _refit(net, readout_features(net, x), target, cfg)
        return net

    def _evaluate(self, row: dict, net: ADMMNet, x: np.ndarray, y: np.ndarray,
                  target: np.ndarray, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
        """Add the true forward pass' loss and accuracies, with ADMM's readout and refitted."""
        _, spikes = net.forward(x)
        feats = readout_features(net, x, spikes)
        theta = np.vstack([net.weights[-1].T, net.biases[-1][None]])
        w_r, b_r = _refit(net, feats, target, self.config)
        theta_r = np.vstack([w_r.T, b_r[None]])
        score = feats @ theta
        row["loss"] = 0.5 * float(np.sum((target - score) ** 2)) / len(x)
        row["train_acc"] = float(np.mean(np.argmax(score, axis=1) == y))
        row["train_acc_refit"] = float(np.mean(np.argmax(feats @ theta_r, axis=1) == y))
        for name, (xs, ys) in sets.items():
            f = readout_features(net, xs)
            row[f"{name}_acc"] = float(np.mean(np.argmax(f @ theta, axis=1) == ys))
            row[f"{name}_acc_refit"] = float(np.mean(np.argmax(f @ theta_r, axis=1) == ys))
        row["hidden_spike_rate"] = float(np.mean([s.mean() for s in spikes.values()])
                                         ) if spikes else 0.0
        return row

    def _iterate(self, x, target, kappa, layers, out, rho, it) -> dict:
        """One ADMM iteration (updates in the module docstring's order); returns its row."""
        cfg = self.config
        rs, rm, rr = (rho * w for w in cfg.penalty_weights)  # (S), (M), (R) penalties
        n, steps, _ = x.shape
        prev = x
        sq_primal, sq_dual, count = 0.0, 0.0, 0
        all_layers = layers + [out]
        joint = cfg.output == "joint" and bool(layers)
        for k, lay in enumerate(layers):
            c, g, beta, vth = _scalars(lay.step)
            a_in = _shift_ones(prev)
            lay.theta = _w_step(a_in, lay, rs, cfg)
            m = (a_in @ lay.theta).reshape(lay.z.shape)
            r = lay.v * (1 - lay.s)
            r_prev = np.concatenate([np.zeros_like(r[:, :1]), r[:, :-1]], axis=1)
            w = lay.v - c * r_prev - beta + lay.mu / rm
            z_new = preactivation_update(m, lay.lam, w, g, rs, rm)
            sq_dual += rs ** 2 * float(np.sum((z_new - lay.z) ** 2))
            lay.z = z_new
            v_old = lay.v.copy()
            r_t = np.zeros((n, lay.z.shape[2]))
            down = cfg.spike_update == "downstream" and not (joint and k == len(layers) - 1)
            if down:  # the next layer's (S) term, linearised at the current spikes (a = s)
                nxt = all_layers[k + 1]
                w_next = nxt.theta[:-1].T
                resid = lay.s[:, :-1] @ w_next.T - (nxt.z[:, 1:] + nxt.lam[:, 1:] / rs
                                                    - nxt.theta[-1])
                grad, curv = resid @ w_next, 0.5 * np.sum(w_next ** 2, axis=0)
            for t in range(steps):  # forward sweep: r[t-1] is this iteration's
                p = c * r_t + g * lay.z[:, t] + beta - lay.mu[:, t] / rm
                q = None if t == steps - 1 else \
                    lay.v[:, t + 1] - g * lay.z[:, t + 1] - beta + lay.mu[:, t + 1] / rm
                if down:
                    cost = None
                    if t < steps - 1:
                        d0, d1 = -lay.s[:, t], 1.0 - lay.s[:, t]
                        cost = (rs * (d0 * grad[:, t] + d0 ** 2 * curv),
                                rs * (d1 * grad[:, t] + d1 ** 2 * curv))
                    v_t, s_t, _ = spike_membrane_update(p, q, lay.s[:, t], c, vth, rm, 0.0,
                                                        cfg.eps, cost)
                else:
                    e = lay.a[:, t] + lay.nu[:, t] / rr
                    v_t, s_t, _ = spike_membrane_update(p, q, e, c, vth, rm, rr, cfg.eps)
                lay.v[:, t], lay.s[:, t] = v_t, s_t
                r_t = v_t * (1 - s_t)
            sq_dual += rm ** 2 * float(np.sum((lay.v - v_old) ** 2))
            if down:  # no relay: the next layer reads the spikes themselves
                sq_dual += rs ** 2 * float(np.sum((lay.s - lay.a) ** 2))
                lay.a = lay.s.copy()
                prev = lay.a
                continue
            if joint and k == len(layers) - 1:  # joint output block: W_o, then a_L
                k_next = np.append(kappa[1:], 0.0)  # weight of a[t] in the score
                out.theta = _w_step(_score_features(lay.a, kappa), out, 1.0, cfg,
                                    target=target)
                y_res = target - float(kappa.sum()) * out.theta[-1]
                a_new = output_relay_update(out.theta[:-1].T, y_res, lay.s - lay.nu / rr,
                                            k_next, rr)
                sq_dual += rr ** 2 * float(np.sum((a_new - lay.a) ** 2))
                lay.a = a_new
                prev = lay.a
                continue
            nxt = all_layers[k + 1]
            w_next, b_next = nxt.theta[:-1].T, nxt.theta[-1]
            tgt = (nxt.z[:, 1:] + nxt.lam[:, 1:] / rs - b_next).reshape(-1, nxt.z.shape[2])
            a_new = lay.a.copy()
            hsz = lay.a.shape[2]
            a_new[:, :-1] = relay_update(w_next, tgt, lay.s[:, :-1].reshape(-1, hsz),
                                         lay.nu[:, :-1].reshape(-1, hsz), rs, rr
                                         ).reshape(n, steps - 1, hsz)
            a_new[:, -1] = lay.s[:, -1] - lay.nu[:, -1] / rr
            sq_dual += rr ** 2 * float(np.sum((a_new - lay.a) ** 2))
            lay.a = a_new
            prev = lay.a
        if joint:
            score = _score_features(prev, kappa) @ out.theta
            loss = 0.5 * float(np.sum((target - score) ** 2)) / n
        else:  # split output layer: W_o, then z_o against the loss
            a_in = _shift_ones(prev)
            out.theta = _w_step(a_in, out, rs, cfg)
            m = (a_in @ out.theta).reshape(out.z.shape)
            z_new = readout_preactivation_update(m - out.lam / rs, kappa, target, rs)
            sq_dual += rs ** 2 * float(np.sum((z_new - out.z) ** 2))
            out.z = z_new
            loss = 0.5 * float(np.sum((target - np.einsum("t,ntc->nc", kappa, out.z)) ** 2)) / n
        # dual ascent and primal residuals
        prev = x
        for lay in all_layers:
            if lay.step is not None or not joint:
                cs = lay.z - (_shift_ones(prev) @ lay.theta).reshape(lay.z.shape)
                lay.lam += rs * cs
                sq_primal += float(np.sum(cs ** 2))
                count += cs.size
            if lay.step is not None:
                c, g, beta, _ = _scalars(lay.step)
                r = lay.v * (1 - lay.s)
                r_prev = np.concatenate([np.zeros_like(r[:, :1]), r[:, :-1]], axis=1)
                cm = lay.v - c * r_prev - g * lay.z - beta
                cr = lay.a - lay.s
                lay.mu += rm * cm
                lay.nu += rr * cr
                sq_primal += float(np.sum(cm ** 2) + np.sum(cr ** 2))
                count += cm.size + cr.size
                prev = lay.a
            if lay.q is not None:
                cq = lay.theta[:-1].T - lay.q
                lay.p_dual += cfg.rho_l1 * cq
                sq_primal += float(np.sum(cq ** 2))
                count += cq.size
        return {"iteration": it + 1, "rho": rho, "primal": float(np.sqrt(sq_primal / count)),
                "dual": float(np.sqrt(sq_dual / count)), "admm_loss": loss}


def _next_rho(rho: float, row: dict, cfg: ADMMConfig) -> float:
    """The next iteration's penalty under cfg.rho_mode (RHO_MODES). The duals are stored
    unscaled (y, not y / rho), so a change of rho needs no rescaling of them."""
    if cfg.rho_mode == "balance":  # Boyd et al. 2011, sec. 3.4.1, kept within balance_range
        if row["primal"] > cfg.balance_mu * row["dual"]:
            rho *= cfg.balance_tau
        elif row["dual"] > cfg.balance_mu * row["primal"]:
            rho /= cfg.balance_tau
        return float(np.clip(rho, cfg.rho / cfg.balance_range, cfg.rho * cfg.balance_range))
    if cfg.rho_mode == "geometric":
        return min(rho * cfg.rho_growth, cfg.rho_max)
    return rho


def _refit(net: ADMMNet, feats: np.ndarray, target: np.ndarray, cfg: ADMMConfig
           ) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form readout (ridge least squares of the targets on the true forward pass'
    readout features); with the l1 split the output layer keeps its zeros."""
    theta = weight_update(feats, target, 1.0, cfg.ridge)
    w_o = theta[:-1].T
    if cfg.l1 > 0:
        w_o = np.where(net.weights[-1] != 0, w_o, 0.0)
    return w_o, theta[-1].copy()


def _scalars(st: NeuronParams) -> tuple[float, float, float, float]:
    """(c = 1 - dv, gain, bias, v_th) of a homogeneous population, as floats."""
    first = [float(np.asarray(a).reshape(-1)[0]) for a in (1 - st.dv, st.gain, st.bias)]
    vth = float(np.asarray(st.v_threshold).reshape(-1)[0]) if st.v_threshold is not None else 0.0
    return first[0], first[1], first[2], vth


def _score_features(a: np.ndarray, kappa: np.ndarray) -> np.ndarray:
    """[sum_t kappa_t a[t-1], sum_t kappa_t] per sample: the readout score is this @ Theta_o."""
    n, steps, _ = a.shape
    return np.einsum("t,ntk->nk", kappa, _shift_ones(a).reshape(n, steps, -1))


def _w_step(a_in: np.ndarray, lay: _Layer, rho: float, cfg: ADMMConfig,
            target: np.ndarray | None = None) -> np.ndarray:
    """W update (ridge least squares), then the l1 split's Q update when enabled."""
    tgt = (lay.z + lay.lam / rho).reshape(a_in.shape[0], -1) if target is None else target
    if lay.q is None:
        return weight_update(a_in, tgt, rho, cfg.ridge)
    rho_q = cfg.rho_l1
    theta = weight_update(a_in, tgt, rho, cfg.ridge, lay.q - lay.p_dual / rho_q, rho_q)
    lay.q = soft_threshold(theta[:-1].T + lay.p_dual / rho_q, cfg.l1 / rho_q)
    return theta


def _membrane(z: np.ndarray, s: np.ndarray, st: NeuronParams) -> np.ndarray:
    """Membrane before reset given pre-activations and spikes: (M) solved forward in time."""
    c, g, beta, _ = _scalars(st)
    v = np.zeros_like(z)
    r = np.zeros_like(z[:, 0])
    for t in range(z.shape[1]):
        v[:, t] = c * r + g * z[:, t] + beta
        r = v[:, t] * (1 - s[:, t])
    return v


def _set_net(net: ADMMNet, layers: list[_Layer], out: _Layer, sparse: bool) -> None:
    """Copy the current weights into `net` (the l1 split's Q when enabled: exact zeros)."""
    for k, lay in enumerate(layers + [out]):
        net.weights[k] = lay.q.copy() if sparse else lay.theta[:-1].T.copy()
        net.biases[k] = lay.theta[-1].copy()


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    return bar, bar.add_task("ADMM", total=total)


def train_admm(x: np.ndarray, y: np.ndarray, config: ADMMConfig | None = None,
               **kwargs) -> tuple[ADMMNet, list[dict]]:
    """Convenience: ADMMTrainer(config).fit(x, y, **kwargs) -> (net, history)."""
    trainer = ADMMTrainer(config or ADMMConfig())
    net = trainer.fit(x, y, **kwargs)
    return net, trainer.history


# ---------------------------------------------------------------------------------------------
# Bridges to the model zoo and the training loop (torch imported only here)
# ---------------------------------------------------------------------------------------------
def to_model(net: ADMMNet):
    """The zoo's "ff" model (neurocompile.models) holding `net`'s weights (float32 there).

    Export it with neurocompile.train.export.to_nir like any trained model. Weights are cast
    to the model's dtype; round_float32(net) first for a model that equals `net` exactly.
    """
    import torch

    from neurocompile.models import build_model

    cfg = net.model_config()
    model = build_model("ff", n_in=cfg["n_in"], n_out=cfg["n_out"], n_hidden=cfg["n_hidden"],
                        neuron="lif", dt=net.dt, tau_mem=net.tau_mem,
                        v_threshold=net.v_threshold, tau_out=net.tau_out)
    names = [f"fc{k + 1}" for k in range(len(net.n_hidden))] + ["fc_out"]
    with torch.no_grad():
        for name, w, b in zip(names, net.weights, net.biases):
            layer = getattr(model, name)
            layer.weight.copy_(torch.as_tensor(w, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(b, dtype=layer.bias.dtype))
    return model


def round_float32(net: ADMMNet) -> ADMMNet:
    """Round weights and biases to float32 values (kept as float64), in place; returns `net`."""
    net.weights = [w.astype(np.float32).astype(np.float64) for w in net.weights]
    net.biases = [b.astype(np.float32).astype(np.float64) for b in net.biases]
    return net


# ADMMConfig fields that TrainConfig's own options set (the option that sets each)
_FROM_TRAIN_OPTIONS = {"n_hidden": "--hidden / --model-opt n_hidden", "iterations": "--epochs",
                       "seed": "--seed", "l1": "--lambda with --reg l1",
                       "dt": "--model-opt dt", "tau_mem": "--model-opt tau_mem",
                       "v_threshold": "--model-opt v_threshold", "tau_out": "--model-opt tau_out"}


def admm_config_from_options(config, hidden: tuple[int, ...], model: dict[str, float]
                             ) -> ADMMConfig:
    """The ADMMConfig of a TrainConfig: epochs -> iterations, seed, l1 = lam when reg is
    "l1", the model's neuron options, and config.optimizer_kwargs for everything else
    (rho, rho_mode, ...); a key that another option sets, or no ADMMConfig field, is a
    ConfigError."""
    from neurocompile import config as settings

    opts = dict(config.optimizer_kwargs)
    for key in opts:
        if key in _FROM_TRAIN_OPTIONS:
            raise ConfigError(f"train options: optimizer_kwargs: {key!r} is set by "
                              f"{_FROM_TRAIN_OPTIONS[key]}, not --optimizer-opt")
    if isinstance(opts.get("penalty_weights"), list):
        opts["penalty_weights"] = tuple(opts["penalty_weights"])
    values = {"n_hidden": hidden, "iterations": int(config.epochs), "seed": int(config.seed),
              "l1": float(config.lam) if config.reg == "l1" else 0.0, **model, **opts}
    return settings.from_mapping(ADMMConfig, values, "train options: optimizer_kwargs")


def train_with_loop_config(config, data=None):
    """`neurocompile train --optimizer admm`: ADMM on a loop TrainConfig -> (model, metrics).

    Maps TrainConfig: model must be "ff" with LIF neurons (model_kwargs n_hidden, tau_mem,
    v_threshold, tau_out, dt), epochs -> ADMM iterations (one full-batch iteration each),
    lam -> l1 when reg == "l1" (0 otherwise), seed, optimizer_kwargs -> the other ADMMConfig
    fields (admm_config_from_options). Writes checkpoint.safetensors and
    metrics.json into config.out_dir like neurocompile.train.loop.train.
    """
    import torch

    from neurocompile.data import load_dataset
    from neurocompile.ir.io import write_text
    from neurocompile.train.checkpoint import save_checkpoint
    from neurocompile.train.loop import (
        CHECKPOINT_NAME,
        METRICS_NAME,
        _default_classify,
        evaluate,
        sparsity_stats,
    )

    if config.model != "ff":
        raise UnsupportedError(f"optimizer 'admm' trains feed-forward LIF networks (model "
                               f"'ff'), got model {config.model!r}")
    kw = dict(config.model_kwargs)
    if kw.pop("neuron", "lif") != "lif":
        raise UnsupportedError("optimizer 'admm' supports neuron 'lif' only")
    hidden = kw.pop("n_hidden", 64)
    hidden = (int(hidden),) if isinstance(hidden, (int, np.integer)) else tuple(map(int, hidden))
    known = {"dt", "tau_mem", "v_threshold", "tau_out"}
    unknown = sorted(set(kw) - known - {"tau_syn"})
    if unknown:
        raise UnsupportedError(f"optimizer 'admm': model options {unknown} are not supported")
    if config.nproc != 1:
        raise UnsupportedError(f"optimizer 'admm' runs in one process, got nproc={config.nproc}")
    cfg = admm_config_from_options(config, hidden, {k: float(v) for k, v in kw.items()
                                                    if k in known})
    if data is None:
        data = load_dataset(config.dataset, **config.dataset_kwargs)
    if config.threads:
        torch.set_num_threads(config.threads)
    trainer = ADMMTrainer(cfg)
    start = time.perf_counter()
    net = round_float32(trainer.fit(data.train.x, data.train.y, data.n_classes,
                                    x_val=data.val.x, y_val=data.val.y,
                                    progress=config.progress))
    model = to_model(net)
    classify = _default_classify
    val = evaluate(model, data.val, classify)
    test = evaluate(model, data.test, classify)
    metrics = {
        "config": config.to_json(), "admm_config": cfg.to_dict(), "world_size": 1,
        "dataset": {"name": config.dataset, "train": len(data.train), "val": len(data.val),
                    "test": len(data.test), "steps": data.steps, "features": data.n_features,
                    "classes": data.n_classes},
        "epochs": [{"epoch": row["iteration"], **row} for row in trainer.history],
        "best_epoch": cfg.iterations, "stopped_early": False,
        "val_acc": val["acc"], "test_acc": test["acc"], "test_loss": test["loss"],
        "test_spikes_per_sample": test["spikes_per_sample"],
        "test_spikes_per_layer": test["spikes_per_layer"], **sparsity_stats(model),
        "train_time_s": time.perf_counter() - start, "checkpoint": None,
    }
    if config.out_dir:
        from pathlib import Path

        out = Path(config.out_dir)
        ckpt = save_checkpoint(out / CHECKPOINT_NAME, model,
                               {"epoch": cfg.iterations, "val_acc": val["acc"],
                                "test_acc": test["acc"], "config": config.to_json()})
        metrics["checkpoint"] = str(ckpt)
        write_text(out / METRICS_NAME, json.dumps(metrics, indent=2, default=str) + "\n")
    return model, metrics
