"""The small interface every target implements, and what a run returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import nir
import numpy as np


@dataclass
class NodeCounters:
    """Activity of one node over a whole run (all samples, all steps).

    spikes: non-zero outputs of a spiking node (Input, LIF, CubaLIF, IF, Threshold).
    synaptic_events: for a node with weights, each non-zero input value times the number of
        non-zero weights it reaches (its fan-out); an accumulate on neuromorphic hardware.
    neuron_updates: neurons times steps times samples, for neuron nodes.
    """

    spikes: int = 0
    synaptic_events: int = 0
    neuron_updates: int = 0


@dataclass
class RunResult:
    """Output of `Target.run`: outputs (batch, steps, *shape) per Output node, plus counters."""

    outputs: dict[str, np.ndarray]
    counters: dict[str, NodeCounters]
    steps: int
    batch: int
    target: str
    probes: dict[str, np.ndarray] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def total(self, key: str) -> int:
        return int(sum(getattr(c, key) for c in self.counters.values()))

    def counters_dict(self) -> dict[str, dict[str, int]]:
        return {name: {k: int(v) for k, v in asdict(c).items()} for name, c in self.counters.items()}

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary with stable keys."""
        return {
            "target": self.target,
            "steps": self.steps,
            "batch": self.batch,
            "wall_time_s": self.wall_time_s,
            "outputs": {k: list(v.shape) for k, v in self.outputs.items()},
            "totals": {k: self.total(k) for k in ("spikes", "synaptic_events", "neuron_updates")},
            "nodes": self.counters_dict(),
        }


@dataclass
class Artifact:
    """A graph lowered for one target, with the options and mapping it was compiled with."""

    target: str
    graph: nir.NIRGraph
    options: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """A backend: compile a NIR graph for it, then run the artifact on input data."""

    name: str
    description: str

    def compile(self, graph: nir.NIRGraph, options: dict[str, Any] | None = None) -> Artifact: ...

    def run(self, artifact: Artifact, inputs: dict[str, np.ndarray] | np.ndarray,
            steps: int | None = None) -> RunResult: ...
