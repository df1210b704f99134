"""Input layouts and singleton dimensions: what other frameworks' files and data look like.

neurocompile reads input data as (batch, time, *shape) ("btf"). snnTorch and Norse step over
dimension 0 ("tbf"); lava-dl keeps time last ("bft"). `to_btf` moves the axes; `layout_warning`
names the other layout when a shape suggests it. `squeeze_io` accepts Input/Output nodes whose
shape differs from their neighbour's by singleton dimensions only (Rockpool writes (1, 1, n)
for n neurons, Norse (1, n) with the sample's batch dimension).
"""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import InputDataError
from neurocompile.ir.graph import predecessors
from neurocompile.ir.shapes import declared_input_shape, infer_shapes

LAYOUTS = ("btf", "tbf", "bft")
FEW_STEPS = 8  # a time axis this short next to a batch axis twice as long looks swapped


def to_btf(x: np.ndarray, layout: str) -> np.ndarray:
    """An input array in `layout` as (batch, time, *shape)."""
    if layout not in LAYOUTS:
        raise InputDataError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if x.ndim < 3 or layout == "btf":
        return x
    if layout == "tbf":
        return np.swapaxes(x, 0, 1)
    return np.moveaxis(x, -1, 1)  # bft: (batch, features..., time)


def from_btf(x: np.ndarray, layout: str) -> np.ndarray:
    """An output array (batch, time, *shape) in `layout` (the inverse of `to_btf`)."""
    if x.ndim < 3 or layout == "btf":
        return x
    if layout == "tbf":
        return np.swapaxes(x, 0, 1)
    return np.moveaxis(x, 1, -1)


def layout_warning(name: str, shape: tuple[int, ...], layout: str) -> str | None:
    """A warning when the time axis of `layout` is short and the batch axis long (swapped?)."""
    if len(shape) < 3 or layout == "bft":
        return None
    batch, steps = (shape[0], shape[1]) if layout == "btf" else (shape[1], shape[0])
    if 1 <= steps < FEW_STEPS and batch >= 2 * steps:
        other = "tbf" if layout == "btf" else "btf"
        return (f"input {name!r} of shape {tuple(shape)} read as {layout}: {batch} samples of "
                f"{steps} steps; if the data is {other}, pass --layout {other}")
    return None


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(shape).reshape(-1) if int(s) != 1)


def _fits(shape: tuple[int, ...], have: tuple[int, ...], leading: bool) -> bool:
    """Whether `have` is `shape` up to singleton dims (or, if leading, extra leading dims)."""
    if tuple(shape) == have:
        return False
    if _squeezed(shape) == _squeezed(have):
        return True
    return leading and len(have) > len(shape) and have[len(have) - len(shape):] == tuple(shape)


def squeeze_io(graph: nir.NIRGraph, leading: bool = False) -> tuple[nir.NIRGraph, list[str]]:
    """Input/Output shapes set to their neighbour's where they differ by singleton dims only
    (with `leading`, also by leading dims: Sinabs writes the sample's time axis, (T, n)).

    Returns (graph, notes); the graph is changed in place and only where needed.
    """
    why = "leading dimensions" if leading else "singleton dimensions"
    notes: list[str] = []
    nodes = graph.nodes
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in graph.edges:
        succs[src].append(dst)
    for name, node in list(nodes.items()):
        if not isinstance(node, nir.Input):
            continue
        want = {declared_input_shape(nodes[s]) for s in succs[name]} - {None}
        have = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
        if len(want) == 1:
            (shape,) = want
            if _fits(shape, have, leading):
                nodes[name] = nir.Input(input_type={"input": np.array(shape)},
                                        metadata=getattr(node, "metadata", None) or {})
                notes.append(f"Input {name!r}: shape {have} read as {tuple(shape)} ({why})")
    _, out_shapes, _ = infer_shapes(graph)
    preds = predecessors(graph)
    for name, node in list(nodes.items()):
        if not isinstance(node, nir.Output) or len(preds[name]) != 1:
            continue
        shape = out_shapes.get(preds[name][0])
        have = tuple(int(s) for s in np.asarray(node.output_type["output"]).reshape(-1))
        if shape is not None and _fits(tuple(shape), have, leading):
            nodes[name] = nir.Output(output_type={"output": np.array(shape)},
                                     metadata=getattr(node, "metadata", None) or {})
            notes.append(f"Output {name!r}: shape {have} read as {tuple(shape)} ({why})")
    return graph, notes
