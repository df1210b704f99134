"""Reference target: the NumPy simulator of the contract (float and Loihi fixed point)."""

from neurocompile.targets.reference.simulator import Program, Simulator, build_program, simulate
from neurocompile.targets.reference.target import ReferenceOptions, ReferenceTarget

__all__ = ["Program", "ReferenceOptions", "ReferenceTarget", "Simulator", "build_program",
           "simulate"]
