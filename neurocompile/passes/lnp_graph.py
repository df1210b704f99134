"""Graph access for Lyapunov Noise Pruning: the recurrent population and its synapses.

LNP works on one spiking population (LIF or CubaLIF) with a recurrent Linear/Affine edge onto
itself, fed and read by Linear/Affine synapses. This module finds it, drives it with noise,
and rewrites it (fewer neurons, a new recurrent weight, new time constants).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir.graph import predecessors, successors
from neurocompile.semantics.float import NeuronParams, discretise, graph_dt
from neurocompile.semantics.inverse import neuron_node


@dataclass
class RecurrentPopulation:
    """The recurrent population of a graph: its neuron node and the synapses around it."""

    neuron: str
    recurrent: str
    inputs: list[str]   # synaptic nodes feeding the population (besides the recurrent one)
    outputs: list[str]  # synaptic nodes reading the population (besides the recurrent one)
    size: int


def weight(node: nir.NIRNode) -> np.ndarray:
    return np.asarray(node.weight, dtype=np.float64)


def find_recurrent_population(graph: nir.NIRGraph, node: str | None = None) -> RecurrentPopulation:
    """Locate the spiking population with a Linear/Affine self-loop (the one named, if given)."""
    preds, succs = predecessors(graph), successors(graph)
    found = []
    for name, n in graph.nodes.items():
        if not isinstance(n, (nir.LIF, nir.CubaLIF)) or (node is not None and name != node):
            continue
        recs = [s for s in succs[name] if isinstance(graph.nodes[s], (nir.Linear, nir.Affine))
                and name in succs[s]]
        if recs:
            found.append((name, recs[0]))
    if not found:
        where = f"node {node!r}" if node else "graph"
        raise UnsupportedError(
            f"{where}: LNP needs a LIF/CubaLIF population with a recurrent Linear/Affine edge "
            f"onto itself; none found")
    if len(found) > 1:
        raise UnsupportedError(f"several recurrent populations {[f[0] for f in found]}; "
                               f"name one with node=")
    name, rec = found[0]
    w = weight(graph.nodes[rec])
    n = int(np.asarray(graph.nodes[name].v_threshold).size)
    if w.shape != (n, n):
        raise UnsupportedError(f"node {rec!r}: recurrent weight must be ({n}, {n}), got {w.shape}")
    inputs = [p for p in preds[name] if p != rec]
    outputs = [s for s in succs[name] if s != rec]
    for s in inputs + outputs:
        if not isinstance(graph.nodes[s], (nir.Linear, nir.Affine)):
            raise UnsupportedError(
                f"node {s!r}: LNP handles Linear/Affine synapses around {name!r}, "
                f"got {type(graph.nodes[s]).__name__}")
    return RecurrentPopulation(name, rec, inputs, outputs, n)


def noise_drive(graph: nir.NIRGraph, pop: RecurrentPopulation, steps: int, batch: int,
                 rate: float, seed: int) -> np.ndarray:
    """(batch, steps, N) input current: Bernoulli spikes through the input synapses, one step late."""
    rng = np.random.default_rng(seed)
    drive = np.zeros((batch, steps, pop.size))
    for name in pop.inputs:
        node = graph.nodes[name]
        w = weight(node)
        bias = np.asarray(node.bias, np.float64) if isinstance(node, nir.Affine) else 0.0
        x = (rng.random((batch, steps, w.shape[1])) < rate).astype(np.float64)
        drive[:, 1:] += x[:, :-1] @ w.T
        drive += bias
    return drive


def population_params(graph: nir.NIRGraph, pop: RecurrentPopulation) -> NeuronParams:
    """Per-step parameters (du, dv, gain, bias, threshold) of the population."""
    return discretise(pop.neuron, graph.nodes[pop.neuron], graph_dt(graph))


def _slice_node(node: nir.NIRNode, keep: np.ndarray, size: int) -> nir.NIRNode:
    kwargs = {}
    for f in dataclasses.fields(node):
        if f.name in ("input_type", "output_type"):
            continue
        val = getattr(node, f.name)
        if isinstance(val, np.ndarray) and val.shape[:1] == (size,):
            val = val[keep]
        kwargs[f.name] = val
    return type(node)(**kwargs)


def remove_neurons(graph: nir.NIRGraph, pop: RecurrentPopulation, keep: np.ndarray
                   ) -> nir.NIRGraph:
    """A copy of the graph with only neurons `keep` (sorted indices) of the population."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    nodes = dict(graph.nodes)
    nodes[pop.neuron] = _slice_node(graph.nodes[pop.neuron], keep, pop.size)
    rec = graph.nodes[pop.recurrent]
    w = weight(rec)[np.ix_(keep, keep)]
    nodes[pop.recurrent] = (nir.Affine(weight=w, bias=np.asarray(rec.bias)[keep])
                            if isinstance(rec, nir.Affine) else nir.Linear(weight=w))
    for name in pop.inputs:
        node = graph.nodes[name]
        w = weight(node)[keep]
        nodes[name] = (nir.Affine(weight=w, bias=np.asarray(node.bias)[keep])
                       if isinstance(node, nir.Affine) else nir.Linear(weight=w))
    for name in pop.outputs:
        node = graph.nodes[name]
        w = weight(node)[:, keep]
        nodes[name] = (nir.Affine(weight=w, bias=np.asarray(node.bias))
                       if isinstance(node, nir.Affine) else nir.Linear(weight=w))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(getattr(graph, "metadata", None) or {}))


def with_recurrent(graph: nir.NIRGraph, pop: RecurrentPopulation, w: np.ndarray
                   ) -> nir.NIRGraph:
    """A copy of the graph whose recurrent weight is w."""
    nodes = dict(graph.nodes)
    rec = graph.nodes[pop.recurrent]
    nodes[pop.recurrent] = (nir.Affine(weight=w, bias=np.asarray(rec.bias))
                            if isinstance(rec, nir.Affine) else nir.Linear(weight=w))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(getattr(graph, "metadata", None) or {}))


def with_timescales(graph: nir.NIRGraph, pop: RecurrentPopulation, tau_mem: np.ndarray,
                    tau_syn: np.ndarray | None = None) -> nir.NIRGraph:
    """A copy of the graph whose population has these time constants (seconds); the per-step
    gain, bias and threshold are kept, so only the leaks change."""
    dt = graph_dt(graph)
    node = graph.nodes[pop.neuron]
    p = population_params(graph, pop)
    kind = type(node).__name__
    tau_m = np.maximum(np.asarray(tau_mem, np.float64), dt)
    kw = dict(dt=dt, tau_mem=tau_m, gain=p.gain, bias=p.bias, v_threshold=p.v_threshold)
    if kind == "CubaLIF":
        kw["tau_syn"] = np.maximum(np.asarray(tau_syn, np.float64), dt)
    nodes = dict(graph.nodes)
    nodes[pop.neuron] = neuron_node(kind, **kw)
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges),
                        metadata=dict(getattr(graph, "metadata", None) or {}))


def timescales(graph: nir.NIRGraph, pop: RecurrentPopulation) -> tuple[np.ndarray, np.ndarray | None]:
    """(tau_mem, tau_syn or None for LIF) of the population, per neuron, in seconds."""
    node = graph.nodes[pop.neuron]
    full = np.ones(pop.size)
    if isinstance(node, nir.CubaLIF):
        return np.asarray(node.tau_mem, np.float64) * full, np.asarray(node.tau_syn, np.float64) * full
    return np.asarray(node.tau, np.float64) * full, None


def make_hrsnn_graph(n_in: int, n_hidden: int, n_out: int, *, dt: float = 1e-3,
                     tau_mem: tuple[float, float] = (2e-3, 40e-3),
                     tau_syn: tuple[float, float] = (1e-3, 10e-3), w_in_scale: float = 1.0,
                     rec_radius: float = 0.9, seed: int = 0) -> nir.NIRGraph:
    """Untrained HRSNN: Input -> Affine -> CubaLIF (log-uniform per-neuron taus, recurrent
    Linear with spectral radius `rec_radius` in units of the threshold) -> Affine -> LI -> Output.

    Weights are in units of the (unit) threshold per spike: the CubaLIF node's r and w_in are set
    so that gain = 1 (u accumulates the weighted spikes directly).
    """
    rng = np.random.default_rng(seed)
    tm = np.exp(rng.uniform(np.log(tau_mem[0]), np.log(tau_mem[1]), n_hidden))
    ts = np.exp(rng.uniform(np.log(tau_syn[0]), np.log(tau_syn[1]), n_hidden))
    tm, ts = np.maximum(tm, dt), np.maximum(ts, dt)
    hid = neuron_node("CubaLIF", dt=dt, tau_syn=ts, tau_mem=tm, gain=1.0, v_threshold=1.0)
    w_in = rng.normal(0.0, w_in_scale / np.sqrt(max(1, n_in) * 0.1), (n_hidden, n_in))
    w_rec = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_hidden, n_hidden))
    w_rec *= rec_radius / np.abs(np.linalg.eigvals(w_rec)).max()
    w_out = rng.normal(0.0, 1.0 / np.sqrt(n_hidden), (n_out, n_hidden))
    tau_out = np.full(n_out, 20e-3)
    out = nir.LI(tau=tau_out, r=np.ones(n_out), v_leak=np.zeros(n_out))
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc1": nir.Affine(weight=w_in, bias=np.zeros(n_hidden)),
        "lif1": hid,
        "rec1": nir.Linear(weight=w_rec),
        "fc_out": nir.Affine(weight=w_out, bias=np.zeros(n_out)),
        "readout": out,
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"),
             ("lif1", "fc_out"), ("fc_out", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt})
