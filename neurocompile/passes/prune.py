"""Pruning passes on NIR graphs: magnitude, activity-based, and dead-neuron removal.

Every pass deep-copies its input (the caller's graph is never changed) and returns
``(new_graph, PassReport)``; the report lists non-zero parameters and neurons per node,
before and after.

* ``magnitude_prune``: zero the k = floor(s * n + 1/2) smallest |w| of each weighted node
  (``scope="layer"``, n = that node's weights) or of all weighted nodes together
  (``scope="global"``), or every |w| < ``threshold``. Ties are broken by position (flat
  C order), so the result is deterministic. Weights already zero count towards s.
* ``activity_prune``: from the activity of a calibration run, take each Affine/Linear
  node's presynaptic rate r_j (mean |input| per step and sample), then zero
  the k weights with the lowest score: |w_ij| * r_j (``criterion="rate_weight"``) or r_j
  with |w_ij| breaking ties (``criterion="rate"``: synapses of the least active
  presynaptic neurons first).
* ``remove_dead_neurons``: drop spiking neurons that never spike on the calibration data,
  with their rows in the weights before them, their columns in the weights after them
  (both, for recurrent weights) and their entries in every per-neuron parameter and
  metadata array. A neuron that never spikes contributes nothing downstream, so the
  outputs on the calibration data are unchanged spike for spike. Populations read by an
  Output node are kept unless ``keep_outputs=False`` (then the Output shape shrinks).

Passes are graph -> graph and never run a graph: the activity-based ones take the activity
of a calibration run, ``neurocompile.analysis.record_activity(graph, calibration)``
({node: total |output| per element, '__samples_steps__': batch * steps});
``neurocompile.analysis.run_pass`` runs the calibration when a registered pass needs it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from neurocompile import config
from neurocompile.errors import InputDataError, UnsupportedError
from neurocompile.ir import weights as wts
from neurocompile.ir.graph import predecessors, successors
from neurocompile.passes.report import PassReport, compare_graphs

PRUNABLE_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)
DENSE_TYPES = (nir.Affine, nir.Linear)
_NEURON_SPIKING = (nir.LIF, nir.CubaLIF, nir.IF)
_NOT_PARAMS = ("input_type", "output_type", "metadata")


# -- option checks -------------------------------------------------------------------------
def check_sparsity(sparsity: float) -> float:
    """A target sparsity must be a number in [0, 1)."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise UnsupportedError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not (0.0 <= s < 1.0):
        raise UnsupportedError(f"sparsity must be in [0, 1), got {s}")
    return s


def _check_scope(scope: str) -> str:
    if scope not in ("layer", "global"):
        raise UnsupportedError(f"scope must be 'layer' or 'global', got {scope!r}")
    return scope


def _n_prune(s: float, n: int) -> int:
    """How many of n weights a target sparsity s zeroes (round half up)."""
    return min(n, int(np.floor(s * n + 0.5)))


def _targets(graph: nir.NIRGraph, nodes: list[str] | None, types: tuple[type, ...]) -> list[str]:
    names = [n for n, node in graph.nodes.items() if isinstance(node, types)]
    if nodes is None:
        return names
    bad = [n for n in nodes if n not in names]
    if bad:
        raise UnsupportedError(
            f"cannot prune node(s) {bad}: not weighted nodes of types "
            f"{[t.__name__ for t in types]} in this graph; candidates are {names}")
    return list(nodes)


def _zero_lowest(weights: list[np.ndarray], keys: list[list[np.ndarray]], k: int
                 ) -> list[np.ndarray]:
    """Zero the k entries with the lowest sort keys (last key primary) over all arrays."""
    sizes = [w.size for w in weights]
    cat_keys = [np.concatenate([kk[i].ravel() for kk in keys]) for i in range(len(keys[0]))]
    total = sum(sizes)
    drop = np.zeros(total, dtype=bool)
    if k >= total:
        drop[:] = True
    elif k > 0 and len(cat_keys) == 1:
        # O(n): everything below the k-th smallest key, then ties at it in position order
        # (the same set a stable sort would pick).
        key = cat_keys[0]
        cut = np.partition(key, k - 1)[k - 1]
        drop = key < cut
        drop[np.flatnonzero(key == cut)[:k - int(drop.sum())]] = True
    elif k > 0:
        drop[np.lexsort([np.arange(total)] + cat_keys)[:k]] = True
    out, start = [], 0
    for w, size in zip(weights, sizes):
        flat = np.array(w, copy=True).reshape(-1)
        flat[drop[start:start + size]] = 0
        out.append(flat.reshape(w.shape))
        start += size
    return out


def _apply_weights(graph: nir.NIRGraph, new: dict[str, Any]) -> None:
    for name, w in new.items():
        graph.nodes[name] = dataclasses.replace(graph.nodes[name], weight=w)


def _shallow(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A new graph sharing every node: a pass replaces only the nodes it changes."""
    out = copy.copy(graph)
    out.nodes = dict(graph.nodes)
    out.edges = list(graph.edges)
    out.metadata = dict(graph.metadata or {})
    return out


class _Stored:
    """A weight's stored values (all entries of an array, the non-zeros of a sparse matrix),
    their column indices, and how many zeros are implicit (sparse only)."""

    def __init__(self, w: Any):
        self.w = w
        if wts.is_sparse(w):
            self.csr = wts.as_csr(w, np.float64)
            self.values = self.csr.data
            self.cols = self.csr.indices
        else:
            self.csr = None
            self.values = np.asarray(w)
            self.cols = None
        self.implicit_zeros = wts.entries(w) - self.values.size

    def column_keys(self, per_column: np.ndarray) -> np.ndarray:
        """A per-input quantity laid out like the stored values."""
        if self.csr is not None:
            return per_column[self.cols]
        return np.broadcast_to(per_column[None, :], self.values.shape)

    def rebuild(self, values: np.ndarray) -> Any:
        if self.csr is None:
            return values
        out = self.csr.copy()
        out.data = values
        out.eliminate_zeros()
        return out


def _prune_stored(stored: list[_Stored], keys: list[list[np.ndarray]], k: int) -> list[Any]:
    """Zero the k lowest-key entries over all weights; implicit zeros count as pruned first."""
    k = max(0, k - sum(st.implicit_zeros for st in stored))
    new = _zero_lowest([st.values for st in stored], keys, k)
    return [st.rebuild(v) for st, v in zip(stored, new)]


# -- magnitude ------------------------------------------------------------------------------
def magnitude_prune(graph: nir.NIRGraph, sparsity: float | None = None, *,
                    threshold: float | None = None, scope: str = "layer",
                    nodes: list[str] | None = None) -> tuple[nir.NIRGraph, PassReport]:
    """Zero the smallest-magnitude weights: to a sparsity (per layer or global) or below a threshold."""
    if (sparsity is None) == (threshold is None):
        raise UnsupportedError("magnitude pruning needs exactly one of sparsity or threshold")
    _check_scope(scope)
    out = _shallow(graph)
    names = _targets(out, nodes, PRUNABLE_TYPES)
    stored = [_Stored(out.nodes[n].weight) for n in names]
    if threshold is not None:
        t = float(threshold)
        if not (t >= 0 and np.isfinite(t)):
            raise UnsupportedError(f"threshold must be a finite number >= 0, got {threshold!r}")
        new = [st.rebuild(np.where(np.abs(st.values) < t, 0, st.values).astype(
            st.values.dtype)) for st in stored]
        options = {"method": "magnitude", "threshold": t}
    else:
        s = check_sparsity(sparsity)
        options = {"method": "magnitude", "sparsity": s, "scope": scope}
        if scope == "global" and stored:
            new = _prune_stored(stored, [[np.abs(st.values)] for st in stored],
                                _n_prune(s, sum(wts.entries(st.w) for st in stored)))
        else:
            new = [_prune_stored([st], [[np.abs(st.values)]], _n_prune(s, wts.entries(st.w)))[0]
                   for st in stored]
    _apply_weights(out, dict(zip(names, new)))
    return out, compare_graphs("prune", options, graph, out)


# -- activity (calibration) -----------------------------------------------------------------
def check_activity(activity: Mapping[str, np.ndarray] | None, what: str,
                   nodes: list[str]) -> Mapping[str, np.ndarray]:
    """The activity of a calibration run, checked to cover `nodes` (a clear error otherwise)."""
    if activity is None:
        raise InputDataError(
            f"{what} needs the activity of a calibration run: pass "
            "neurocompile.analysis.record_activity(graph, calibration)")
    if not isinstance(activity, Mapping) or "__samples_steps__" not in activity:
        got = type(activity).__name__ if not isinstance(activity, Mapping) \
            else f"a dict with keys {sorted(activity)[:8]}"
        raise InputDataError(
            f"{what}: activity must be the dict returned by record_activity(graph, "
            f"calibration) (with '__samples_steps__'), got {got}")
    missing = [n for n in nodes if n not in activity]
    if missing:
        raise InputDataError(f"{what}: activity has no entry for node(s) {missing}; record it "
                             "on this graph (record_activity(graph, calibration))")
    if float(activity["__samples_steps__"]) <= 0:
        raise InputDataError(f"{what}: activity covers no samples or steps "
                             f"(__samples_steps__ = {activity['__samples_steps__']})")
    return activity


def _input_rates(graph: nir.NIRGraph, activity: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    preds = predecessors(graph)[name]
    total = sum(np.asarray(activity[p], dtype=np.float64) for p in preds)
    return np.asarray(total, dtype=np.float64).reshape(-1) / float(activity["__samples_steps__"])


def activity_prune(graph: nir.NIRGraph, activity: Mapping[str, np.ndarray] | None,
                   sparsity: float, *, scope: str = "layer", criterion: str = "rate_weight",
                   nodes: list[str] | None = None) -> tuple[nir.NIRGraph, PassReport]:
    """Zero the synapses that carry least activity on calibration data (see module docstring)."""
    s = check_sparsity(sparsity)
    _check_scope(scope)
    if criterion not in ("rate_weight", "rate"):
        raise UnsupportedError(f"criterion must be 'rate_weight' or 'rate', got {criterion!r}")
    out = _shallow(graph)
    names = _targets(out, nodes, DENSE_TYPES)
    preds = predecessors(graph)
    activity = check_activity(activity, "activity pruning",
                              sorted({p for n in names for p in preds[n]}))
    stored = [_Stored(out.nodes[n].weight) for n in names]
    keys = []
    for name, st in zip(names, stored):
        rate = st.column_keys(_input_rates(graph, activity, name))
        mag = np.abs(st.values)
        keys.append([mag * rate] if criterion == "rate_weight" else [mag, rate])
    if scope == "global" and stored:
        new = _prune_stored(stored, keys, _n_prune(s, sum(wts.entries(st.w) for st in stored)))
    else:
        new = [_prune_stored([st], [kk], _n_prune(s, wts.entries(st.w)))[0]
               for st, kk in zip(stored, keys)]
    _apply_weights(out, dict(zip(names, new)))
    extra = {n: {"mean_input_rate": float(_input_rates(graph, activity, n).mean())} for n in names}
    options = {"method": "activity", "sparsity": s, "scope": scope, "criterion": criterion}
    return out, compare_graphs("prune", options, graph, out, extra)


# -- dead neurons ---------------------------------------------------------------------------
def _slice_node(node: nir.NIRNode, keep: np.ndarray, n: int) -> nir.NIRNode:
    """A neuron node with only the neurons `keep`: slices every (n,)-shaped parameter."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        if not f.init or f.name in _NOT_PARAMS:
            continue
        value = getattr(node, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            changes[f.name] = value[keep]
    meta = {}
    for k, v in (node.metadata or {}).items():
        arr = np.asarray(v) if isinstance(v, (np.ndarray, list)) else None
        meta[k] = arr[keep] if arr is not None and arr.ndim >= 1 and arr.shape[0] == n else v
    return dataclasses.replace(node, **changes, metadata=meta)


def _neuron_count(node: nir.NIRNode) -> tuple[int, ...]:
    return tuple(int(x) for x in np.asarray(node.output_type["output"]).reshape(-1))


def remove_dead_neurons(graph: nir.NIRGraph, activity: Mapping[str, np.ndarray] | None = None,
                        *, keep_outputs: bool = True) -> tuple[nir.NIRGraph, PassReport]:
    """Drop spiking neurons that never spike on the calibration data (see module docstring)."""
    activity = check_activity(activity, "dead-neuron removal",
                              [n for n, node in graph.nodes.items()
                               if isinstance(node, _NEURON_SPIKING)])
    preds, succs = predecessors(graph), successors(graph)
    out = _shallow(graph)
    notes: list[str] = []
    extra: dict[str, dict[str, Any]] = {}
    rows: dict[str, np.ndarray] = {}
    cols: dict[str, np.ndarray] = {}
    shrink: dict[str, np.ndarray] = {}
    for name, node in graph.nodes.items():
        if not isinstance(node, _NEURON_SPIKING):
            continue
        shape = _neuron_count(node)
        if len(shape) != 1:
            notes.append(f"{name}: skipped, neurons are not 1-D (shape {shape})")
            continue
        n = shape[0]
        alive = np.asarray(activity[name]).reshape(-1) > 0
        dead = int(n - alive.sum())
        extra[name] = {"dead": dead}
        if dead == 0:
            continue
        reason = _why_not_shrinkable(graph, name, preds, succs, keep_outputs)
        if reason:
            notes.append(f"{name}: {dead} dead neuron(s) kept: {reason}")
            continue
        if not alive.any():
            alive[0] = True
            notes.append(f"{name}: every neuron is dead; neuron 0 kept so the graph stays valid")
        keep = np.nonzero(alive)[0]
        shrink[name] = keep
        extra[name]["kept_indices"] = keep.tolist() if n <= 64 else f"{keep.size} of {n}"
        for p in preds[name]:
            rows[p] = keep
        for s in succs[name]:
            if isinstance(graph.nodes[s], DENSE_TYPES):
                cols[s] = keep
    for name, keep in shrink.items():
        out.nodes[name] = _slice_node(out.nodes[name], keep, _neuron_count(graph.nodes[name])[0])
        for s in succs[name]:
            if isinstance(graph.nodes[s], nir.Output):
                out.nodes[s] = nir.Output(output_type={"output": np.array([keep.size])},
                                          metadata=dict(out.nodes[s].metadata or {}))
    for name in set(rows) | set(cols):
        node = out.nodes[name]
        w = node.weight
        r = rows.get(name, np.arange(wts.shape(w)[0]))
        c = cols.get(name, np.arange(wts.shape(w)[1]))
        kept = wts.as_csr(w, np.float64)[r][:, c] if wts.is_sparse(w) else \
            np.asarray(w)[np.ix_(r, c)]
        changes: dict[str, Any] = {"weight": kept}
        if isinstance(node, nir.Affine):
            changes["bias"] = np.asarray(node.bias)[r]
        out.nodes[name] = dataclasses.replace(node, **changes)
    report = compare_graphs("prune", {"method": "dead", "keep_outputs": keep_outputs},
                            graph, out, extra)
    report.notes.extend(notes)
    return out, report


def _why_not_shrinkable(graph: nir.NIRGraph, name: str, preds: dict[str, list[str]],
                        succs: dict[str, list[str]], keep_outputs: bool) -> str:
    """Empty string if population `name` can shrink; else why not."""
    for p in preds[name]:
        if not isinstance(graph.nodes[p], DENSE_TYPES):
            return f"input node {p!r} is a {type(graph.nodes[p]).__name__}, not Affine/Linear"
        if succs[p] != [name]:
            return f"input node {p!r} also feeds {[x for x in succs[p] if x != name]}"
    for s in succs[name]:
        node = graph.nodes[s]
        if isinstance(node, nir.Output):
            if keep_outputs:
                return f"it feeds Output {s!r} (pass keep_outputs=False to shrink it)"
            continue
        if not isinstance(node, DENSE_TYPES):
            return f"it feeds {s!r}, a {type(node).__name__}, not Affine/Linear"
        if preds[s] != [name]:
            return f"{s!r} also reads {[x for x in preds[s] if x != name]}"
    return ""


# -- registry entries --------------------------------------------------------------------------
_SPARSITY = dict(min=0.0, max=1.0, max_open=True)


@dataclass(frozen=True)
class MagnitudeOptions:
    """Options of `prune --method magnitude` (exactly one of sparsity and threshold)."""

    sparsity: float | None = config.setting(None, **_SPARSITY,
                                            help="Target fraction of zero weights, in [0, 1).")
    threshold: float | None = config.setting(None, min=0.0,
                                             help="Zero every |w| below this instead.")
    scope: str = config.setting("layer", choices=("layer", "global"),
                                help="layer: sparsity per weighted node; global: over all.")
    nodes: tuple[str, ...] | None = config.setting(None, help="Only these weighted nodes.")

    def check(self, where: str) -> None:
        if (self.sparsity is None) == (self.threshold is None):
            raise config.ConfigError(f"{where}: magnitude pruning needs exactly one of "
                                     "sparsity and threshold")


@dataclass(frozen=True)
class ActivityOptions:
    """Options of `prune --method activity` (needs calibration data)."""

    sparsity: float = config.setting(**_SPARSITY,
                                     help="Target fraction of zero weights, in [0, 1).")
    scope: str = config.setting("layer", choices=("layer", "global"),
                                help="layer: sparsity per weighted node; global: over all.")
    criterion: str = config.setting("rate_weight", choices=("rate_weight", "rate"),
                                    help="Score |w| x presynaptic rate, or the rate alone.")
    nodes: tuple[str, ...] | None = config.setting(None, help="Only these weighted nodes.")


@dataclass(frozen=True)
class DeadOptions:
    """Options of `prune --method dead` (needs calibration data)."""

    keep_outputs: bool = config.setting(True, help="Keep populations read by an Output node.")


def run_magnitude(graph: nir.NIRGraph, options: MagnitudeOptions, activity=None
                  ) -> tuple[nir.NIRGraph, PassReport]:
    return magnitude_prune(graph, options.sparsity, threshold=options.threshold,
                           scope=options.scope,
                           nodes=list(options.nodes) if options.nodes else None)


def run_activity(graph: nir.NIRGraph, options: ActivityOptions, activity=None
                 ) -> tuple[nir.NIRGraph, PassReport]:
    return activity_prune(graph, activity, options.sparsity, scope=options.scope,
                          criterion=options.criterion,
                          nodes=list(options.nodes) if options.nodes else None)


def run_dead(graph: nir.NIRGraph, options: DeadOptions, activity=None
             ) -> tuple[nir.NIRGraph, PassReport]:
    return remove_dead_neurons(graph, activity, keep_outputs=options.keep_outputs)
