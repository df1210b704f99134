"""A small, deterministic demo network and input for the sample energy report (docs/energy.md)."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neurocompile.ir.io import save_graph, save_spikes


def _lif(n: int, tau: float, vth: float) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / 1e-3), v_leak=np.zeros(n),
                   v_threshold=np.full(n, vth))


def sample_graph(n_in: int = 64, n_hidden: int = 32, n_out: int = 10, prune: float = 0.5,
                 seed: int = 0) -> nir.NIRGraph:
    """input -> fc1 (pruned to `prune` zeros) -> lif1 -> fc2 -> lif2 -> output; dt = 1 ms."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, 0.6, (n_hidden, n_in))
    w1[np.abs(w1) < np.quantile(np.abs(w1), prune)] = 0.0
    w2 = rng.normal(0.2, 0.6, (n_out, n_hidden))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=w1, bias=np.zeros(n_hidden)),
        "lif1": _lif(n_hidden, 5e-3, 1.0),
        "fc2": nir.Linear(weight=w2),
        "lif2": _lif(n_out, 5e-3, 1.0),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3})


def sample_input(n_in: int = 64, batch: int = 4, steps: int = 25, rate: float = 0.1,
                 seed: int = 1) -> np.ndarray:
    """Bernoulli spikes (batch, steps, n_in) with the given probability per step."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, n_in)) < rate).astype(np.float64)


def write_sample(out_dir: str | Path) -> tuple[Path, Path]:
    """Write model.nir and input.npz into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    g = save_graph(sample_graph(), out_dir / "model.nir")
    x = save_spikes({"input": sample_input()}, out_dir / "input.npz")
    return g, x
