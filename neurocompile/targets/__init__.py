"""Backends behind one small interface (`Target`): compile a NIR graph, run it, count activity."""

from __future__ import annotations

from neurocompile.errors import UnsupportedError
from neurocompile.targets.base import Artifact, NodeCounters, RunResult, Target

# name -> (module, class, one-line description); modules are imported on use so that the
# core stays importable where a backend's own dependencies are missing.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "reference": ("neurocompile.targets.reference", "ReferenceTarget",
                  "NumPy reference simulator; the semantics every backend is checked against"),
    "lava": ("neurocompile.targets.lava", "LavaTarget",
             "Lava CPU simulation of Loihi 2 (float or bit-accurate fixed point)"),
    "loihi2": ("neurocompile.targets.loihi2", "Loihi2Target",
               "Loihi 2: core mapping at compile time, runs on Lava's simulator"),
}


def available_targets() -> dict[str, str]:
    """Target names and their one-line descriptions."""
    return {name: desc for name, (_, _, desc) in _REGISTRY.items()}


def get_target(name: str) -> Target:
    """Instantiate a target by name; unknown names list the known ones."""
    if name not in _REGISTRY:
        raise UnsupportedError(f"unknown target {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    import importlib

    module, cls, _ = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = ["Artifact", "NodeCounters", "RunResult", "Target", "available_targets", "get_target"]
