"""Loihi 2 target: the Lava target with the core mapping enforced at compile time."""

from neurocompile.targets.lava.target import LavaTarget
from neurocompile.targets.loihi2.mapping import ResourceError, map_resources


class Loihi2Target(LavaTarget):
    """Loihi 2: compile checks and maps onto cores (errors if it does not fit); runs on Lava."""

    name = "loihi2"
    description = ("Loihi 2 resource mapping (cores, synaptic memory) at compile time; "
                   "runs on Lava's CPU simulation")
    enforce_limits = True


__all__ = ["Loihi2Target", "ResourceError", "map_resources"]
