"""Fixed-point mode of the reference simulator: Lava's bit-accurate Loihi integer arithmetic.

For graphs in the Loihi format (neurocompile/semantics/loihi.py, which holds the arithmetic and
the one reader of the `loihi.*` metadata). Non-spiking populations (LI, CubaLI) output the
integer v (divide by their "loihi.state_scale" for float units). The synaptic accumulation is
one float64 matrix product over all steps and samples at once where the graph is acyclic
(exact: integer sums far below 2^53), then rounded to int64 and shifted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.semantics import loihi


class FixedPopulation:
    """Integer u and v of one population over a batch; the float population's interface."""

    def __init__(self, p: loihi.LoihiNeuron, batch: int, dtype, record: bool, steps: int):
        self.p = p
        self.dtype = dtype
        self.u = np.zeros((batch, p.size), np.int64)
        self.v = np.zeros_like(self.u)
        self.trace = np.zeros((steps, 2) + self.u.shape, np.int64) if record else None

    def step(self, t: int, i_t: np.ndarray) -> np.ndarray:
        a = np.rint(i_t).astype(np.int64).reshape(self.u.shape)
        self.u, self.v, out = loihi.step(self.p, self.u, self.v, a)
        if self.trace is not None:  # state after the step (after reset), as the float state
            self.trace[t, 0], self.trace[t, 1] = self.u, self.v
        return out if out.dtype == bool else out.astype(self.dtype)


@dataclass
class FixedPlan:
    """The integer parameters of a Loihi-format graph, as the simulator runs them."""

    loihi: loihi.LoihiGraph

    @classmethod
    def from_graph(cls, graph: nir.NIRGraph) -> FixedPlan:
        return cls(loihi.read_graph(graph))

    def synapse_op(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        """x (L, in) integer spikes -> int32((x @ m.T) << e), as float64."""
        syn = self.loihi.synapses[name]

        def op(x: np.ndarray) -> np.ndarray:
            if not np.array_equal(x, np.rint(x)):
                raise InputDataError(f"node {name!r}: fixed-point mode needs integer (spike) "
                                     "inputs")
            return loihi.accumulate(syn.mantissas, syn.weight_exp, x).astype(np.float64)

        return op

    def population(self, name: str, batch: int, dtype, record: bool, steps: int
                   ) -> FixedPopulation:
        return FixedPopulation(self.loihi.neurons[name], batch, dtype, record, steps)
