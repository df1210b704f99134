"""Helpers shared by the Lava target tests (no tests here): dyadic-weight graph builders."""

from __future__ import annotations

import os

import nir
import numpy as np


def ensure_lava_env() -> str | None:
    """The Lava interpreter the target will use (NEUROCOMPILE_LAVA_PYTHON or .venv-lava), or None."""
    from conftest import lava_python

    found = lava_python()
    if found is not None:
        os.environ.setdefault("NEUROCOMPILE_LAVA_PYTHON", found)
    return found


def dyadic(rng: np.random.Generator, shape, scale: int = 64, lo: int = -48, hi: int = 64,
           density: float = 1.0) -> np.ndarray:
    """Random multiples of 1/scale; entries dropped with probability 1 - density (pruned zeros)."""
    w = rng.integers(lo, hi + 1, shape) / scale
    if density < 1.0:
        w = w * (rng.random(shape) < density)
    return w


def lif(n: int, vth: float = 0.5, v_leak: float = 0.0) -> nir.LIF:
    """LIF with dt = 1 ms: dv = 0.5, gain = dv * r = 1, bias = dv * v_leak."""
    return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.full(n, v_leak),
                   v_threshold=np.full(n, vth))


def cuba_lif(n: int, vth: float = 0.5, v_leak: float = 0.0) -> nir.CubaLIF:
    """CubaLIF with du = 0.25, dv = 0.5 and gain (dv*r)*(du*w_in) = 1."""
    return nir.CubaLIF(tau_syn=np.full(n, 4e-3), tau_mem=np.full(n, 2e-3), r=np.full(n, 2.0),
                       v_leak=np.full(n, v_leak), v_threshold=np.full(n, vth),
                       w_in=np.full(n, 4.0))


def cuba_li(n: int) -> nir.CubaLI:
    """Non-spiking readout: du = 0.5, dv = 0.25, gain 1."""
    return nir.CubaLI(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.full(n, 4.0),
                      v_leak=np.zeros(n), w_in=np.full(n, 2.0))


def graph(nodes: dict, edges: list, **meta) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, **meta}, type_check=False)


def feedforward(rng, n_in=12, n_h=10, n_out=5, density=1.0) -> nir.NIRGraph:
    """Input -> Affine(bias) -> LIF -> Scale -> Linear -> CubaLIF -> Output, plus LI readout."""
    return graph(
        {"input": nir.Input(np.array([n_in])),
         "fc1": nir.Affine(dyadic(rng, (n_h, n_in), density=density),
                           dyadic(rng, (n_h,), lo=-4, hi=8)),
         "lif1": lif(n_h, v_leak=1 / 32),
         "scale": nir.Scale(np.full(n_h, 0.5)),
         "fc2": nir.Linear(dyadic(rng, (n_out, n_h), density=density)),
         "lif2": cuba_lif(n_out, vth=0.25, v_leak=1 / 16),
         "fc_ro": nir.Linear(dyadic(rng, (3, n_h))),
         "readout": cuba_li(3),
         "output": nir.Output(np.array([n_out])),
         "output_v": nir.Output(np.array([3]))},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "scale"), ("scale", "fc2"), ("fc2", "lif2"),
         ("lif2", "output"), ("lif1", "fc_ro"), ("fc_ro", "readout"), ("readout", "output_v")])


def recurrent(rng, n_in=10, n_h=12, n_out=4) -> nir.NIRGraph:
    """Input -> Linear -> LIF with a recurrent Linear -> Affine -> IF -> Output."""
    return graph(
        {"input": nir.Input(np.array([n_in])),
         "fc1": nir.Linear(dyadic(rng, (n_h, n_in))),
         "lif1": lif(n_h),
         "rec1": nir.Linear(dyadic(rng, (n_h, n_h), lo=-32, hi=32)),
         "fc2": nir.Affine(dyadic(rng, (n_out, n_h)), np.full(n_out, 1 / 64)),
         "if2": nir.IF(r=np.ones(n_out), v_threshold=np.full(n_out, 0.75)),
         "output": nir.Output(np.array([n_out]))},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"), ("lif1", "fc2"),
         ("fc2", "if2"), ("if2", "output")])


def convnet(rng) -> nir.NIRGraph:
    """Input (1,6,6) -> Conv2d 3x3 -> LIF (2,4,4) -> SumPool 2x2 -> Flatten -> Linear -> LIF."""
    return graph(
        {"input": nir.Input(np.array([1, 6, 6])),
         "conv": nir.Conv2d(input_shape=(6, 6), weight=dyadic(rng, (2, 1, 3, 3), lo=-16),
                            stride=1, padding=0, dilation=1, groups=1,
                            bias=np.array([1 / 64, -1 / 32])),
         "lif1": nir.LIF(tau=np.full((2, 4, 4), 2e-3), r=np.full((2, 4, 4), 2.0),
                         v_leak=np.zeros((2, 4, 4)), v_threshold=np.full((2, 4, 4), 0.5)),
         "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
         "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
         "fc": nir.Linear(dyadic(rng, (4, 8))),
         "lif2": lif(4, vth=0.25),
         "output": nir.Output(np.array([4]))},
        [("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"), ("flat", "fc"),
         ("fc", "lif2"), ("lif2", "output")])


def spikes(rng, batch: int, steps: int, shape, rate: float = 0.3) -> np.ndarray:
    return (rng.random((batch, steps) + tuple(shape)) < rate).astype(np.float64)
