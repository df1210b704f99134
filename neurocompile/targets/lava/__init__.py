"""Lava target: lowering to Lava processes (NumPy), the target, and the worker-side runtime."""

from neurocompile.targets.lava.lowering import LavaPlan, Population, Synapse, lower, replay
from neurocompile.targets.lava.target import (
    LavaOptions,
    LavaTarget,
    LavaWorkerError,
    find_lava_python,
    lava_importable,
)

__all__ = ["LavaOptions", "LavaPlan", "LavaTarget", "LavaWorkerError", "Population", "Synapse",
           "find_lava_python", "lava_importable", "lower", "replay"]
