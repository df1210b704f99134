"""Shapes of node inputs and outputs (without batch and time axes), inferred through a graph."""

from __future__ import annotations

import nir
import numpy as np

from neurocompile.errors import Problem
from neurocompile.ir.graph import LATCHED_TYPES, predecessors, topological_order, type_name

Shape = tuple[int, ...]


def _tuple(shape) -> Shape | None:
    if shape is None:
        return None
    arr = np.asarray(shape).reshape(-1)
    if arr.size == 0 or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)) \
            or np.any(arr != np.rint(arr)):
        return None  # not a shape (text, NaN, fractions from odd files): validate names it
    return tuple(int(x) for x in arr)


def pair(value, n: int = 2) -> tuple[int, ...]:
    """An int or sequence as an n-tuple of ints (NIR stores both forms)."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]),) * n
    return tuple(int(x) for x in arr[:n])


def conv_padding(node: nir.Conv1d | nir.Conv2d, spatial_in: Shape) -> tuple[int, ...]:
    """Symmetric zero padding per spatial axis, resolving 'same' and 'valid'."""
    n = len(spatial_in)
    kernel = node.weight.shape[2:]
    dil = pair(node.dilation, n)
    pad = node.padding
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SUO":
        pad = str(pad.reshape(-1)[0].decode() if isinstance(pad.reshape(-1)[0], bytes)
                  else pad.reshape(-1)[0])
    if isinstance(pad, str):
        if pad == "valid":
            return (0,) * n
        if pad == "same":
            total = [d * (k - 1) for d, k in zip(dil, kernel)]
            if any(t % 2 for t in total):
                raise ValueError("padding='same' with an even effective kernel is not symmetric")
            return tuple(t // 2 for t in total)
        raise ValueError(f"unknown padding {pad!r}")
    return pair(pad, n)


def conv_output_shape(node: nir.Conv1d | nir.Conv2d, in_shape: Shape) -> Shape:
    c_out = node.weight.shape[0]
    spatial = in_shape[1:]
    n = len(spatial)
    kernel = node.weight.shape[2:]
    stride, dil = pair(node.stride, n), pair(node.dilation, n)
    pad = conv_padding(node, spatial)
    out = [(s + 2 * p - d * (k - 1) - 1) // st + 1
           for s, p, d, k, st in zip(spatial, pad, dil, kernel, stride)]
    return (c_out, *out)


def pool_output_shape(node: nir.SumPool2d | nir.AvgPool2d, in_shape: Shape) -> Shape:
    k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
    c, h, w = in_shape
    return (c, (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1)


def flatten_output_shape(node: nir.Flatten, in_shape: Shape) -> Shape:
    """NIR's rule: start_dim/end_dim index the shape without the batch axis."""
    nd = len(in_shape)
    start = node.start_dim % nd if nd else 0
    end = node.end_dim % nd if nd else 0
    start, end = int(start), int(end)
    middle = int(np.prod(in_shape[start:end + 1]))
    return (*in_shape[:start], middle, *in_shape[end + 1:])


def declared_input_shape(node: nir.NIRNode) -> Shape | None:
    """The input shape a node's own parameters fix, or None where any shape is accepted."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(node.weight.shape[1]),)
    if isinstance(node, nir.Scale):
        return tuple(np.shape(node.scale))
    if isinstance(node, (nir.LIF, nir.IF)):
        return tuple(np.shape(node.r))
    if isinstance(node, nir.LI):
        return tuple(np.shape(node.tau))
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        return tuple(np.shape(node.tau_mem))
    if isinstance(node, nir.Threshold):
        return tuple(np.shape(node.threshold))
    if isinstance(node, nir.Delay):
        return tuple(np.shape(node.delay))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        spatial = _tuple(node.input_shape) if node.input_shape is not None else None
        return (int(node.weight.shape[1] * node.groups), *spatial) if spatial else None
    if isinstance(node, (nir.Input, nir.Flatten)):
        return _tuple(node.input_type.get("input")) if node.input_type else None
    if isinstance(node, nir.Output):
        return _tuple(node.output_type.get("output")) if node.output_type else None
    return None


def output_shape(node: nir.NIRNode, in_shape: Shape | None) -> Shape | None:
    """The output shape of `node` fed with `in_shape` (None if it cannot be known)."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        return (int(node.weight.shape[0]),)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        shape = in_shape or declared_input_shape(node)
        return conv_output_shape(node, shape) if shape else None
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        return pool_output_shape(node, in_shape) if in_shape and len(in_shape) == 3 else None
    if isinstance(node, nir.Flatten):
        shape = in_shape or declared_input_shape(node)
        return flatten_output_shape(node, shape) if shape else None
    if isinstance(node, nir.Output):
        return in_shape or declared_input_shape(node)
    declared = declared_input_shape(node)
    return declared if declared is not None else in_shape


def infer_shapes(graph: nir.NIRGraph) -> tuple[dict[str, Shape | None], dict[str, Shape | None],
                                                list[Problem]]:
    """Input and output shape of every node, plus one problem per edge whose shapes disagree."""
    preds = predecessors(graph)
    try:
        order = topological_order(graph, cut=LATCHED_TYPES)
    except ValueError:
        order = list(graph.nodes)  # algebraic loops are reported by validation
    in_shapes: dict[str, Shape | None] = {}
    out_shapes: dict[str, Shape | None] = {}
    problems: list[Problem] = []
    # Latched nodes know their shape from their parameters, so recurrent edges resolve.
    for name, node in graph.nodes.items():
        if isinstance(node, LATCHED_TYPES):
            out_shapes[name] = output_shape(node, None)
    for name in order:
        node = graph.nodes[name]
        declared = declared_input_shape(node)
        incoming = [(p, out_shapes.get(p)) for p in preds[name]]
        shape = declared
        for src, s in incoming:
            if s is None:
                continue
            if shape is None:
                shape = s
            elif tuple(s) != tuple(shape):
                expected = "expects" if declared is not None else "gets"
                problems.append(Problem(
                    name, f"shape mismatch on edge {src} -> {name}: {src} outputs {s}, "
                          f"{name} ({type_name(node)}) {expected} {shape}"))
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)) and shape is not None and len(shape) != 3:
            problems.append(Problem(name, f"{type_name(node)} needs (C, H, W) input, got {shape}"))
            shape = None
        if (isinstance(node, (nir.Conv1d, nir.Conv2d)) and shape is not None
                and (len(shape) != node.weight.ndim - 1
                     or shape[0] != node.weight.shape[1] * node.groups)):
            problems.append(Problem(
                name, f"{type_name(node)} with weight {node.weight.shape} and groups={node.groups} "
                      f"cannot take input of shape {shape}"))
            shape = None
        in_shapes[name] = shape
        if name not in out_shapes:
            try:
                out_shapes[name] = output_shape(node, shape)
            except ValueError as exc:
                problems.append(Problem(name, str(exc)))
                out_shapes[name] = None
    return in_shapes, out_shapes, problems
