"""The interface every target implements, its options, and what a run returns."""

from __future__ import annotations

import importlib.util
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import UnsupportedError


@dataclass
class NodeCounters:
    """Activity of one node over a whole run (all samples, all steps).

    spikes: non-zero outputs of a spiking node (Input, LIF, CubaLIF, IF, Threshold).
    synaptic_events: for a node with weights, each non-zero input value times the number of
        non-zero weights it reaches (its fan-out); an accumulate on neuromorphic hardware.
    neuron_updates: neurons times steps times samples, for neuron nodes.
    active_neuron_updates: the neuron updates in which the neuron did work: it received input,
        carried state into or out of the step (non-zero current after it, non-zero membrane
        before or after it) or spiked; the rest are inactive. None where the target does not
        record neuron state (then every update counts as active in the energy model). Left out
        of equality: two targets' counters are equal when what both count agrees.
    """

    spikes: int = 0
    synaptic_events: int = 0
    neuron_updates: int = 0
    active_neuron_updates: int | None = field(default=None, compare=False)


@dataclass
class RunResult:
    """Output of `Target.run`: outputs (batch, steps, *shape) per Output node, plus counters.
    Outputs are NumPy arrays; the torch target returns torch tensors on its device when its
    inputs were tensors."""

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
        """Counters as plain ints, the fields every target counts (those in equality)."""
        keys = [f.name for f in fields(NodeCounters) if f.compare]
        return {name: {k: int(getattr(c, k)) for k in keys} for name, c in self.counters.items()}

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


@dataclass(frozen=True)
class TargetOptions:
    """Options every target understands; each target's Options subclass adds its own."""

    dt: float | None = config.setting(None, min=0, min_open=True,
                                      help="Time step in seconds (default: the graph's, else 1 ms).")
    fixed_point: bool = config.setting(False, help="Loihi integer arithmetic (quantized graphs).")

    # Options that travel with a graph to another target (an artifact run elsewhere).
    SEMANTIC: ClassVar[tuple[str, ...]] = ("dt", "fixed_point")


@dataclass
class Artifact:
    """A graph lowered for one target, with the options and mapping it was compiled with."""

    target: str
    graph: nir.NIRGraph
    options: TargetOptions
    manifest: dict[str, Any] = field(default_factory=dict)


class Target(ABC):
    """A backend: compile a NIR graph for it, run the artifact on input data.

    Subclasses set `name`, `description`, `Options` (a frozen dataclass of TargetOptions),
    `requires` (modules that must be importable) and `hardware` (the hardware description the
    energy and resource models use for it, or None), and register in targets/__init__.py.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[TargetOptions]] = TargetOptions
    requires: ClassVar[tuple[str, ...]] = ()
    hardware: ClassVar[str | None] = None

    def options(self, given: TargetOptions | dict[str, Any] | None = None) -> TargetOptions:
        """The target's options from a dataclass or a mapping; unknown keys raise, naming the
        known ones. None values in a mapping mean "the default"."""
        if isinstance(given, self.Options):
            return given
        if isinstance(given, TargetOptions):
            given = config.to_mapping(given, shallow=True)
        data = {k: v for k, v in (given or {}).items() if v is not None}
        return config.from_mapping(self.Options, data, f"target {self.name!r} options")

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        return [m for m in cls.requires if importlib.util.find_spec(m) is None]

    def check_available(self) -> None:
        """Raise UnsupportedError naming the extra to install when a requirement is missing."""
        missing = self.missing_requirements()
        if missing:
            raise UnsupportedError(f"target {self.name!r} needs {', '.join(missing)}: install "
                                   f"it (pip install 'neurocompile[{self.name}]')")

    @abstractmethod
    def compile(self, graph: nir.NIRGraph, options: TargetOptions | dict | None = None
                ) -> Artifact:
        """Check `graph` against this target's limits and lower it; errors name the node."""

    @abstractmethod
    def run(self, artifact: Artifact, inputs: dict[str, np.ndarray] | np.ndarray,
            steps: int | None = None) -> RunResult:
        """Run a compiled artifact on inputs {Input name: (batch, steps, *shape)}."""

    def load_artifact(self, path: str | os.PathLike,
                      options: TargetOptions | dict | None = None) -> Artifact:
        """Read an artifact directory (hashes checked) to run here.

        An artifact of this target keeps its options, `options` overriding them; one compiled
        for another target brings only its semantic options (dt, fixed point).
        """
        from neurocompile.targets import TARGETS, target_class
        from neurocompile.targets.artifact import read_artifact

        stored = read_artifact(path)
        if stored.target not in TARGETS:
            raise UnsupportedError(f"{path}: compiled for unknown target {stored.target!r}; "
                                   f"known: {', '.join(sorted(TARGETS))}")
        # The manifest's options are checked against the target it names, whoever runs it.
        compiled = config.from_mapping(target_class(stored.target).Options, stored.options,
                                       f"{path}: manifest options")
        if stored.target == self.name:
            base = compiled
        else:
            base = self.options({k: getattr(compiled, k) for k in TargetOptions.SEMANTIC})
        given = {k: v for k, v in (options if isinstance(options, dict) else
                                   config.to_mapping(options, shallow=True) if options else {}
                                   ).items() if v is not None}
        merged = self.options({**config.to_mapping(base, shallow=True), **given})
        return Artifact(self.name, stored.graph, merged, stored.manifest)
