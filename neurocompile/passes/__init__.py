"""Graph -> graph transforms on NIR graphs, in one ordered registry (PASSES).

Each pass deep-copies its input and returns ``(new_graph, PassReport)``; passes never run a
graph. A pass is registered by one line: its name, kind ("prune" or "quantize"), options
dataclass (`neurocompile.config` settings; the CLI is generated from it) and entry point
``fn(graph, options, activity) -> (graph, report)``; `needs_activity` passes get the activity
of a calibration run (`neurocompile.analysis.run_pass` records it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neurocompile.errors import UnsupportedError
from neurocompile.passes import lnp, prune, quantize
from neurocompile.passes.prune import activity_prune, magnitude_prune, remove_dead_neurons
from neurocompile.passes.quantize import loihi_effective_weights, quantize_int8, quantize_loihi
from neurocompile.passes.report import NodeReport, PassReport


@dataclass(frozen=True)
class PassSpec:
    """One registered pass."""

    name: str
    kind: str
    Options: type
    run: Callable[..., tuple[Any, PassReport]]
    needs_activity: bool = False
    summary: str = ""


# The registry, in the order passes are listed (and applied by the pipeline). One line per pass.
PASSES: tuple[PassSpec, ...] = (
    PassSpec("magnitude", "prune", prune.MagnitudeOptions, prune.run_magnitude,
             summary="zero the smallest |w| (per layer or global), or all below a threshold"),
    PassSpec("activity", "prune", prune.ActivityOptions, prune.run_activity, True,
             summary="zero the synapses carrying least calibration activity"),
    PassSpec("dead", "prune", prune.DeadOptions, prune.run_dead, True,
             summary="remove neurons that never spike on calibration data"),
    PassSpec("lnp", "prune", lnp.LNPOptions, lnp.run_lnp,
             summary="Lyapunov Noise Pruning of an untrained recurrent population"),
    PassSpec("int8", "quantize", quantize.Int8Options, quantize.run_int8,
             summary="symmetric per-layer weight quantization"),
    PassSpec("loihi", "quantize", quantize.LoihiOptions, quantize.run_loihi,
             summary="Loihi fixed point (Lava bit-accurate models)"),
)


def passes(kind: str | None = None) -> dict[str, PassSpec]:
    """Registered passes by name, of one kind or all."""
    return {p.name: p for p in PASSES if kind is None or p.kind == kind}


def get_pass(name: str, kind: str | None = None) -> PassSpec:
    """A registered pass; unknown names list the known ones."""
    known = passes(kind)
    if name not in known:
        what = f"{kind} method" if kind else "pass"
        raise UnsupportedError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    return known[name]


__all__ = [
    "PASSES",
    "NodeReport",
    "PassReport",
    "PassSpec",
    "activity_prune",
    "get_pass",
    "loihi_effective_weights",
    "magnitude_prune",
    "passes",
    "quantize_int8",
    "quantize_loihi",
    "remove_dead_neurons",
]
