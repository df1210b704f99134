"""Reference simulator: vectorised NumPy execution of a NIR graph under the DESIGN.md semantics.

Timing rules (chosen to line up step for step with Lava, whose Dense process sends at step t
what it accumulated at step t-1):

* Stateless nodes (Affine, Linear, Scale, Conv, pools, Flatten, Threshold) and Output act
  within a step.
* A neuron node reads, at step t, the sum of its incoming edges computed at step t-1. Before
  the first step every stateful output is zero, so at t=0 it reads the "zero response"
  (the biases of the linear chain feeding it).
* A Delay node outputs at step t its input of step t - d (d >= 1).

Every cycle must therefore pass through a neuron or Delay. The graph is split into strongly
connected components: acyclic parts are evaluated over all steps at once (one matrix product
per layer), cycles step by step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.ir.graph import (
    LATCHED_TYPES,
    NEURON_TYPES,
    SPIKING_TYPES,
    SYNAPTIC_TYPES,
    predecessors,
    strongly_connected_components,
    successors,
    topological_order,
)
from neurocompile.ir.semantics import NeuronStep, delay_steps, graph_dt, neuron_step
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph
from neurocompile.targets import numpy_ops
from neurocompile.targets.base import Artifact, NodeCounters, RunResult

NAME = "reference"


@dataclass
class _Program:
    """A validated graph with everything the simulator precomputes once."""

    graph: nir.NIRGraph
    dt: float
    dtype: np.dtype
    preds: dict[str, list[str]]
    in_shapes: dict[str, tuple[int, ...]]
    out_shapes: dict[str, tuple[int, ...]]
    sccs: list[tuple[list[str], bool]]  # (members, is_cyclic)
    neurons: dict[str, NeuronStep]
    delays: dict[str, np.ndarray]
    fan_outs: dict[str, np.ndarray]
    zero: dict[str, np.ndarray]  # each node's output when every stateful output is zero
    fixed: Any = None  # targets.fixed_point.FixedPlan in fixed-point (Loihi integer) mode


def build_program(graph: nir.NIRGraph, dt: float | None = None, dtype=np.float64,
                  fixed_point: bool = False) -> _Program:
    """Validate `graph` and precompute per-node parameters, fan-outs and evaluation order.

    fixed_point: run a Loihi-quantized graph with Lava's integer arithmetic
    (neurocompile/targets/fixed_point.py) instead of the float model.
    """
    check_graph(graph)
    fixed = None
    if fixed_point:
        from neurocompile.targets.fixed_point import build_plan

        fixed = build_plan(graph)
    dt = graph_dt(graph, dt)
    dtype = np.dtype(dtype)
    preds = predecessors(graph)
    in_shapes, out_shapes, _ = infer_shapes(graph)
    succs = successors(graph)
    sccs = [(c, len(c) > 1 or c[0] in succs[c[0]]) for c in strongly_connected_components(graph)]
    neurons = {n: neuron_step(n, node, dt) for n, node in graph.nodes.items()
               if isinstance(node, NEURON_TYPES)}
    delays = {n: delay_steps(n, node, dt) for n, node in graph.nodes.items()
              if isinstance(node, nir.Delay)}
    fan_outs = {n: numpy_ops.fan_out(node, in_shapes[n]) for n, node in graph.nodes.items()
                if isinstance(node, SYNAPTIC_TYPES)}
    zero = {name: np.zeros((1,) + out_shapes[name], dtype) for name, node in graph.nodes.items()
            if isinstance(node, (nir.Input,) + LATCHED_TYPES)}
    for name in topological_order(graph, cut=LATCHED_TYPES):
        node = graph.nodes[name]
        if name in zero:
            continue
        x = sum(zero[p] for p in preds[name])
        zero[name] = x if isinstance(node, nir.Output) else numpy_ops.apply(node, x, dtype)
    return _Program(graph, dt, dtype, preds, in_shapes, out_shapes, sccs, neurons, delays,
                    fan_outs, zero, fixed)


def _normalise_inputs(prog: _Program, inputs: dict[str, np.ndarray] | np.ndarray,
                      steps: int | None) -> tuple[dict[str, np.ndarray], int, int]:
    """Inputs as time-major (steps, batch, *shape) arrays; pads with zeros or truncates."""
    names = [n for n, node in prog.graph.nodes.items() if isinstance(node, nir.Input)]
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise InputDataError(f"graph has Input nodes {names}: pass a dict keyed by name")
        inputs = {names[0]: inputs}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise InputDataError(f"no data for Input node(s) {missing}; got keys {sorted(inputs)}")
    out, batch, length = {}, None, None
    for name in names:
        arr = np.asarray(inputs[name])
        shape = prog.out_shapes[name]
        if arr.ndim == len(shape) + 2 and arr.shape[2:] == shape:
            pass
        elif arr.ndim == 3 and int(np.prod(shape)) == arr.shape[2]:
            arr = arr.reshape(arr.shape[:2] + shape)  # NIR data files store flat neurons
        else:
            raise InputDataError(
                f"input {name!r}: expected an array (batch, steps, {', '.join(map(str, shape))}), "
                f"got shape {arr.shape}")
        if batch is not None and arr.shape[0] != batch:
            raise InputDataError(f"input {name!r}: batch {arr.shape[0]} differs from {batch}")
        batch, length = arr.shape[0], arr.shape[1] if length is None else max(length, arr.shape[1])
        out[name] = arr
    steps = length if steps is None else int(steps)
    if steps < 1:
        raise InputDataError(f"steps must be >= 1, got {steps}")
    for name, arr in out.items():
        arr = np.swapaxes(arr, 0, 1).astype(prog.dtype)
        if arr.shape[0] < steps:
            arr = np.concatenate([arr, np.zeros((steps - arr.shape[0],) + arr.shape[1:], prog.dtype)])
        out[name] = arr[:steps]
    return out, steps, batch


class _NeuronState:
    """Membrane and current of one population, advanced one step at a time."""

    def __init__(self, p: NeuronStep, batch: int, dtype, record: bool, steps: int):
        self.keep_u = (1 - p.du).astype(dtype)
        self.keep_v = (1 - p.dv).astype(dtype)
        self.gain = p.gain.astype(dtype)
        self.unit_gain = bool(np.all(p.gain == 1))
        self.bias = p.bias.astype(dtype)
        self.vth = None if p.v_threshold is None else p.v_threshold.astype(dtype)
        self.u = np.zeros((batch,) + p.dv.shape, dtype)
        self.v = np.zeros_like(self.u)
        self.trace = np.zeros((steps, 2) + self.u.shape, dtype) if record else None

    def step(self, t: int, i_t: np.ndarray) -> np.ndarray:
        # Same operation order as Lava's floating-point LIF process model.
        self.u = self.u * self.keep_u
        self.u += i_t if self.unit_gain else self.gain * i_t
        self.v = self.v * self.keep_v + self.u + self.bias
        if self.vth is None:
            out = self.v.copy()
        else:
            out = self.v > self.vth
            self.v[out] = 0
        if self.trace is not None:  # state after the step (after reset), as Lava reports it
            self.trace[t, 0], self.trace[t, 1] = self.u, self.v
        return out

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """All steps of an input sequence (steps, batch, *shape) at once; the arithmetic of
        step(), done in place (the hot loop of feed-forward graphs)."""
        u, v = self.u, self.v
        scaled = inputs if self.unit_gain else self.gain * inputs
        spiking = self.vth is not None
        out = np.empty(inputs.shape, bool if spiking else v.dtype)
        # Exact shortcuts (equal values, up to the sign of a zero): with du = 1, u*0 + I == I;
        # with a zero bias, v + 0 == v. They halve the NumPy calls of a plain LIF layer.
        no_current = bool(np.all(self.keep_u == 0))
        no_bias = bool(np.all(self.bias == 0))
        for t in range(inputs.shape[0]):
            if no_current:
                cur = scaled[t]
            else:
                np.multiply(u, self.keep_u, out=u)
                np.add(u, scaled[t], out=u)
                cur = u
            np.multiply(v, self.keep_v, out=v)
            np.add(v, cur, out=v)
            if not no_bias:
                np.add(v, self.bias, out=v)
            if spiking:
                np.greater(v, self.vth, out=out[t])
                np.copyto(v, 0, where=out[t])
            else:
                out[t] = v
            if self.trace is not None:
                self.trace[t, 0], self.trace[t, 1] = cur, v
        if no_current and len(scaled):
            u[...] = scaled[-1]
        return out


class Simulator:
    """Runs one program over a batch; holds the per-node outputs of the current run."""

    def __init__(self, prog: _Program, probe: tuple[str, ...] = ()):
        self.prog = prog
        self.probe = set(probe)
        unknown = self.probe - set(prog.neurons)
        if unknown:
            raise InputDataError(f"can only probe neuron nodes; {sorted(unknown)} are not")

    def run(self, inputs, steps: int | None = None) -> RunResult:
        start = time.perf_counter()
        prog = self.prog
        data, steps, batch = _normalise_inputs(prog, inputs, steps)
        self.steps, self.batch = steps, batch
        self.values: dict[str, np.ndarray] = {}
        self.counters = {n: NodeCounters() for n in prog.graph.nodes}
        self.states: dict[str, _NeuronState] = {}
        for members, cyclic in prog.sccs:
            if cyclic:
                self._run_stepwise(members)
            else:
                self._run_sequence(members[0], data)
        outputs = {n: np.swapaxes(self.values[n], 0, 1)
                   for n, node in prog.graph.nodes.items() if isinstance(node, nir.Output)}
        for name, node in prog.graph.nodes.items():
            if isinstance(node, SPIKING_TYPES + (nir.Input,)):
                self.counters[name].spikes = int(np.count_nonzero(self.values[name]))
            if isinstance(node, NEURON_TYPES):
                self.counters[name].neuron_updates = int(steps * batch * prog.neurons[name].dv.size)
        probes = {}
        for name in self.probe:
            tr = self.states[name].trace
            probes[f"{name}.u"] = np.swapaxes(tr[:, 0], 0, 1)
            probes[f"{name}.v"] = np.swapaxes(tr[:, 1], 0, 1)
        return RunResult(outputs, self.counters, steps, batch, NAME, probes,
                         time.perf_counter() - start)

    # -- evaluation helpers -------------------------------------------------------------
    def _input_sum(self, name: str, t: int | slice = slice(None)) -> np.ndarray:
        parts = [self.values[p][t] for p in self.prog.preds[name]]
        total = parts[0].astype(self.prog.dtype, copy=True)
        for part in parts[1:]:
            total += part
        return total

    def _stateless(self, name: str, x: np.ndarray) -> np.ndarray:
        node = self.prog.graph.nodes[name]
        if isinstance(node, nir.Output):
            return x
        lead = x.shape[:-len(self.prog.in_shapes[name])] if self.prog.in_shapes[name] else x.shape
        flat = x.reshape((-1,) + x.shape[len(lead):])
        if name in self.prog.fan_outs:
            active = np.count_nonzero(flat.reshape(flat.shape[0], -1), axis=0)
            self.counters[name].synaptic_events += int(active @ self.prog.fan_outs[name].reshape(-1))
        if self.prog.fixed is not None and name in self.prog.fixed.synapses:
            y = self.prog.fixed.apply(name, flat)
        else:
            y = numpy_ops.apply(node, flat, self.prog.dtype)
        return y.reshape(lead + y.shape[1:])

    def _latched_input(self, name: str) -> np.ndarray:
        """Input a latched node sees before step 0 (the zero response of its sources)."""
        return sum(self.prog.zero[p] for p in self.prog.preds[name])

    def _run_sequence(self, name: str, data: dict[str, np.ndarray]) -> None:
        prog, node = self.prog, self.prog.graph.nodes[name]
        if isinstance(node, nir.Input):
            self.values[name] = data[name]
            return
        x = self._input_sum(name)
        if isinstance(node, NEURON_TYPES):
            shifted = np.concatenate([np.broadcast_to(self._latched_input(name), (1,) + x.shape[1:]),
                                      x[:-1]])
            state = self._new_state(name)
            if isinstance(state, _NeuronState):
                self.values[name] = state.run(shifted).astype(prog.dtype, copy=False)
            else:
                out = np.empty(x.shape, prog.dtype)
                for t in range(self.steps):
                    out[t] = state.step(t, shifted[t])
                self.values[name] = out
        elif isinstance(node, nir.Delay):
            d = prog.delays[name]
            before = np.broadcast_to(self._latched_input(name), (1,) + x.shape[1:])
            padded = np.concatenate([np.broadcast_to(before, (int(d.max()),) + x.shape[1:]), x])
            idx = np.arange(self.steps)[:, None] + int(d.max()) - d.reshape(1, -1)
            flat = padded.reshape(padded.shape[0], padded.shape[1], -1)
            out = np.take_along_axis(flat, idx[:, None, :].repeat(flat.shape[1], 1), axis=0)
            self.values[name] = out.reshape(x.shape)
        else:
            self.values[name] = self._stateless(name, x)

    def _new_state(self, name: str) -> _NeuronState:
        args = (self.batch, self.prog.dtype, name in self.probe, self.steps)
        state = _NeuronState(self.prog.neurons[name], *args) if self.prog.fixed is None \
            else self.prog.fixed.new_state(name, *args)
        self.states[name] = state
        return state

    def _run_stepwise(self, members: list[str]) -> None:
        prog = self.prog
        nodes = prog.graph.nodes
        latched = [n for n in members if isinstance(nodes[n], LATCHED_TYPES)]
        comb = [n for n in topological_order(prog.graph, members, cut=LATCHED_TYPES)
                if n not in latched]
        for n in members:
            self.values[n] = np.zeros((self.steps, self.batch) + prog.out_shapes[n], prog.dtype)
        pending = {n: np.broadcast_to(self._latched_input(n),
                                      (self.batch,) + prog.in_shapes[n]).copy() for n in latched}
        history = {n: [] for n in latched if isinstance(nodes[n], nir.Delay)}
        states = {n: self._new_state(n) for n in latched if isinstance(nodes[n], NEURON_TYPES)}
        for t in range(self.steps):
            for n in latched:
                if n in states:
                    self.values[n][t] = states[n].step(t, pending[n])
                else:
                    d = prog.delays[n].reshape(-1)
                    flat = np.stack([h.reshape(self.batch, -1) for h in history[n]]) \
                        if history[n] else None
                    before = np.broadcast_to(self._latched_input(n), (self.batch,) + prog.in_shapes[n])
                    out = before.reshape(self.batch, -1).copy()
                    src = t - d
                    ok = src >= 0
                    if flat is not None and ok.any():
                        cols = np.nonzero(ok)[0]
                        out[:, cols] = flat[src[cols], :, cols].T
                    self.values[n][t] = out.reshape(self.values[n][t].shape)
            for n in comb:
                self.values[n][t] = self._stateless(n, self._input_sum(n, t))
            for n in latched:
                pending[n] = self._input_sum(n, t)
                if n in history:
                    history[n].append(pending[n])


class ReferenceTarget:
    """The NumPy reference simulator as a target: the semantics every backend is tested against."""

    name = NAME
    description = "NumPy reference simulator (float64; the semantics every backend is checked against)"

    def compile(self, graph: nir.NIRGraph, options: dict[str, Any] | None = None) -> Artifact:
        options = dict(options or {})
        prog = build_program(graph, options.get("dt"), options.get("dtype", np.float64),
                             bool(options.get("fixed_point", False)))
        return Artifact(NAME, graph, options, {"dt": prog.dt, "nodes": len(graph.nodes)})

    def load_artifact(self, path, options: dict[str, Any] | None = None) -> Artifact:
        """Read a compiled artifact directory so its graph can be checked on this simulator."""
        from neurocompile.targets.artifact import read_artifact

        stored = read_artifact(path)
        given = {k: v for k, v in (options or {}).items()
                 if v is not None and not (k == "fixed_point" and v is False)}
        return Artifact(NAME, stored.graph, {**stored.options, **given}, stored.manifest)

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        prog = build_program(artifact.graph, artifact.options.get("dt"),
                             artifact.options.get("dtype", np.float64),
                             bool(artifact.options.get("fixed_point", False)))
        return Simulator(prog).run(inputs, steps)


def simulate(graph: nir.NIRGraph, inputs: dict[str, np.ndarray] | np.ndarray,
             steps: int | None = None, *, dt: float | None = None, dtype=np.float64,
             probe: tuple[str, ...] = (), fixed_point: bool = False) -> RunResult:
    """Run `graph` on `inputs` ({Input name: (batch, steps, *shape)}) for `steps` steps.

    probe: neuron node names whose u and v traces are returned in RunResult.probes
    as '<name>.u' and '<name>.v', each (batch, steps, *shape).
    fixed_point: Lava's integer arithmetic for Loihi-quantized graphs (u, v probes are ints).
    """
    return Simulator(build_program(graph, dt, dtype, fixed_point), probe).run(inputs, steps)


def record_activity(graph: nir.NIRGraph, inputs: dict[str, np.ndarray] | np.ndarray,
                    steps: int | None = None) -> dict[str, np.ndarray]:
    """Run `inputs` (e.g. calibration data) and total every node's |output|, for activity passes.

    Returns {node: array of the node's output shape}: |output| summed over samples and steps,
    plus '__samples_steps__' (a 0-d array: batch * steps) for turning sums into rates. This is
    the `activity` that passes.prune.activity_prune and remove_dead_neurons take.
    """
    if isinstance(inputs, dict) and not inputs:
        raise InputDataError("calibration data is empty")
    sim = Simulator(build_program(graph))
    result = sim.run(inputs, steps)
    totals = {name: np.abs(values).sum(axis=(0, 1)) for name, values in sim.values.items()}
    totals["__samples_steps__"] = np.asarray(result.steps * result.batch)
    return totals
