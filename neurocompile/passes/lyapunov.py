"""Lyapunov exponent estimators for discrete-time maps and recurrent spiking populations.

Two estimators, both for a map x[t+1] = F_t(x[t]) with Jacobians J_t = dF_t/dx at x[t]:

* QR (Benettin et al. 1980; Shimada & Nagashima 1979): carry an orthonormal frame Q (dim x k),
  re-orthonormalise every step, Q[t+1] R[t+1] = J_t Q[t], and average the stretching factors:

      lambda_i = (1/T) * sum_t log |R[t]_ii|          (nats per step; sorted descending)

  This gives the k largest exponents. For a constant matrix A the exponents are log|eig(A)|.
* Perturbation growth (Benettin's method, one vector): evolve a reference trajectory and a
  copy displaced by eps, measure the distance after `renorm` steps, rescale it back to eps:

      lambda_max = (1 / (n * renorm)) * sum_n log(d_n / eps)

For a recurrent spiking population (the contract, neurocompile/semantics/float.py) the map
is not differentiable at the threshold. `spiking_lyapunov_spectrum` runs the exact spiking
trajectory (hard threshold, reset to zero, as the reference simulator) on a state of pre-reset
quantities y = (u, v') and uses a surrogate Jacobian along it:

    u[t+1]  = a_u * u[t] + g * (W s[t] + c[t])            a_u = 1 - du, a_v = 1 - dv
    v'[t+1] = a_v * v'[t] * (1 - s[t]) + u[t+1] + bias    s[t] = H(v'[t] - theta)

    ds/dv'  ~ sigma'(v') = (beta / |theta|) * sig(x) * (1 - sig(x)),  x = beta (v' - theta)/|theta|
    J = [[diag(a_u),  diag(g) W D],
         [diag(a_u),  diag(a_v * ((1 - s) - v' D)) + diag(g) W D]]     D = diag(sigma'(v'))

With beta = 4 the surrogate's peak slope is 1/|theta| (one spike per threshold of membrane).
When every neuron has du = 1 (LIF: u carries no memory) the state reduces to v' alone,
J = diag(a_v ((1 - s) - v' D)) + diag(g) W D. Exponents are per step; divide by dt for 1/s.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.semantics.float import NeuronParams, step

_TINY = 1e-300


def qr_spectrum(jvp: Callable[[int, np.ndarray], np.ndarray], dim: int, steps: int,
                k: int | None = None, *, warmup: int = 0, batch: int = 1,
                seed: int = 0, sort: bool = True) -> np.ndarray:
    """k largest Lyapunov exponents (nats/step) of a map given its Jacobian-vector products.

    jvp(t, Q) returns J_t @ Q for Q of shape (batch, dim, k). The first `warmup` steps align
    the frame without being averaged. Returns (k,) exponents averaged over the batch, sorted
    in descending order (sort=False: in the order of the frame's columns).
    """
    k = dim if k is None else int(k)
    if not 1 <= k <= dim:
        raise InputDataError(f"number of exponents k must be in [1, {dim}], got {k}")
    if steps < 1:
        raise InputDataError(f"steps must be >= 1, got {steps}")
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((batch, dim, k)))
    acc = np.zeros((batch, k))
    for t in range(warmup + steps):
        q, r = np.linalg.qr(jvp(t, q))
        diag = np.abs(np.diagonal(r, axis1=-2, axis2=-1))
        if t >= warmup:
            acc += np.log(np.maximum(diag, _TINY))
    lam = acc.mean(axis=0) / steps
    return np.sort(lam)[::-1] if sort else lam


def matrix_lyapunov_spectrum(matrices: np.ndarray | Callable[[int], np.ndarray], steps: int,
                             k: int | None = None, *, warmup: int = 0, seed: int = 0
                             ) -> np.ndarray:
    """Exponents of x[t+1] = A_t x[t]: `matrices` is one (dim, dim) array or a function t -> A_t."""
    if callable(matrices):
        dim = np.asarray(matrices(0)).shape[0]
        return qr_spectrum(lambda t, q: np.asarray(matrices(t)) @ q, dim, steps, k,
                           warmup=warmup, seed=seed)
    a = np.asarray(matrices, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputDataError(f"expected a square matrix, got shape {a.shape}")
    return qr_spectrum(lambda t, q: a @ q, a.shape[0], steps, k, warmup=warmup, seed=seed)


def benettin_max_exponent(step: Callable[[int, np.ndarray], np.ndarray], x0: np.ndarray,
                          steps: int, *, eps: float = 1e-8, renorm: int = 1, warmup: int = 0,
                          seed: int = 0) -> float:
    """Largest exponent (nats/step) from the growth of a small perturbation, renormalised to eps.

    step(t, x) -> x[t+1]. The perturbation starts in a random direction; the first `warmup`
    steps (a multiple of renorm is not required) only align it.
    """
    if renorm < 1 or steps < renorm:
        raise InputDataError(f"need 1 <= renorm <= steps, got renorm={renorm}, steps={steps}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x0, dtype=np.float64).copy()
    d0 = rng.standard_normal(x.shape)
    y = x + eps * d0 / np.linalg.norm(d0)
    total, count, t = 0.0, 0, 0
    for phase_steps, record in ((warmup, False), (steps, True)):
        n_blocks = phase_steps // renorm
        for _ in range(n_blocks):
            for _ in range(renorm):
                x, y = step(t, x), step(t, y)
                t += 1
            diff = y - x
            dist = float(np.linalg.norm(diff))
            if record:
                total += np.log(max(dist, _TINY) / eps)
                count += 1
            if dist == 0.0:  # perturbation died completely: restart in a fresh direction
                diff = rng.standard_normal(x.shape)
                dist = float(np.linalg.norm(diff))
            y = x + eps * diff / dist
    return total / (count * renorm)


def surrogate_slope(v: np.ndarray, theta: np.ndarray, beta: float) -> np.ndarray:
    """Derivative of the sigmoid surrogate of H(v - theta), scaled to the threshold."""
    scale = beta / np.abs(theta)
    sig = 1.0 / (1.0 + np.exp(-np.clip(scale * (v - theta), -60, 60)))
    return scale * sig * (1.0 - sig)


def spiking_lyapunov_spectrum(w_rec: np.ndarray, drive: np.ndarray, du: np.ndarray,
                              dv: np.ndarray, gain: np.ndarray, bias: np.ndarray,
                              theta: np.ndarray, *, k: int | None = 8, warmup: int = 50,
                              beta: float = 4.0, seed: int = 0) -> dict:
    """Surrogate-Jacobian Lyapunov spectrum of one recurrent spiking population (module doc).

    drive: (batch, steps, N) external synaptic input c[t] the population reads at step t (the
    input Affine applied to the presynaptic activity of step t-1, including its bias). All
    parameters are per-neuron arrays (N,) of the discretised node. The trajectory is advanced
    by `semantics.float.step`, the one neuron update of every NumPy simulation.
    Returns {"exponents": (k,) nats/step, "rate": mean spikes per neuron per step,
    "reduced": bool (LIF state reduced to v'), and per neuron, averaged over the batch and the
    steps after warmup: "rates" (spikes/step), "slope" (surrogate slope sigma'(v')),
    "leak" (the v-diagonal a_v ((1 - s) - v' D) of the Jacobian), "participation" ((N, k):
    each neuron's share q_u^2 + q_v^2 of each Lyapunov vector)}.
    """
    w = np.asarray(w_rec, dtype=np.float64)
    drive = np.asarray(drive, dtype=np.float64)
    if drive.ndim != 3 or drive.shape[2] != w.shape[0]:
        raise InputDataError(f"drive must be (batch, steps, {w.shape[0]}), got {drive.shape}")
    batch, steps, n = drive.shape
    if steps <= warmup:
        raise InputDataError(f"need more steps ({steps}) than warmup ({warmup})")
    params = NeuronParams(*(np.broadcast_to(np.asarray(x, np.float64), (n,)).copy()
                            for x in (du, dv, gain, bias, theta)))
    dyn = params.prepare(np.float64)
    a_u, a_v, g, th = dyn.keep_u, dyn.keep_v, dyn.gain, dyn.v_threshold
    reduced = bool(np.all(a_u == 0))
    dim = n if reduced else 2 * n
    k = dim if k is None else min(int(k), dim)
    u, v = dyn.state(batch)          # v after reset, as `step` keeps it
    vpre = np.zeros((batch, n))      # pre-reset membrane v'[t], as the threshold saw it
    s = np.zeros((batch, n), dtype=bool)
    sums = {name: np.zeros(n) for name in ("rates", "slope", "leak")}
    part = np.zeros((n, k))
    wt = w.T

    def jvp(t: int, q: np.ndarray) -> np.ndarray:
        # Jacobian at the current state (u[t], v'[t]) maps to (u[t+1], v'[t+1]).
        sf = s.astype(np.float64)
        d = surrogate_slope(vpre, th, beta)                    # (B, N)
        r = a_v * ((1.0 - sf) - vpre * d)                       # (B, N)
        if reduced:
            qv = q
            rec = g[None, :, None] * np.einsum("ij,bjk->bik", w, d[:, :, None] * qv)
            out = r[:, :, None] * qv + rec
        else:
            qu, qv = q[:, :n], q[:, n:]
            rec = g[None, :, None] * np.einsum("ij,bjk->bik", w, d[:, :, None] * qv)
            nu = a_u[None, :, None] * qu + rec
            out = np.concatenate([nu, nu + r[:, :, None] * qv], axis=1)
        if t >= warmup:
            sums["slope"] += d.mean(axis=0)
            sums["leak"] += r.mean(axis=0)
            sq = q ** 2
            part[...] += (sq if reduced else sq[:, :n] + sq[:, n:]).mean(axis=0)
        # Advance the exact spiking trajectory by one step with the shared update.
        step(dyn, u, v, sf @ wt + drive[:, t], out=s, pre_reset=vpre)
        if t >= warmup:
            sums["rates"] += s.mean(axis=0)
        return out

    lam = qr_spectrum(jvp, dim, steps - warmup, k, warmup=warmup, batch=batch, seed=seed,
                      sort=False)
    order = np.argsort(-lam, kind="stable")
    m = steps - warmup
    rates = sums["rates"] / m
    return {"exponents": lam[order], "rate": float(rates.mean()), "reduced": reduced,
            "rates": rates, "slope": sums["slope"] / m, "leak": sums["leak"] / m,
            "participation": part[:, order] / m}
