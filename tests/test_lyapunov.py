"""Lyapunov exponent estimators against systems where the exponents are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from neurocompile.errors import InputDataError
from neurocompile.passes.lnp import _noise_drive, find_recurrent_population, make_hrsnn_graph
from neurocompile.passes.lyapunov import (
    benettin_max_exponent,
    matrix_lyapunov_spectrum,
    spiking_lyapunov_spectrum,
)
from neurocompile.semantics import discretise
from neurocompile.targets.reference import simulate


def _normal_matrix(eigs: np.ndarray, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    return q @ np.diag(eigs) @ q.T


def test_qr_spectrum_of_symmetric_matrix_is_log_abs_eigenvalues():
    eigs = np.array([1.3, 0.9, -0.6, 0.4, -0.2, 0.05])
    lam = matrix_lyapunov_spectrum(_normal_matrix(eigs), steps=400, warmup=50)
    np.testing.assert_allclose(lam, np.sort(np.log(np.abs(eigs)))[::-1], atol=2e-3)


def test_qr_spectrum_of_rotation_blocks_counts_each_modulus_twice():
    # Normal, not symmetric: 2x2 blocks r*R(theta) have eigenvalues r*e^{+-i theta}.
    def block(r, th):
        return r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    a = np.zeros((4, 4))
    a[:2, :2], a[2:, 2:] = block(1.1, 0.7), block(0.5, 2.0)
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    lam = matrix_lyapunov_spectrum(q @ a @ q.T, steps=600, warmup=50)
    np.testing.assert_allclose(lam, np.log([1.1, 1.1, 0.5, 0.5]), atol=2e-3)


def test_qr_top_k_of_non_normal_matrix_converges_to_log_eigenvalues():
    # Upper-triangular (non-normal) map: exponents are still log|diagonal|, more slowly.
    a = np.diag([1.05, 0.8, 0.3]) + np.triu(np.full((3, 3), 2.0), 1)
    lam = matrix_lyapunov_spectrum(a, steps=3000, k=2, warmup=200)
    np.testing.assert_allclose(lam, np.log([1.05, 0.8]), atol=5e-3)


def test_time_varying_diagonal_map_gives_mean_log_gains():
    rng = np.random.default_rng(1)
    scale = np.array([1.0, 0.5, 0.25, 0.12, 0.06])
    gains = rng.uniform(0.5, 1.5, (2000, 5)) * scale
    lam = matrix_lyapunov_spectrum(lambda t: np.diag(gains[t]), steps=2000)
    expected = np.sort(np.log(gains).mean(axis=0))[::-1]
    np.testing.assert_allclose(lam, expected, atol=5e-3)
    # The sum of the exponents is the mean log-volume growth, exact at any length.
    assert lam.sum() == pytest.approx(expected.sum(), abs=1e-9)


def test_benettin_perturbation_growth_matches_spectral_radius():
    eigs = np.array([0.95, -0.7, 0.3, 0.1])
    a = _normal_matrix(eigs, seed=2)
    lam = benettin_max_exponent(lambda t, x: a @ x, np.ones(4), steps=400, renorm=5, warmup=50)
    assert lam == pytest.approx(np.log(0.95), abs=2e-3)
    # Unstable direction: positive exponent.
    lam_up = benettin_max_exponent(lambda t, x: 1.2 * (a @ x) / 0.95, np.zeros(4), steps=200,
                                   warmup=50)
    assert lam_up == pytest.approx(np.log(1.2), abs=2e-3)


def test_estimator_arguments_are_checked():
    with pytest.raises(InputDataError):
        matrix_lyapunov_spectrum(np.eye(3), steps=10, k=4)
    with pytest.raises(InputDataError):
        matrix_lyapunov_spectrum(np.ones((2, 3)), steps=10)
    with pytest.raises(InputDataError):
        benettin_max_exponent(lambda t, x: x, np.ones(2), steps=3, renorm=5)


def test_spiking_trajectory_is_the_reference_simulators():
    """The estimator's spike rate equals the reference simulator's on the same input spikes."""
    g = make_hrsnn_graph(12, 30, 4, seed=5)
    pop = find_recurrent_population(g)
    rng = np.random.default_rng(0)
    x = (rng.random((2, 120, 12)) < 0.15).astype(np.float64)
    w_in = np.asarray(g.nodes["fc1"].weight)
    drive = np.zeros((2, 120, 30))
    drive[:, 1:] = x[:, :-1] @ w_in.T
    p = discretise("lif1", g.nodes["lif1"], 1e-3)
    out = spiking_lyapunov_spectrum(np.asarray(g.nodes["rec1"].weight), drive, p.du, p.dv,
                                    p.gain, p.bias, p.v_threshold, k=3, warmup=0)
    sim = simulate(g, {"input": x})
    assert sim.counters["lif1"].spikes > 100
    assert out["rate"] * 2 * 120 * 30 == pytest.approx(sim.counters["lif1"].spikes, abs=1e-6)
    assert pop.size == 30 and len(out["exponents"]) == 3
    # The noise drive used by the pass follows the same one-step delay.
    d = _noise_drive(g, pop, 10, 1, 0.5, seed=0)
    assert np.all(d[:, 0] == 0)


def test_lif_population_uses_reduced_state():
    rng = np.random.default_rng(0)
    n = 6
    w = rng.normal(0, 0.3, (n, n))
    drive = rng.normal(0.3, 0.2, (1, 200, n))
    ones = np.ones(n)
    out = spiking_lyapunov_spectrum(w, drive, ones, 0.1 * ones, ones, 0 * ones, ones, k=None,
                                    warmup=20)
    assert out["reduced"] and len(out["exponents"]) == n
    # Without spikes or recurrence the map is v' -> 0.9 v': every exponent is log 0.9.
    quiet = spiking_lyapunov_spectrum(0 * w, drive * 0, ones, 0.1 * ones, ones, 0 * ones,
                                      1e9 * ones, k=3, warmup=5)
    np.testing.assert_allclose(quiet["exponents"], np.log(0.9), atol=1e-12)


def test_spiking_trajectory_is_advanced_by_the_shared_step(monkeypatch):
    """The estimator calls semantics.float.step once per step: one neuron update everywhere."""
    import neurocompile.passes.lyapunov as lyapunov

    calls = []
    real = lyapunov.step

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lyapunov, "step", counting)
    n = 5
    ones = np.ones(n)
    drive = np.random.default_rng(0).normal(0.3, 0.2, (2, 40, n))
    lyapunov.spiking_lyapunov_spectrum(np.zeros((n, n)), drive, 0.5 * ones, 0.1 * ones, ones,
                                       0 * ones, ones, k=2, warmup=10)
    assert len(calls) == 40
