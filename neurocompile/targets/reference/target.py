"""The reference simulator as a target: the semantics every backend is tested against."""

from __future__ import annotations

from dataclasses import dataclass

import nir

from neurocompile import config
from neurocompile.targets.base import Artifact, RunResult, Target, TargetOptions
from neurocompile.targets.reference.simulator import NAME, Simulator, build_program


@dataclass(frozen=True)
class ReferenceOptions(TargetOptions):
    """Options of the reference simulator."""

    dtype: str = config.setting("float64", choices=("float64", "float32"),
                                help="Arithmetic of the float model.")
    probe: tuple[str, ...] = config.setting(
        (), help="Neuron nodes whose u and v traces are returned (RunResult.probes).")
    count_active: bool = config.setting(
        False, help="Also count active neuron updates (what the energy model charges as "
                    "active); costs a state trace per population.")


class ReferenceTarget(Target):
    """NumPy reference simulator (float64 or float32; Loihi fixed point for quantized graphs)."""

    name = NAME
    description = "NumPy reference simulator; the semantics every backend is checked against"
    Options = ReferenceOptions

    def compile(self, graph: nir.NIRGraph, options=None) -> Artifact:
        opts = self.options(options)
        prog = build_program(graph, opts.dt, opts.dtype, opts.fixed_point)
        artifact = Artifact(NAME, graph, opts, {"dt": prog.dt, "nodes": len(graph.nodes)})
        self._built = (id(artifact), prog)  # built once: `run` reuses it
        return artifact

    def __init__(self) -> None:
        self._built: tuple[int, object] | None = None  # (id of the artifact, its program)

    def run(self, artifact: Artifact, inputs, steps: int | None = None) -> RunResult:
        opts = self.options(artifact.options)
        if self._built is None or self._built[0] != id(artifact):
            self._built = (id(artifact), build_program(artifact.graph, opts.dt, opts.dtype,
                                                       opts.fixed_point))
        return Simulator(self._built[1], opts.probe, opts.count_active).run(inputs, steps)
