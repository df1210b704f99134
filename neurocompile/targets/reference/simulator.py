"""Reference simulator: vectorised NumPy execution of a NIR graph under the contract.

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
per layer), cycles step by step. Neurons advance with `neurocompile.semantics.float.step`
(or `semantics.loihi.step` in fixed point); counters come from `targets.counting`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neurocompile.errors import InputDataError, UnsupportedError
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
from neurocompile.ir.limits import check_bytes
from neurocompile.ir.shapes import infer_shapes
from neurocompile.ir.validate import check_graph
from neurocompile.semantics import float as fsem
from neurocompile.semantics import stateless
from neurocompile.targets import counting
from neurocompile.targets.base import RunResult
from neurocompile.targets.inputs import time_major

NAME = "reference"


@dataclass
class Program:
    """A validated graph with everything the simulator precomputes once."""

    graph: nir.NIRGraph
    dt: float
    dtype: np.dtype
    preds: dict[str, list[str]]
    in_shapes: dict[str, tuple[int, ...]]
    out_shapes: dict[str, tuple[int, ...]]
    sccs: list[tuple[list[str], bool]]  # (members, is_cyclic)
    neurons: dict[str, fsem.Dynamics]
    delays: dict[str, np.ndarray]
    ops: dict[str, Callable[[np.ndarray], np.ndarray]]  # stateless nodes, parameters cast
    fan_outs: dict[str, np.ndarray]
    zero: dict[str, np.ndarray]  # each node's output when every stateful output is zero
    fixed: Any = None  # reference.fixed.FixedPlan in fixed-point (Loihi integer) mode


def build_program(graph: nir.NIRGraph, dt: float | None = None, dtype=np.float64,
                  fixed_point: bool = False) -> Program:
    """Validate `graph` and precompute per-node parameters, fan-outs and evaluation order.

    fixed_point: run a Loihi-quantized graph with Lava's integer arithmetic
    (neurocompile/semantics/loihi.py) instead of the float model.
    """
    check_graph(graph)
    fixed = None
    if fixed_point:
        from neurocompile.targets.reference.fixed import FixedPlan

        fixed = FixedPlan.from_graph(graph)
    dt = fsem.graph_dt(graph, dt)
    dtype = np.dtype(dtype)
    preds = predecessors(graph)
    in_shapes, out_shapes, _ = infer_shapes(graph)
    succs = successors(graph)
    sccs = [(c, len(c) > 1 or c[0] in succs[c[0]]) for c in strongly_connected_components(graph)]
    neurons = {n: fsem.discretise(n, node, dt).prepare(dtype) for n, node in graph.nodes.items()
               if isinstance(node, NEURON_TYPES)}
    delays = {n: fsem.delay_steps(n, node, dt) for n, node in graph.nodes.items()
              if isinstance(node, nir.Delay)}
    ops = {n: stateless.prepare(node, dtype) for n, node in graph.nodes.items()
           if not isinstance(node, (nir.Input, nir.Output) + LATCHED_TYPES)}
    if fixed is not None:
        ops.update({n: fixed.synapse_op(n) for n in fixed.loihi.synapses})
    fan = counting.fan_outs(graph, in_shapes)
    zero = {name: np.zeros((1,) + out_shapes[name], dtype) for name, node in graph.nodes.items()
            if isinstance(node, (nir.Input,) + LATCHED_TYPES)}
    for name in topological_order(graph, cut=LATCHED_TYPES):
        node = graph.nodes[name]
        if name in zero:
            continue
        x = sum(zero[p] for p in preds[name])
        zero[name] = x if isinstance(node, nir.Output) else stateless.apply(node, x, dtype)
    return Program(graph, dt, dtype, preds, in_shapes, out_shapes, sccs, neurons, delays, ops,
                   fan, zero, fixed)


# Step-by-step loops at up to this batch run with one BLAS thread: their products are too small
# to gain from threads, and a second thread competing with other work on a 2-core machine made
# one such run 25x slower (issue measurement: 0.22 s -> 5.6 s). Whole-sequence products keep
# BLAS's own choice.
SINGLE_THREAD_MAX_BATCH = 8
_controller = None


def _stepwise_threads(batch: int):
    """A context limiting BLAS to one thread for small-batch stepping (else a no-op)."""
    global _controller
    if batch > SINGLE_THREAD_MAX_BATCH:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()  # scans the loaded libraries once
    return _controller.limit(limits=1, user_api="blas")


class _Population:
    """State of one float population over a batch, advanced by semantics.float.step."""

    def __init__(self, d: fsem.Dynamics, batch: int, record: bool, steps: int):
        self.d = d
        self.u, self.v = d.state(batch)
        self.trace = np.zeros((steps, 2) + self.u.shape, d.dtype) if record else None

    def step(self, t: int, i_t: np.ndarray) -> np.ndarray:
        out = fsem.step(self.d, self.u, self.v, i_t)
        if self.trace is not None:  # state after the step (after reset), as Lava reports it
            self.trace[t, 0], self.trace[t, 1] = self.u, self.v
        return out

    def run(self, inputs: np.ndarray) -> np.ndarray:
        return fsem.run(self.d, inputs, state=(self.u, self.v), trace=self.trace)


class Simulator:
    """Runs one program over a batch; holds the per-node outputs of the current run."""

    def __init__(self, prog: Program, probe: tuple[str, ...] = (), count_active: bool = False,
                 record_all: bool = False):
        """record_all: keep every node's outputs over the run in `values` (otherwise nodes
        read only within their step of a cycle keep that step alone)."""
        self.prog = prog
        self.probe = set(probe)
        self.count_active = count_active
        self.record_all = record_all
        unknown = self.probe - set(prog.neurons)
        if unknown:
            raise InputDataError(f"can only probe neuron nodes; {sorted(unknown)} are not")

    def run(self, inputs, steps: int | None = None) -> RunResult:
        start = time.perf_counter()
        prog = self.prog
        data, steps, batch = time_major(prog.graph, prog.out_shapes, inputs, steps, prog.dtype)
        per_step = sum(int(np.prod(s)) for s in prog.out_shapes.values())
        check_bytes(f"simulating {batch} sample(s) x {steps} steps ({per_step:,} values per "
                    "step)", 2 * batch * steps * per_step * np.dtype(prog.dtype).itemsize)
        self.steps, self.batch = steps, batch
        self.values: dict[str, np.ndarray] = {}  # (steps, batch, *shape) per node
        self.current: dict[str, np.ndarray] = {}  # this step's value of nodes kept one step
        self.states: dict[str, Any] = {}
        for members, cyclic in prog.sccs:
            if cyclic:
                with _stepwise_threads(batch):
                    self._run_stepwise(members)
            else:
                self._run_sequence(members[0], data)
        outputs = {n: np.swapaxes(self.values[n], 0, 1)
                   for n, node in prog.graph.nodes.items() if isinstance(node, nir.Output)}
        counters = counting.count(prog.graph, self.values, steps, batch, prog.fan_outs)
        for name, state in self.states.items():
            if self.count_active:
                counters[name].active_neuron_updates = counting.active_updates(
                    state.trace, self.values[name])
        probes = {}
        for name in self.probe:
            tr = self.states[name].trace
            probes[f"{name}.u"] = np.swapaxes(tr[:, 0], 0, 1)
            probes[f"{name}.v"] = np.swapaxes(tr[:, 1], 0, 1)
        return RunResult(outputs, counters, steps, batch, NAME, probes,
                         time.perf_counter() - start)

    # -- evaluation helpers -------------------------------------------------------------
    def _input_sum(self, name: str, t: int | slice = slice(None)) -> np.ndarray:
        parts = [self.current[p] if p in self.current else self.values[p][t]
                 for p in self.prog.preds[name]]
        if len(parts) == 1:
            return parts[0]
        total = parts[0].astype(self.prog.dtype, copy=True)
        for part in parts[1:]:
            total += part
        return total

    def _stateless(self, name: str, x: np.ndarray) -> np.ndarray:
        if isinstance(self.prog.graph.nodes[name], nir.Output):
            return x.astype(self.prog.dtype, copy=False)
        shape = self.prog.in_shapes[name]
        lead = x.shape[:x.ndim - len(shape)]
        y = self.prog.ops[name](x.reshape((-1,) + tuple(shape)))
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
            shifted = np.concatenate([np.broadcast_to(self._latched_input(name),
                                                      (1,) + x.shape[1:]).astype(x.dtype),
                                      x[:-1]])
            state = self._new_state(name)
            if isinstance(state, _Population):
                self.values[name] = state.run(shifted)
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

    def _new_state(self, name: str):
        record = name in self.probe or self.count_active  # active updates come from the trace
        if self.prog.fixed is None:
            state = _Population(self.prog.neurons[name], self.batch, record, self.steps)
        else:
            state = self.prog.fixed.population(name, self.batch, self.prog.dtype, record,
                                               self.steps)
        self.states[name] = state
        return state

    def _run_stepwise(self, members: list[str]) -> None:
        prog = self.prog
        nodes = prog.graph.nodes
        latched = [n for n in members if isinstance(nodes[n], LATCHED_TYPES)]
        comb = [n for n in topological_order(prog.graph, members, cut=LATCHED_TYPES)
                if n not in latched]
        succs = successors(prog.graph)
        # Full histories only where read after the loop (outside the cycle, counting, outputs);
        # a node read only within its step keeps one step (no T x batch x n array to fault in).
        counted = {p for n, node in nodes.items() if isinstance(node, SYNAPTIC_TYPES)
                   for p in prog.preds[n]}
        current = self.current  # nodes of this cycle kept one step (read only inside it)
        for n in members:
            shape = (self.batch,) + prog.out_shapes[n]
            if self.record_all or n in latched or n in counted or \
                    isinstance(nodes[n], SPIKING_TYPES) or \
                    any(s not in members for s in succs[n]):
                dtype = prog.neurons[n].out_dtype if prog.fixed is None and \
                    n in prog.neurons else prog.dtype  # bool for single spikes
                self.values[n] = np.zeros((self.steps,) + shape, dtype)
            else:
                current[n] = np.zeros(shape, prog.dtype)
        pending = {n: np.broadcast_to(self._latched_input(n),
                                      (self.batch,) + prog.in_shapes[n]).astype(prog.dtype)
                   for n in latched}
        history = {n: np.empty((self.steps, self.batch, int(np.prod(prog.in_shapes[n]))),
                               prog.dtype)
                   for n in latched if isinstance(nodes[n], nir.Delay)}  # inputs by step
        states = {n: self._new_state(n) for n in latched if isinstance(nodes[n], NEURON_TYPES)}
        for t in range(self.steps):
            for n in latched:
                if n in states:
                    self.values[n][t] = states[n].step(t, pending[n])
                else:
                    d = prog.delays[n].reshape(-1)
                    before = np.broadcast_to(self._latched_input(n), (self.batch,) + prog.in_shapes[n])
                    out = before.reshape(self.batch, -1).copy()
                    src = t - d
                    ok = src >= 0
                    if ok.any():  # src <= t - 1: already written
                        cols = np.nonzero(ok)[0]
                        out[:, cols] = history[n][src[cols], :, cols].T
                    self.values[n][t] = out.reshape(self.values[n][t].shape)
            for n in comb:
                y = self._stateless(n, self._input_sum(n, t))
                if n in current:
                    current[n] = y
                else:
                    self.values[n][t] = y
            for n in latched:
                pending[n] = self._input_sum(n, t)
                if n in history:
                    history[n][t] = pending[n].reshape(self.batch, -1)


def simulate(graph: nir.NIRGraph, inputs: dict[str, np.ndarray] | np.ndarray,
             steps: int | None = None, *, dt: float | None = None, dtype=np.float64,
             probe: tuple[str, ...] = (), fixed_point: bool = False,
             count_active: bool = False) -> RunResult:
    """Run `graph` on `inputs` ({Input name: (batch, steps, *shape)}) for `steps` steps.

    probe: neuron node names whose u and v traces are returned in RunResult.probes
    as '<name>.u' and '<name>.v', each (batch, steps, *shape).
    fixed_point: Lava's integer arithmetic for Loihi-quantized graphs (u, v probes are ints).
    count_active: also count active neuron updates (NodeCounters.active_neuron_updates).
    """
    return Simulator(build_program(graph, dt, dtype, fixed_point), probe,
                     count_active).run(inputs, steps)


def require_plain_neurons(prog: Program, target: str) -> Program:
    """Refuse a program whose neurons use a reset or spike rule other than the default (reset
    to zero, one spike per step): the `target` runs only that."""
    for name, d in prog.neurons.items():
        if d.subtract or d.next_step or d.multi:
            raise UnsupportedError(
                f"node {name!r}: the {target} target resets to zero and emits one spike per "
                f"step; this node asks reset {d.params.reset!r}, spikes {d.params.spikes!r} "
                f"(metadata): run it with --target reference or --target lava")
    return prog
