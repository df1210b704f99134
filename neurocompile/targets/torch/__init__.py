"""Torch target: the reference semantics batched in torch (CPU or CUDA). torch is imported
only when a run starts, so listing targets needs no torch."""

from neurocompile.targets.torch.target import TorchOptions, TorchTarget

__all__ = ["TorchOptions", "TorchTarget"]
