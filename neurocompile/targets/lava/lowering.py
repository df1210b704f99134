"""Lowering a NIR graph to the Lava processes the runtime builds (pure NumPy, no Lava).

The plan is built identically on both sides of the worker boundary (the runtime lowers the
graph file it is given) and is shared with the Loihi 2 resource mapper.

Lowering (docs/lava.md has the full table):

* Every neuron node (LIF, CubaLIF, IF, LI, CubaLI) becomes one Lava ``LIF`` process with
  scalar ``du``, ``dv``, ``vth`` from `neurocompile.semantics.discretise` and a per-neuron
  bias. LI/CubaLI readouts are ``LIF`` processes with an unreachable threshold (float: +inf;
  fixed: mantissa 2**17, i.e. 2**23 after the 6-bit shift, above the 24-bit v range) whose
  ``v`` is recorded by a ``Monitor`` every step.
* All stateless nodes between a source (Input or spiking neuron) and a neuron (Affine, Linear,
  Scale, Flatten, Conv1d/Conv2d, SumPool2d/AvgPool2d) are folded into one weight matrix per
  (source, neuron) pair, together with the neuron's input gain. Convolutions and pools are
  unrolled into that matrix (Lava's Conv process is not used). The matrix becomes a ``Dense``
  process, or a ``Sparse`` one when at most a quarter of its entries are non-zero; pruned zeros
  stay exactly zero either way. Lava's Dense delays its output by one step, which is the
  reference simulator's rule for a neuron's input.
* Affine biases on the path into a neuron are folded into the neuron's bias (gain * bias) when
  the current does not persist (du = 1: LIF, IF). With du < 1 (CubaLIF) the bias is a constant
  input to the current u: the population gets ``current = gain * bias``, which the runtime sends
  into its a_in every step (a ConstantCurrent process, no delay), exactly as the reference adds
  gain * bias to u each step. In fixed point the neuron's ``loihi.current`` (integer, in the
  units of Dense's output) is sent the same way.
* The reset rule (`neurocompile.semantics.reset_rule`): "zero" runs Lava's own LIF models;
  "subtract" runs the runtime's LIF models whose reset is v -= vth (float) or v -= vth << 6
  (bit-accurate), Lava having none. Graded spikes (metadata "spikes": "multi") run in float as
  a LIF model sending floor(v / vth) where v > 0, over 24-bit graded messages.
* Input nodes become ``RingBuffer`` spike sources; spiking neurons are recorded by ``RingBuffer``
  sinks; Output nodes (and any stateless node after the last neuron) are evaluated host-side from
  the recorded values within the same step, as the reference simulator does.
* Fixed point (``fixed_point=True``): the graph must be in the Loihi format, read and checked
  by `neurocompile.semantics.loihi.read_graph` (the reference's fixed-point mode reads it the
  same way); each synapse is exactly one Affine/Linear holding integer mantissas with
  ``loihi.weight_exp``, run by Lava's bit-accurate models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import weights
from neurocompile.ir.graph import (
    LATCHED_TYPES,
    NEURON_TYPES,
    predecessors,
    topological_order,
)
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph
from neurocompile.semantics import loihi, stateless
from neurocompile.semantics.float import discretise, graph_dt
from neurocompile.targets import counting
from neurocompile.targets.base import NodeCounters

SPARSE_DENSITY = 0.25  # a synapse matrix at or below this density becomes a Lava Sparse process
MAX_UNROLLED = 2**26  # entries of one unrolled conv/pool matrix (512 MiB of float64)


@dataclass
class Synapse:
    """One Lava connection process: source population/input -> target neuron population."""

    source: str
    target: str
    weight: np.ndarray  # (target size, source size): float weights, or integer mantissas
    nodes: tuple[str, ...]  # the NIR nodes folded into it
    weight_exp: int = 0
    num_weight_bits: int = 8

    @property
    def nonzero(self) -> int:
        return int(np.count_nonzero(self.weight))

    @property
    def dense(self) -> int:
        return int(self.weight.size)

    @property
    def process(self) -> str:
        """'Sparse' when pruning left at most SPARSE_DENSITY of the entries, else 'Dense'."""
        return "Sparse" if self.nonzero <= SPARSE_DENSITY * max(1, self.dense) else "Dense"


@dataclass
class Population:
    """One Lava LIF process standing for a NIR neuron node (flattened to one axis)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    du: float
    dv: float
    vth: float | None  # None: readout (LI/CubaLI), v recorded, threshold unreachable
    bias: np.ndarray  # float bias, or bias mantissas in fixed point
    bias_exp: np.ndarray | None = None
    reset: str = "zero"  # semantics.RESET_RULES
    current: np.ndarray | None = None  # constant input to u every step (float, or the
    #                                    integer loihi.current in fixed point), or None
    spikes: str = "single"  # semantics.SPIKE_RULES ("multi": graded spike counts, float only)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        return self.vth is not None


@dataclass
class LavaPlan:
    """A graph lowered to Lava processes; built identically on both sides of the worker boundary."""

    graph: nir.NIRGraph
    dt: float
    fixed_point: bool
    inputs: dict[str, tuple[int, ...]]
    populations: dict[str, Population]
    synapses: list[Synapse]
    out_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    in_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the processes the runtime will build."""
        return {
            "dt": self.dt,
            "fixed_point": self.fixed_point,
            "inputs": {n: list(s) for n, s in self.inputs.items()},
            "populations": {
                p.name: {"kind": p.kind, "process": "LIF", "neurons": p.size,
                         "readout": not p.spiking, "du": float(p.du), "dv": float(p.dv),
                         "vth": None if p.vth is None else float(p.vth), "reset": p.reset,
                         "spikes": p.spikes, "current_bias": p.current is not None}
                for p in self.populations.values()},
            "synapses": [
                {"source": s.source, "target": s.target, "process": s.process,
                 "nodes": list(s.nodes), "shape": list(s.weight.shape), "nonzero": s.nonzero,
                 "weight_exp": s.weight_exp, "num_weight_bits": s.num_weight_bits}
                for s in self.synapses],
        }


def _meta(node: nir.NIRNode) -> dict[str, Any]:
    return getattr(node, "metadata", None) or {}


def _uniform(name: str, what: str, arr: np.ndarray) -> float:
    """The single value of a per-neuron parameter that Lava's LIF holds as a scalar."""
    arr = np.asarray(arr, dtype=np.float64).reshape(-1)
    if arr.size and np.any(arr != arr[0]):
        raise UnsupportedError(
            f"node {name!r}: Lava's LIF holds one {what} per population; this node has values "
            f"in [{arr.min()}, {arr.max()}] (split the population or make {what} uniform)")
    return float(arr[0]) if arr.size else 0.0


def linear_operator(name: str, node: nir.NIRNode, in_shape: tuple[int, ...]
                    ) -> tuple[np.ndarray | None, np.ndarray]:
    """(matrix out x in, bias) of a stateless linear node; matrix None means identity."""
    n_in = int(np.prod(in_shape))
    if isinstance(node, nir.Affine):
        return (weights.dense(node.weight, np.float64),
                np.asarray(node.bias, np.float64).reshape(-1))
    if isinstance(node, nir.Linear):
        w = weights.dense(node.weight, np.float64)
        return w, np.zeros(w.shape[0])
    if isinstance(node, nir.Scale):
        scale = np.broadcast_to(np.asarray(node.scale, np.float64), in_shape).reshape(-1)
        return np.diag(scale), np.zeros(n_in)
    if isinstance(node, (nir.Flatten, nir.Output)):
        return None, np.zeros(n_in)
    if isinstance(node, (nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
        zero = np.zeros((1,) + tuple(in_shape))
        bias = stateless.apply(node, zero).reshape(-1)
        n_out = bias.size
        if n_in * n_out > MAX_UNROLLED:
            raise UnsupportedError(
                f"node {name!r}: unrolling this {type(node).__name__} into a Dense matrix needs "
                f"{n_out} x {n_in} = {n_in * n_out:,} entries (limit {MAX_UNROLLED:,})")
        basis = np.eye(n_in).reshape((n_in,) + tuple(in_shape))
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            out = stateless.conv(node, basis, bias=False)
        else:
            out = stateless.pool(node, basis)
        return out.reshape(n_in, n_out).T.copy(), bias
    raise UnsupportedError(
        f"node {name!r}: {type(node).__name__} on the path into a neuron is not lowered to Lava "
        "(Lava connections are linear: Affine, Linear, Scale, Flatten, Conv, SumPool, AvgPool)")


class _Folder:
    """Folds every stateless path between sources and a neuron into one matrix per source."""

    def __init__(self, graph: nir.NIRGraph, in_shapes, out_shapes):
        self.graph, self.in_shapes, self.out_shapes = graph, in_shapes, out_shapes
        self.preds = predecessors(graph)
        self.memo: dict[str, tuple[dict[str, tuple[np.ndarray | None, set]], np.ndarray]] = {}

    def size(self, name: str) -> int:
        return int(np.prod(self.out_shapes[name]))

    def input_of(self, name: str) -> tuple[dict[str, tuple[np.ndarray | None, set]], np.ndarray]:
        """Sum of the contributions of a node's predecessors: {source: (matrix, nodes)}, bias."""
        total: dict[str, tuple[np.ndarray | None, set]] = {}
        bias = np.zeros(int(np.prod(self.in_shapes[name])))
        for p in self.preds[name]:
            contrib, b = self.output_of(p)
            bias = bias + b
            for src, (mat, nodes) in contrib.items():
                if src in total:
                    old, old_nodes = total[src]
                    a = np.eye(self.size(src)) if old is None else old
                    m = np.eye(self.size(src)) if mat is None else mat
                    total[src] = (a + m, old_nodes | nodes)
                else:
                    total[src] = (mat, set(nodes))
        return total, bias

    def output_of(self, name: str):
        if name in self.memo:
            return self.memo[name]
        node = self.graph.nodes[name]
        if isinstance(node, (nir.Input,) + LATCHED_TYPES):
            if isinstance(node, nir.Delay):
                raise UnsupportedError(
                    f"node {name!r}: Delay is not lowered to Lava (Lava's Dense adds exactly one "
                    "step per connection)")
            result = ({name: (None, set())}, np.zeros(self.size(name)))
        else:
            contrib, bias_in = self.input_of(name)
            op, b = linear_operator(name, node, self.in_shapes[name])
            out: dict[str, tuple[np.ndarray | None, set]] = {}
            for src, (mat, nodes) in contrib.items():
                if op is None:
                    m = mat
                elif mat is None:
                    m = op.copy()
                else:
                    m = op @ mat
                out[src] = (m, nodes | {name})
            bias = (bias_in if op is None else op @ bias_in) + b
            result = (out, bias)
        self.memo[name] = result
        return result


def lower(graph: nir.NIRGraph, *, dt: float | None = None, fixed_point: bool = False) -> LavaPlan:
    """Lower a NIR graph to the Lava processes the runtime builds (see the module docstring)."""
    check_graph(graph)
    dt = graph_dt(graph, dt)
    fixed = loihi.read_graph(graph) if fixed_point else None
    in_shapes, out_shapes, _ = infer_shapes(graph)
    nodes = graph.nodes
    folder = _Folder(graph, in_shapes, out_shapes)
    inputs = {n: tuple(out_shapes[n]) for n, node in nodes.items() if isinstance(node, nir.Input)}
    for name, node in nodes.items():
        if isinstance(node, nir.Delay):
            raise UnsupportedError(
                f"node {name!r}: Delay is not lowered to Lava (Lava's Dense adds exactly one "
                "step per connection)")
    pops: dict[str, Population] = {}
    synapses: list[Synapse] = []
    for name, node in nodes.items():
        if not isinstance(node, NEURON_TYPES):
            continue
        size = int(np.prod(out_shapes[name]))
        contrib, c = folder.input_of(name)
        if fixed is not None:
            pop, syns = _lower_fixed(name, type(node).__name__, fixed)
        else:
            pop, syns = _lower_float(name, node, size, dt, contrib, c, folder)
        pop.shape = tuple(out_shapes[name])
        pops[name] = pop
        synapses.extend(syns)
    for syn in synapses:
        src = nodes[syn.source]
        if isinstance(src, (nir.LI, nir.CubaLI)):
            raise UnsupportedError(
                f"node {syn.target!r}: its input comes from {type(src).__name__} "
                f"{syn.source!r}, which does not spike; Lava connections carry spikes only")
    _check_connected(pops, synapses)
    return LavaPlan(graph, dt, fixed_point, inputs, pops, synapses,
                    {k: tuple(v) for k, v in out_shapes.items() if v is not None},
                    {k: tuple(v) for k, v in in_shapes.items() if v is not None})


def _check_connected(pops: dict[str, Population], synapses: list[Synapse]) -> None:
    """Lava runs the processes connected to the one it is started from: one network only."""
    parent = {n: n for n in pops}
    for syn in synapses:
        parent.setdefault(syn.source, syn.source)

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for syn in synapses:
        parent[find(syn.source)] = find(syn.target)
    parts: dict[str, list[str]] = {}
    for n in pops:
        parts.setdefault(find(n), []).append(n)
    if len(parts) > 1:
        raise UnsupportedError(
            f"graph has {len(parts)} unconnected networks ({sorted(parts.values())}); the Lava "
            "target runs one connected network: split the graph and run each part")


def _lower_float(name, node, size, dt, contrib, c, folder) -> tuple[Population, list[Synapse]]:
    p = discretise(name, node, dt)
    du = _uniform(name, "du", p.du)
    dv = _uniform(name, "dv", p.dv)
    vth = None if p.v_threshold is None else _uniform(name, "v_threshold", p.v_threshold)
    gain = np.broadcast_to(p.gain, folder.out_shapes[name]).reshape(-1)
    bias = np.broadcast_to(p.bias, folder.out_shapes[name]).reshape(-1).astype(np.float64)
    current = None
    if np.any(c != 0):
        if du != 1.0:  # the bias persists in u: a constant input current (module docstring)
            current = np.ascontiguousarray(gain * c, dtype=np.float64)
        else:
            bias = bias + gain * c
    syns = []
    for src, (mat, nodes) in contrib.items():
        m = np.eye(size) if mat is None else mat
        w = m if np.all(gain == 1) else gain[:, None] * m
        syns.append(Synapse(src, name, np.ascontiguousarray(w, dtype=np.float64),
                            tuple(sorted(nodes))))
    return Population(name, type(node).__name__, (), du, dv, vth, bias, None, p.reset,
                      current, p.spikes), syns


def _lower_fixed(name: str, kind: str, fixed: loihi.LoihiGraph
                 ) -> tuple[Population, list[Synapse]]:
    """One population and its synapses from the checked Loihi parameters."""
    p = fixed.neurons[name]
    syns = [Synapse(s.source, name, s.mantissas, (syn_name,), s.weight_exp, s.bits)
            for syn_name, s in fixed.synapses.items() if s.target == name]
    return Population(name, kind, (), p.du, p.dv, p.vth, p.bias_mant, p.bias_exp, p.reset,
                      p.current), syns


# --------------------------------------------------------------------------------------------
# Host-side evaluation of the stateless nodes, and counters (as the reference simulator counts)


def replay(plan: LavaPlan, sources: dict[str, np.ndarray], steps: int, batch: int
           ) -> tuple[dict[str, np.ndarray], dict[str, NodeCounters]]:
    """Evaluate every stateless node from the recorded source values; count as every target.

    sources: {Input or neuron name: (steps, batch, *shape)}. Returns (values, counters).
    """
    graph = plan.graph
    preds = predecessors(graph)
    values = dict(sources)
    for name in topological_order(graph, cut=LATCHED_TYPES):
        node = graph.nodes[name]
        if name in values or isinstance(node, (nir.Input,) + LATCHED_TYPES):
            continue  # recorded, or not recorded (e.g. a readout feeding nothing)
        parts = [values[p] for p in preds[name] if p in values]
        if len(parts) != len(preds[name]):
            continue
        x = parts[0].astype(np.float64, copy=True)
        for part in parts[1:]:
            x += part
        if isinstance(node, nir.Output):
            values[name] = x
            continue
        y = stateless.apply(node, x.reshape((-1,) + tuple(plan.in_shapes[name])), np.float64)
        values[name] = y.reshape((steps, batch) + y.shape[1:])
    fan = counting.fan_outs(graph, plan.in_shapes)
    return values, counting.count(graph, values, steps, batch, fan)
