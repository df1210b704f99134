"""Norse target: Norse's neuron step functions under the contract's timing. torch and norse
are imported only when a run starts."""

from neurocompile.targets.norse.target import NorseOptions, NorseTarget

__all__ = ["NorseOptions", "NorseTarget"]
