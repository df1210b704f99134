"""Graph structure helpers: node roles, neighbours, topological order, cycles."""

from __future__ import annotations

from collections.abc import Iterable

import nir
import numpy as np

# Nodes that hold state and read their input one step late (or d steps late, Delay):
# they break cycles, so a recurrent edge must pass through one of them.
NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI)
LATCHED_TYPES = NEURON_TYPES + (nir.Delay,)
SPIKING_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold)
# Nodes with weights: their fan-out is what a synaptic event is counted against.
SYNAPTIC_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Scale)
STATELESS_TYPES = SYNAPTIC_TYPES + (nir.Flatten, nir.Threshold)
SUPPORTED_TYPES = (nir.Input, nir.Output) + LATCHED_TYPES + STATELESS_TYPES


def type_name(node: nir.NIRNode) -> str:
    return type(node).__name__


def predecessors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    """Map each node to the nodes with an edge into it, in edge order."""
    preds: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        if dst in preds and src in graph.nodes:
            preds[dst].append(src)
    return preds


def successors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    """Map each node to the nodes its edges lead to, in edge order."""
    succs: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        if src in succs and dst in graph.nodes:
            succs[src].append(dst)
    return succs


def strongly_connected_components(graph: nir.NIRGraph) -> list[list[str]]:
    """Tarjan's SCCs, returned in topological order of the condensation (sources first)."""
    succs = successors(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in graph.nodes:
        if root in index:
            continue
        work = [(root, iter(succs[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succs[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(comp)
    out.reverse()
    return out


def topological_order(graph: nir.NIRGraph, nodes: Iterable[str] | None = None,
                      cut: tuple[type, ...] = ()) -> list[str]:
    """Kahn's order of `nodes` (default: all), ignoring edges that leave a node of a `cut` type.

    Raises ValueError naming the nodes left on a cycle.
    """
    members = list(graph.nodes) if nodes is None else list(nodes)
    member_set = set(members)
    indeg = {n: 0 for n in members}
    succs: dict[str, list[str]] = {n: [] for n in members}
    for src, dst in graph.edges:
        if src in member_set and dst in member_set and not isinstance(graph.nodes[src], cut):
            indeg[dst] += 1
            succs[src].append(dst)
    ready = [n for n in members if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succs[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(members):
        left = sorted(member_set - set(order))
        raise ValueError(f"cycle through {left}")
    return order


def has_cycle(graph: nir.NIRGraph) -> bool:
    comps = strongly_connected_components(graph)
    succs = successors(graph)
    return any(len(c) > 1 or c[0] in succs[c[0]] for c in comps)


def quantization_scheme(graph: nir.NIRGraph) -> str | None:
    """graph.metadata["quantization"] as text ("loihi", "int8"), or None if not quantized.

    The one reading of that key (HDF5 round trips give bytes or 0-d/1-element arrays).
    """
    scheme = (getattr(graph, "metadata", None) or {}).get("quantization")
    if isinstance(scheme, np.ndarray):
        scheme = scheme.reshape(-1)[0] if scheme.size == 1 else None
    if isinstance(scheme, bytes):
        scheme = scheme.decode(errors="replace")
    return None if scheme is None else str(scheme)
