"""Graph validation: one Problem per thing wrong, each naming its node."""

from __future__ import annotations

from collections import Counter

import nir
import numpy as np

from neurocompile.errors import GraphValidationError, Problem
from neurocompile.ir import weights
from neurocompile.ir.graph import LATCHED_TYPES, SUPPORTED_TYPES, topological_order, type_name
from neurocompile.ir.shapes import infer_shapes

# Array parameters each node type must carry, and which of them must be strictly positive.
_PARAMS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {
    nir.Affine: (("weight", "bias"), ()),
    nir.Linear: (("weight",), ()),
    nir.Scale: (("scale",), ()),
    nir.LIF: (("tau", "r", "v_leak", "v_threshold"), ("tau",)),
    nir.CubaLIF: (("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"), ("tau_syn", "tau_mem")),
    nir.IF: (("r", "v_threshold"), ()),
    nir.LI: (("tau", "r", "v_leak"), ("tau",)),
    nir.CubaLI: (("tau_syn", "tau_mem", "r", "v_leak", "w_in"), ("tau_syn", "tau_mem")),
    nir.Threshold: (("threshold",), ()),
    nir.Conv1d: (("weight", "bias"), ()),
    nir.Conv2d: (("weight", "bias"), ()),
    nir.SumPool2d: (("kernel_size", "stride", "padding"), ("kernel_size", "stride")),
    nir.AvgPool2d: (("kernel_size", "stride", "padding"), ("kernel_size", "stride")),
    nir.Delay: (("delay",), ()),
}


def _param_problems(name: str, node: nir.NIRNode) -> list[Problem]:
    required, positive = _PARAMS.get(type(node), ((), ()))
    problems = []
    for attr in required:
        value = getattr(node, attr, None)
        if value is None:
            problems.append(Problem(name, f"{type_name(node)} parameter '{attr}' is missing"))
            continue
        raw = weights.values(value)
        if raw.dtype.kind not in "biuf":
            problems.append(Problem(name, f"parameter '{attr}' must be real numbers, got dtype "
                                          f"{raw.dtype}"))
            continue
        if weights.entries(value) == 0:
            problems.append(Problem(name, f"parameter '{attr}' is empty (shape "
                                          f"{weights.shape(value)})"))
            continue
        arr = raw.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            bad = int(np.sum(~np.isfinite(arr)))
            problems.append(Problem(name, f"parameter '{attr}' has {bad} NaN or infinite value(s)"))
        elif attr in positive and np.any(arr <= 0):
            problems.append(Problem(name, f"parameter '{attr}' must be > 0, min is {arr.min():g}"))
    if isinstance(node, (nir.Affine, nir.Linear)) and node.weight is not None:
        wshape = weights.shape(node.weight)
        if len(wshape) != 2:
            problems.append(Problem(name, f"weight must be 2-D, got shape {wshape}"))
        elif isinstance(node, nir.Affine) and node.bias is not None and \
                np.shape(node.bias) != (wshape[0],):
            problems.append(Problem(name, f"bias shape {np.shape(node.bias)} does not match "
                                          f"weight rows {wshape[0]}"))
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.all(np.isfinite(v_reset)) and np.any(np.asarray(v_reset) != 0):
        problems.append(Problem(name, "unsupported: v_reset != 0 (neurons reset to zero)"))
    if isinstance(node, tuple(_PARAMS)) and not isinstance(
            node, (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
        shapes = {a: np.shape(getattr(node, a)) for a in required
                  if getattr(node, a, None) is not None and np.ndim(getattr(node, a)) > 0}
        if len(set(shapes.values())) > 1:
            problems.append(Problem(name, f"parameter shapes differ: {shapes}"))
    return problems


def _type_problems(name: str, node: nir.NIRNode) -> list[Problem]:
    """input_type / output_type of Input and Output nodes: positive integer shapes."""
    problems = []
    if not isinstance(node, (nir.Input, nir.Output)):
        return problems
    for port in ("input_type", "output_type"):
        for key, shape in (getattr(node, port, None) or {}).items():
            arr = np.asarray(shape)
            if arr.dtype.kind not in "iuf" or arr.ndim != 1 or not np.all(np.isfinite(arr)) \
                    or np.any(arr != np.rint(arr)) or np.any(arr < 1):
                problems.append(Problem(name, f"{port} {key!r} must be positive integer sizes, "
                                              f"got {shape!r}"[:200]))
    return problems


def _metadata_problems(graph: nir.NIRGraph) -> list[Problem]:
    """The graph metadata the toolchain reads: dt a positive finite number where present."""
    meta = getattr(graph, "metadata", None) or {}
    if "dt" not in meta:
        return []
    raw = np.asarray(meta["dt"])
    if raw.dtype.kind not in "iuf" or raw.size != 1 or not np.isfinite(raw).all() or \
            float(raw.reshape(-1)[0]) <= 0:
        return [Problem("<graph>", f"metadata 'dt' must be a positive number of seconds, got "
                                   f"{meta['dt']!r}"[:200])]
    return []


def validate(graph: nir.NIRGraph) -> list[Problem]:
    """All problems with `graph`, in a stable order; an empty list means it is valid."""
    problems: list[Problem] = []
    nodes = graph.nodes
    if not isinstance(nodes, dict) or not nodes:
        return [Problem("<graph>", "graph has no nodes")]
    problems.extend(_metadata_problems(graph))
    for name, node in nodes.items():
        problems.extend(_type_problems(name, node))
        if isinstance(node, nir.NIRGraph):
            problems.append(Problem(name, "unsupported node type NIRGraph (nested subgraph); "
                                          "flatten it first"))
        elif not isinstance(node, SUPPORTED_TYPES):
            problems.append(Problem(name, f"unsupported node type {type_name(node)}"))
        else:
            problems.extend(_param_problems(name, node))

    counts = Counter((src, dst) for src, dst in graph.edges)
    for (src, dst), n in counts.items():
        if n > 1:
            problems.append(Problem(dst, f"duplicate edge {src} -> {dst} (appears {n} times)"))
        if src not in nodes:
            problems.append(Problem(src, f"dangling edge {src} -> {dst}: source node does not exist"))
        if dst not in nodes:
            problems.append(Problem(dst, f"dangling edge {src} -> {dst}: target node does not exist"))

    has_in = {dst for _, dst in graph.edges}
    has_out = {src for src, _ in graph.edges}
    for name, node in nodes.items():
        if isinstance(node, nir.Input) and name in has_in:
            problems.append(Problem(name, "Input node has incoming edges"))
        if isinstance(node, nir.Output) and name in has_out:
            problems.append(Problem(name, "Output node has outgoing edges"))
        if not isinstance(node, nir.Input) and name not in has_in:
            problems.append(Problem(name, f"{type_name(node)} has no incoming edge"))
    if not any(isinstance(n, nir.Input) for n in nodes.values()):
        problems.append(Problem("<graph>", "graph has no Input node"))
    if not any(isinstance(n, nir.Output) for n in nodes.values()):
        problems.append(Problem("<graph>", "graph has no Output node"))
    if problems:
        return problems  # structure must be sound before shapes and loops mean anything

    try:
        topological_order(graph, cut=LATCHED_TYPES)
    except ValueError as exc:
        problems.append(Problem("<graph>", f"algebraic loop: {exc} with no neuron or Delay on it; "
                                           "a recurrent edge must pass through a stateful node"))
        return problems
    _, _, shape_problems = infer_shapes(graph)
    problems.extend(shape_problems)
    return problems


def check_graph(graph: nir.NIRGraph, source: str | None = None) -> nir.NIRGraph:
    """Raise GraphValidationError listing every problem; return the graph if there are none."""
    problems = validate(graph)
    if problems:
        raise GraphValidationError(problems, source)
    return graph
