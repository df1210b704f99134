"""Backends behind one interface (`Target`): compile a NIR graph, run it, count activity.

A target is a package (or module) here with a `Target` subclass; it is registered by one line
in TARGETS. Modules are imported on use, and a target's own dependencies (torch, onnxruntime)
only when it runs, so the core stays importable where they are missing.
"""

from __future__ import annotations

import importlib

from neurocompile.errors import UnsupportedError
from neurocompile.targets.base import Artifact, NodeCounters, RunResult, Target, TargetOptions

# name -> "module:class". One line per target.
TARGETS: dict[str, str] = {
    "reference": "neurocompile.targets.reference:ReferenceTarget",
    "lava": "neurocompile.targets.lava:LavaTarget",
    "loihi2": "neurocompile.targets.loihi2:Loihi2Target",
    "torch": "neurocompile.targets.torch:TorchTarget",
    "norse": "neurocompile.targets.norse:NorseTarget",
    "onnx": "neurocompile.targets.onnx:OnnxTarget",
}


def target_class(name: str) -> type[Target]:
    """The Target subclass registered under `name`; unknown names list the known ones."""
    if name not in TARGETS:
        raise UnsupportedError(f"unknown target {name!r}; known: {', '.join(sorted(TARGETS))}")
    module, cls = TARGETS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_target(name: str) -> Target:
    """Instantiate a target by name."""
    return target_class(name)()


def available_targets() -> dict[str, dict[str, object]]:
    """Per target: its description and the requirements missing here (empty: ready)."""
    out = {}
    for name in TARGETS:
        cls = target_class(name)
        out[name] = {"description": cls.description, "missing": cls.missing_requirements()}
    return out


__all__ = ["TARGETS", "Artifact", "NodeCounters", "RunResult", "Target", "TargetOptions",
           "available_targets", "get_target", "target_class"]
