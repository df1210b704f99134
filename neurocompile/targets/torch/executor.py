"""A NIR graph run in torch under the contract, batched, on CPU or CUDA.

The evaluation plan is the reference simulator's (`targets.reference.simulator.build_program`):
the same strongly connected components, the same zero response before step 0, the same
one-step delay on every edge into a neuron, the same operation order in every node. Acyclic
parts run over all steps at once (one matrix product per layer), cycles step by step.
Populations are pluggable: `TorchPopulation` computes `semantics.float.step` with torch
operations (the torch target); the Norse target plugs in Norse's neuron step functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurocompile.ir.graph import LATCHED_TYPES, NEURON_TYPES, topological_order
from neurocompile.ir.shapes import conv_padding, pair
from neurocompile.semantics import float as fsem
from neurocompile.targets.reference.simulator import Program

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def as_tensor(x: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.array(x), device=device).to(dtype)  # a copy: writable


def stateless_op(node: nir.NIRNode, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 dtype: torch.dtype, device: torch.device
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (L, *in_shape) -> y (L, *out_shape) of one stateless node, in the reference's
    operation order (semantics/stateless.py): bias added after the product, never fused."""
    t = lambda a: as_tensor(np.asarray(a, np.float64), dtype, device)  # noqa: E731
    if isinstance(node, (nir.Affine, nir.Linear)):
        wt = t(node.weight).T
        if isinstance(node, nir.Linear):
            return lambda x: x @ wt
        b = t(node.bias)
        return lambda x: x @ wt + b
    if isinstance(node, nir.Scale):
        scale = t(node.scale)
        return lambda x: x * scale
    if isinstance(node, nir.Flatten):
        return lambda x: x.reshape((x.shape[0],) + tuple(out_shape))
    if isinstance(node, nir.Threshold):
        th = t(node.threshold)
        return lambda x: (x > th).to(dtype)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = t(node.weight)
        nd = w.ndim - 2
        conv = F.conv1d if nd == 1 else F.conv2d
        kw = dict(stride=pair(node.stride, nd), padding=conv_padding(node, in_shape[1:]),
                  dilation=pair(node.dilation, nd), groups=int(node.groups))
        b = None if node.bias is None else t(node.bias).reshape((1, -1) + (1,) * nd)
        if b is None:
            return lambda x: conv(x, w, None, **kw)
        return lambda x: conv(x, w, None, **kw) + b
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)

        def pool(x: torch.Tensor) -> torch.Tensor:
            out = F.avg_pool2d(x, k, s, p, divisor_override=1)  # the window sum
            return out if isinstance(node, nir.SumPool2d) else out / (k[0] * k[1])
        return pool
    raise TypeError(f"{type(node).__name__} is not a stateless node")


class TorchPopulation:
    """(u, v) of one population over a batch; `semantics.float.step` in torch operations
    (one operation per line of the contract, so CPU and CUDA round as NumPy does)."""

    def __init__(self, d: fsem.Dynamics, batch: int, dtype: torch.dtype, device: torch.device):
        t = lambda a: as_tensor(a, dtype, device)  # noqa: E731
        self.d = d
        self.keep_u, self.keep_v = t(d.keep_u), t(d.keep_v)
        self.gain, self.bias = t(d.gain), t(d.bias)
        self.vth = None if d.v_threshold is None else t(d.v_threshold)
        self.u = torch.zeros((batch,) + d.params.shape, dtype=dtype, device=device)
        self.v = self.u.clone()

    def step(self, i_t: torch.Tensor) -> torch.Tensor:
        d = self.d
        cur = i_t if d.unit_gain else self.gain * i_t
        self.u = cur if d.no_current else self.u * self.keep_u + cur
        v = self.v * self.keep_v + self.u
        if not d.no_bias:
            v = v + self.bias
        if self.vth is None:
            self.v = v
            return v
        spikes = v > self.vth
        self.v = torch.where(spikes, torch.zeros_like(v), v)
        return spikes


PopulationFactory = Callable[[str, fsem.Dynamics, int], Any]


class Executor:
    """Runs a reference `Program` in torch; `values` keeps every node's output of the last run
    as (steps, batch, *shape) tensors (spiking neurons as bool)."""

    def __init__(self, prog: Program, dtype: torch.dtype, device: torch.device,
                 population: PopulationFactory | None = None):
        self.prog, self.dtype, self.device = prog, dtype, device
        self.population = population or (
            lambda name, d, batch: TorchPopulation(d, batch, dtype, device))
        nodes = prog.graph.nodes
        self.ops = {n: stateless_op(node, prog.in_shapes[n], prog.out_shapes[n], dtype, device)
                    for n, node in nodes.items()
                    if not isinstance(node, (nir.Input, nir.Output) + LATCHED_TYPES)}
        self.zero = {n: as_tensor(z, dtype, device) for n, z in prog.zero.items()}
        self.delays = {n: torch.as_tensor(d.reshape(-1), device=device)
                       for n, d in prog.delays.items()}

    def run(self, data: dict[str, torch.Tensor], steps: int, batch: int
            ) -> dict[str, torch.Tensor]:
        """data: {Input name: (steps, batch, *shape)} tensors on the device."""
        self.steps, self.batch = steps, batch
        self.values: dict[str, torch.Tensor] = {}
        for members, cyclic in self.prog.sccs:
            if cyclic:
                self._run_stepwise(members)
            else:
                self._run_sequence(members[0], data)
        return self.values

    # -- helpers (as Simulator's) ---------------------------------------------------------
    def _float(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.dtype == self.dtype else x.to(self.dtype)

    @staticmethod
    def _sum(parts: list[torch.Tensor]) -> torch.Tensor:
        """Edge order, left to right (as the reference adds)."""
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    def _input_sum(self, name: str, t: int | slice = slice(None)) -> torch.Tensor:
        return self._sum([self._float(self.values[p][t]) for p in self.prog.preds[name]])

    def _step_sum(self, name: str, t: int, view: dict[str, torch.Tensor]) -> torch.Tensor:
        """Input sum of `name` at step t inside a cycle: this step's values of the cycle's
        nodes (`view`), else of nodes computed before the cycle."""
        return self._sum([self._float(view[p] if p in view else self.values[p][t])
                          for p in self.prog.preds[name]])

    def _stateless(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.prog.graph.nodes[name], nir.Output):
            return x
        shape = self.prog.in_shapes[name]
        lead = x.shape[:x.ndim - len(shape)]
        y = self.ops[name](x.reshape((-1,) + tuple(shape)))
        return y.reshape(tuple(lead) + tuple(y.shape[1:]))

    def _latched_input(self, name: str) -> torch.Tensor:
        """Input a latched node sees before step 0 (the zero response), (1, *in_shape)."""
        return self._sum([self.zero[p] for p in self.prog.preds[name]])

    def _delay_out(self, name: str, history: torch.Tensor) -> torch.Tensor:
        """Delay outputs of every step from history (D + steps, batch, N): D rows of the zero
        response, then the input of each step; step t outputs row D + t - d per element."""
        d = self.delays[name]
        big = int(d.max())
        n = history.shape[0] - big
        idx = torch.arange(n, device=self.device)[:, None] + big - d[None, :]
        idx = idx[:, None, :].expand(n, history.shape[1], -1)
        return torch.gather(history, 0, idx)

    def _run_sequence(self, name: str, data: dict[str, torch.Tensor]) -> None:
        node = self.prog.graph.nodes[name]
        if isinstance(node, nir.Input):
            self.values[name] = data[name]
            return
        x = self._input_sum(name)
        if isinstance(node, NEURON_TYPES):
            before = self._latched_input(name).expand(tuple(x.shape[1:]))
            pop = self.population(name, self.prog.neurons[name], self.batch)
            outs = [pop.step(x[t - 1] if t else before) for t in range(self.steps)]
            self.values[name] = torch.stack(outs)
        elif isinstance(node, nir.Delay):
            big = int(self.delays[name].max())
            flat = x.reshape(x.shape[0], x.shape[1], -1)
            before = self._latched_input(name).reshape(1, 1, -1).expand(big, flat.shape[1], -1)
            out = self._delay_out(name, torch.cat([before, flat]))
            self.values[name] = out.reshape(x.shape)
        else:
            self.values[name] = self._stateless(name, x)

    def _run_stepwise(self, members: list[str]) -> None:
        prog, nodes = self.prog, self.prog.graph.nodes
        latched = [n for n in members if isinstance(nodes[n], LATCHED_TYPES)]
        comb = [n for n in topological_order(prog.graph, members, cut=LATCHED_TYPES)
                if n not in latched]
        outs: dict[str, list[torch.Tensor]] = {n: [] for n in members}
        pending = {n: self._latched_input(n).expand((self.batch,) + prog.in_shapes[n])
                   for n in latched}
        pops = {n: self.population(n, prog.neurons[n], self.batch) for n in latched
                if isinstance(nodes[n], NEURON_TYPES)}
        history = {}
        for n in latched:
            if n not in pops:
                big = int(self.delays[n].max())
                history[n] = pending[n].reshape(1, self.batch, -1).expand(big, -1, -1)
        view: dict[str, torch.Tensor] = {}
        for t in range(self.steps):
            for n in latched:
                if n in pops:
                    view[n] = pops[n].step(pending[n])
                else:
                    h = history[n]
                    d = self.delays[n]
                    cols = torch.arange(h.shape[2], device=self.device)
                    view[n] = h[h.shape[0] - d, :, cols].T.reshape(
                        (self.batch,) + prog.out_shapes[n])
            for n in comb:
                view[n] = self._stateless(n, self._step_sum(n, t, view))
            for n in latched:
                x = pending[n] = self._step_sum(n, t, view)
                if n in history:
                    history[n] = torch.cat([history[n][1:], x.reshape(1, self.batch, -1)])
            for n in members:
                outs[n].append(view[n])
        for n in members:
            self.values[n] = torch.stack(outs[n])
