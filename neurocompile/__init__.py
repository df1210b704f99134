"""neurocompile: take a spiking neural network from training to a neuromorphic target.

The Python API (docs/api.md, examples in neurocompile/api.py): `load`, `save`, `prune`,
`quantize`, `compile`, `simulate`, `energy`, `train`. Importing the package stays light
(numpy only); torch is imported only when `train` runs.
"""

from __future__ import annotations

import importlib
from typing import Any

from neurocompile.api import compile, load, prune, quantize, save, simulate

__version__ = "0.1.0"
_CALLABLE_SUBPACKAGES = ("energy", "train")  # callable as API functions (callable_module.py)


def __getattr__(name: str) -> Any:
    """`neurocompile.energy` / `neurocompile.train`: the subpackage, imported on first use."""
    if name in _CALLABLE_SUBPACKAGES:
        return importlib.import_module(f"neurocompile.{name}")
    raise AttributeError(f"module 'neurocompile' has no attribute {name!r}")


__all__ = ["__version__", "compile", "energy", "load", "prune", "quantize", "save", "simulate",
           "train"]
