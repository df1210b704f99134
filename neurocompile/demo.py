"""A small built-in demo: a recurrent 64-32-10 spiking network and rate-coded input spikes.

Deterministic (seeded) and download-free, so the main job runs on a fresh machine.
"""

from __future__ import annotations

import nir
import numpy as np

DEMO_DT = 1e-3


def demo_graph(seed: int = 0) -> nir.NIRGraph:
    """Input(64) -> Affine -> CubaLIF(32, recurrent) -> Affine -> LIF(10) -> Output."""
    rng = np.random.default_rng(seed)
    n_in, n_hid, n_out = 64, 32, 10
    # Weights on a 1/64 grid keep float arithmetic exact across backends.
    w1 = np.round(rng.normal(0, 0.35, (n_hid, n_in)) * 64) / 64
    w_rec = np.round(rng.normal(0, 0.15, (n_hid, n_hid)) * 64) / 64
    w2 = np.round(rng.normal(0, 0.5, (n_out, n_hid)) * 64) / 64
    hid = nir.CubaLIF(
        tau_syn=np.full(n_hid, 2 * DEMO_DT), tau_mem=np.full(n_hid, 4 * DEMO_DT),
        r=np.full(n_hid, 4.0), v_leak=np.zeros(n_hid), v_threshold=np.ones(n_hid),
        w_in=np.full(n_hid, 2.0))
    out = nir.LIF(tau=np.full(n_out, 2 * DEMO_DT), r=np.full(n_out, 2.0),
                  v_leak=np.zeros(n_out), v_threshold=np.ones(n_out))
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(n_hid)),
        "lif1": hid,
        "rec1": nir.Linear(weight=w_rec),
        "fc2": nir.Affine(weight=w2, bias=np.zeros(n_out)),
        "lif2": out,
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DEMO_DT})


def demo_input(batch: int = 8, steps: int = 50, rate: float = 0.1, seed: int = 1) -> np.ndarray:
    """Bernoulli spike trains (batch, steps, 64) at `rate` spikes per step."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, 64)) < rate).astype(np.float32)
