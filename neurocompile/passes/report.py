"""What a pass did, per node: parameters and neurons before and after, JSON first."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import nir
import numpy as np

from neurocompile.ir import weights
from neurocompile.ir.graph import NEURON_TYPES, SYNAPTIC_TYPES, type_name

# The arrays whose non-zero entries count as a node's parameters.
_PARAM_FIELDS = ("weight", "bias", "scale")


def count_params(node: nir.NIRNode) -> int:
    """Non-zero entries of a node's weight, bias and scale arrays (0 for nodes without them)."""
    total = 0
    for attr in _PARAM_FIELDS:
        value = getattr(node, attr, None)
        if value is not None:
            total += weights.nonzero(value)
    return total


def count_neurons(node: nir.NIRNode) -> int:
    """Number of neurons of a neuron node (0 for other nodes)."""
    if not isinstance(node, NEURON_TYPES):
        return 0
    for attr in ("v_threshold", "tau", "tau_mem", "r"):
        value = getattr(node, attr, None)
        if value is not None:
            return int(np.asarray(value).size)
    return 0


@dataclass
class NodeReport:
    """One node's row in a pass report."""

    node: str
    type: str
    params_before: int
    params_after: int
    neurons_before: int
    neurons_after: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PassReport:
    """A pass's options, per-node rows and notes; `to_dict` gives stable JSON keys."""

    name: str
    options: dict[str, Any]
    nodes: list[NodeReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        keys = ("params_before", "params_after", "neurons_before", "neurons_after")
        return {k: int(sum(getattr(r, k) for r in self.nodes)) for k in keys}

    def row(self, node: str) -> NodeReport:
        """The row of one node (KeyError if the pass did not report it)."""
        for r in self.nodes:
            if r.node == node:
                return r
        raise KeyError(node)

    def to_dict(self) -> dict[str, Any]:
        return {"pass": self.name, "options": _jsonable(self.options),
                "totals": self.totals(), "nodes": [_jsonable(asdict(r)) for r in self.nodes],
                "notes": list(self.notes)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def compare_graphs(name: str, options: dict[str, Any], before: nir.NIRGraph,
                   after: nir.NIRGraph, extra: dict[str, dict[str, Any]] | None = None
                   ) -> PassReport:
    """Build a report with one row per node of `before` holding weights or neurons."""
    extra = extra or {}
    report = PassReport(name, dict(options))
    for node_name, node in before.nodes.items():
        if not isinstance(node, SYNAPTIC_TYPES + NEURON_TYPES):
            continue
        new = after.nodes.get(node_name)
        report.nodes.append(NodeReport(
            node=node_name, type=type_name(node),
            params_before=count_params(node),
            params_after=count_params(new) if new is not None else 0,
            neurons_before=count_neurons(node),
            neurons_after=count_neurons(new) if new is not None else 0,
            extra=dict(extra.get(node_name, {}))))
    return report
