"""Input data as every target reads it: {Input name: (batch, steps, *shape)}, checked."""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import InputDataError


def input_names(graph: nir.NIRGraph) -> list[str]:
    return [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]


def as_dict(graph: nir.NIRGraph, inputs: dict[str, np.ndarray] | np.ndarray
            ) -> dict[str, np.ndarray]:
    """Inputs keyed by Input node name (a bare array for a graph with one Input)."""
    names = input_names(graph)
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise InputDataError(f"graph has Input nodes {names}: pass a dict keyed by name")
        return {names[0]: inputs}
    return inputs


def time_major(graph: nir.NIRGraph, shapes: dict[str, tuple[int, ...]],
               inputs: dict[str, np.ndarray] | np.ndarray, steps: int | None, dtype
               ) -> tuple[dict[str, np.ndarray], int, int]:
    """Inputs as time-major (steps, batch, *shape) arrays of `dtype`; pads with zeros or
    truncates to `steps`. Returns (arrays, steps, batch)."""
    inputs = as_dict(graph, inputs)
    names = input_names(graph)
    missing = [n for n in names if n not in inputs]
    if missing:
        raise InputDataError(f"no data for Input node(s) {missing}; got keys {sorted(inputs)}")
    out, batch, length = {}, None, None
    for name in names:
        arr = np.asarray(inputs[name])
        shape = tuple(shapes[name])
        if arr.dtype.kind not in "biuf":
            raise InputDataError(f"input {name!r}: expected numbers, got dtype {arr.dtype}")
        if arr.ndim == len(shape) + 2 and arr.shape[2:] == shape:
            pass
        elif arr.ndim == 3 and int(np.prod(shape)) == arr.shape[2]:
            arr = arr.reshape(arr.shape[:2] + shape)  # NIR data files store flat neurons
        else:
            raise InputDataError(
                f"input {name!r}: expected an array (batch, steps, {', '.join(map(str, shape))}), "
                f"got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise InputDataError(f"input {name!r}: no samples (batch size 0)")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise InputDataError(f"input {name!r}: has NaN or infinite values")
        if batch is not None and arr.shape[0] != batch:
            raise InputDataError(f"input {name!r}: batch {arr.shape[0]} differs from {batch}")
        batch, length = arr.shape[0], arr.shape[1] if length is None else max(length, arr.shape[1])
        out[name] = arr
    steps = length if steps is None else int(steps)
    if steps < 1:
        raise InputDataError(f"steps must be >= 1, got {steps}")
    for name, arr in out.items():
        arr = np.ascontiguousarray(np.swapaxes(arr, 0, 1), dtype=dtype)  # one C-order copy
        if arr.shape[0] < steps:
            arr = np.concatenate([arr, np.zeros((steps - arr.shape[0],) + arr.shape[1:], dtype)])
        out[name] = arr[:steps]
    return out, steps, batch
