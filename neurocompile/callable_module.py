"""Make a subpackage callable as an API function: `neurocompile.energy(graph, x)` runs
neurocompile.api.energy while `neurocompile.energy.build_report` stays the subpackage's own.

A package attribute cannot hold both the function and the subpackage (importing the
subpackage rebinds the name), so the subpackage itself takes the call.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call runs the function named by its `__call_target__` ("module:name")."""

    __call_target__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.__call_target__.split(":")
        return getattr(importlib.import_module(module), name)(*args, **kwargs)


def make_callable(module_name: str, target: str) -> None:
    """Let the (already imported) module `module_name` be called as `target` ("module:name")."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module.__call_target__ = target
