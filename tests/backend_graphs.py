"""Generated graphs for the backend equivalence tests (no tests here).

`random_graph(seed)` draws a graph that uses every supported node type across seeds: a dense
trunk (Affine / Linear / Scale into LIF, CubaLIF or IF, optional recurrent Linear, through a
Delay or not, a Delay, a Threshold, a skip edge that sums two inputs into one neuron) or a
convolutional trunk
(Conv1d or Conv2d, SumPool2d or AvgPool2d, Flatten), each with a spiking output and an LI or
CubaLI readout. `weights="dyadic"` draws multiples of 1/64 (sums of spikes times weights are
exact in float32 and float64, so any summation order gives the same value); "normal" draws
Gaussian weights (then the order of a sum can change its last bit).
"""

from __future__ import annotations

import nir
import numpy as np

DT = 1e-3
TAUS = (2e-3, 4e-3, 8e-3)  # dt/tau = 1/2, 1/4, 1/8: exact per-step factors


def _w(rng, shape, weights: str, scale: float = 1.0) -> np.ndarray:
    if weights == "dyadic":
        return rng.integers(-40, 64, shape) / 64 * scale
    return rng.normal(0.15, 0.5, shape) * scale


def neuron(rng, kind: str, shape) -> nir.NIRNode:
    """A population of `kind` with per-neuron parameters on an exact grid."""
    shape = tuple(np.atleast_1d(shape))
    full = lambda v: np.full(shape, v)  # noqa: E731
    tau = lambda: rng.choice(TAUS, shape)  # noqa: E731
    r = rng.choice([1.0, 2.0], shape)
    vth = rng.choice([0.25, 0.5, 0.75], shape)
    leak = rng.choice([0.0, 1 / 32], shape)
    if kind == "LIF":
        return nir.LIF(tau=tau(), r=r, v_leak=leak, v_threshold=vth)
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=leak, v_threshold=vth,
                           w_in=rng.choice([1.0, 4.0], shape))
    if kind == "IF":
        return nir.IF(r=r, v_threshold=vth + 0.5)
    if kind == "LI":
        return nir.LI(tau=tau(), r=r, v_leak=full(0.0))
    if kind == "CubaLI":
        return nir.CubaLI(tau_syn=tau(), tau_mem=tau(), r=r, v_leak=full(0.0),
                          w_in=rng.choice([1.0, 2.0], shape))
    raise ValueError(kind)


def _dense(rng, nodes, edges, src: str, n_src: int, weights: str) -> tuple[str, int]:
    """Input -> synapse -> spiking neuron (+ recurrence, delay, threshold, skip)."""
    n_h = int(rng.integers(4, 12))
    syn = rng.choice(["Affine", "Linear"])
    nodes["fc1"] = (nir.Affine(_w(rng, (n_h, n_src), weights), _w(rng, (n_h,), weights, 0.25))
                    if syn == "Affine" else nir.Linear(_w(rng, (n_h, n_src), weights)))
    kind = str(rng.choice(["LIF", "CubaLIF", "IF"]))
    nodes["h1"] = neuron(rng, kind, n_h)
    edges += [(src, "fc1"), ("fc1", "h1")]
    if rng.random() < 0.6:
        nodes["rec"] = nir.Linear(_w(rng, (n_h, n_h), weights, 0.5))
        edges += [("rec", "h1")]
        if rng.random() < 0.5:  # a Delay inside the cycle
            nodes["rec_delay"] = nir.Delay(rng.integers(1, 3, n_h) * DT)
            edges += [("h1", "rec_delay"), ("rec_delay", "rec")]
        else:
            edges.append(("h1", "rec"))
    last = "h1"
    if rng.random() < 0.5:
        nodes["scale"] = nir.Scale(rng.choice([0.5, 1.0, 1.5], n_h))
        edges.append((last, "scale"))
        last = "scale"
    if rng.random() < 0.5:
        nodes["delay"] = nir.Delay(rng.integers(1, 4, n_h) * DT)
        edges.append((last, "delay"))
        last = "delay"
    n_o = int(rng.integers(2, 6))
    nodes["fc2"] = nir.Linear(_w(rng, (n_o, n_h), weights))
    nodes["h2"] = neuron(rng, str(rng.choice(["LIF", "CubaLIF", "IF"])), n_o)
    edges += [(last, "fc2"), ("fc2", "h2")]
    if rng.random() < 0.5:  # a skip edge: h2 sums two inputs
        nodes["skip"] = nir.Linear(_w(rng, (n_o, n_src), weights))
        edges += [(src, "skip"), ("skip", "h2")]
    if rng.random() < 0.5:
        nodes["thr_in"] = nir.Linear(_w(rng, (n_o, n_h), weights))
        nodes["thr"] = nir.Threshold(np.full(n_o, 0.25))
        edges += [("h1", "thr_in"), ("thr_in", "thr"), ("thr", "out_thr")]
        nodes["out_thr"] = nir.Output(np.array([n_o]))
    return "h2", n_o


def _conv(rng, nodes, edges, src: str, shape, weights: str, sum_pool: bool) -> tuple[str, int]:
    """Input -> Conv -> spiking neuron -> (pool) -> Flatten -> Affine -> spiking neuron."""
    c_out = int(rng.integers(2, 4))
    if len(shape) == 2:  # Conv1d
        c, length = shape
        conv = nir.Conv1d(input_shape=length, weight=_w(rng, (c_out, c, 3), weights),
                          stride=1, padding=1, dilation=1, groups=1,
                          bias=_w(rng, (c_out,), weights, 0.25))
        out_shape = (c_out, length)
    else:
        c, hgt, wid = shape
        stride = int(rng.choice([1, 2]))
        conv = nir.Conv2d(input_shape=(hgt, wid), weight=_w(rng, (c_out, c, 3, 3), weights),
                          stride=stride, padding=1, dilation=1, groups=1,
                          bias=_w(rng, (c_out,), weights, 0.25))
        out_shape = (c_out, (hgt - 1) // stride + 1, (wid - 1) // stride + 1)
    nodes["conv"] = conv
    nodes["h1"] = neuron(rng, str(rng.choice(["LIF", "IF", "CubaLIF"])), out_shape)
    edges += [(src, "conv"), ("conv", "h1")]
    last, flat_in = "h1", out_shape
    if len(shape) == 3:
        pool_cls = nir.SumPool2d if sum_pool else nir.AvgPool2d
        nodes["pool"] = pool_cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                 padding=np.array([0, 0]))
        edges.append((last, "pool"))
        last, flat_in = "pool", (out_shape[0], out_shape[1] // 2, out_shape[2] // 2)
    n_flat = int(np.prod(flat_in))
    nodes["flat"] = nir.Flatten(input_type={"input": np.array(flat_in)}, start_dim=0, end_dim=-1)
    n_o = int(rng.integers(2, 6))
    nodes["fc2"] = nir.Affine(_w(rng, (n_o, n_flat), weights, 0.5), _w(rng, (n_o,), weights, 0.25))
    nodes["h2"] = neuron(rng, str(rng.choice(["LIF", "CubaLIF", "IF"])), n_o)
    edges += [(last, "flat"), ("flat", "fc2"), ("fc2", "h2")]
    return "h2", n_o


def random_graph(seed: int, weights: str = "dyadic") -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """(graph, input shape) for one seed; seeds cycle through dense, Conv2d and Conv1d trunks
    (Conv2d seeds alternate SumPool2d and AvgPool2d)."""
    rng = np.random.default_rng(seed)
    trunk = ("dense", "conv2d", "conv1d")[seed % 3]
    shape = {"dense": (int(rng.integers(4, 10)),), "conv2d": (int(rng.integers(1, 3)), 6, 6),
             "conv1d": (2, 8)}[trunk]
    nodes = {"input": nir.Input(np.array(shape))}
    edges: list[tuple[str, str]] = []
    if trunk == "dense":
        last, n = _dense(rng, nodes, edges, "input", shape[0], weights)
    else:
        last, n = _conv(rng, nodes, edges, "input", shape, weights, (seed // 3) % 2 == 0)
    nodes["out"] = nir.Output(np.array([n]))
    edges.append((last, "out"))
    n_ro = 3
    nodes["fc_ro"] = nir.Linear(_w(rng, (n_ro, n), weights))
    nodes["readout"] = neuron(rng, str(rng.choice(["LI", "CubaLI"])), n_ro)
    nodes["out_v"] = nir.Output(np.array([n_ro]))
    edges += [(last, "fc_ro"), ("fc_ro", "readout"), ("readout", "out_v")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)
    return graph, shape


def spikes(seed: int, batch: int, steps: int, shape, rate: float = 0.35) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    return (rng.random((batch, steps) + tuple(shape)) < rate).astype(np.float64)


def node_types(graph: nir.NIRGraph) -> set[str]:
    return {type(node).__name__ for node in graph.nodes.values()}
