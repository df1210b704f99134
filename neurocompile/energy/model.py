"""Energy, latency and resource estimates from activity counts and a hardware description.

energy = sum over the description's [model] terms of (count per inference) x (energy per op),
per node; every per-op energy is read from the description together with its source.
"""

from __future__ import annotations

import math
from typing import Any

from neurocompile.errors import InputDataError
from neurocompile.targets.hardware import hw_get, hw_source, load_hardware

LATENCY_KEY = "latency"


def energy_terms(hw: dict[str, Any]) -> dict[str, str]:
    """The description's energy model: count name -> dotted key of its per-op energy."""
    return {k: v for k, v in hw.get("model", {}).items() if k != LATENCY_KEY}


def estimate_energy(activity: dict[str, Any], hw: dict[str, Any]) -> dict[str, Any]:
    """Energy per inference, per node and per operation kind, for one hardware description."""
    terms = energy_terms(hw)
    ops: dict[str, dict[str, Any]] = {}
    for count_key, energy_key in terms.items():
        e = hw_get(hw, energy_key)
        if e is None:
            raise InputDataError(f"hardware {hw.get('name')!r}: model term {count_key!r} names "
                                 f"{energy_key!r}, which the description does not define")
        ops[count_key] = {"energy_key": energy_key, "energy_per_op_j": float(e),
                          "source": hw_source(hw, energy_key), "count": 0.0, "energy_j": 0.0}
    nodes: dict[str, dict[str, Any]] = {}
    total = 0.0
    for name, node in activity["nodes"].items():
        node_terms = {}
        for count_key, op in ops.items():
            count = float(node["per_inference"].get(count_key, 0.0))
            if count:
                e = count * op["energy_per_op_j"]
                node_terms[count_key] = e
                op["count"] += count
                op["energy_j"] += e
        if node_terms:
            node_total = sum(node_terms.values())
            nodes[name] = {"energy_j": node_total, "terms": node_terms}
            total += node_total
    available = bool(ops)
    return {
        "available": available,
        "energy_per_inference_j": total if available else None,
        "by_op": ops,
        "nodes": nodes,
        "unavailable_reason": None if available else
        f"{hw.get('name')}: the description gives no per-operation energy ({hw.get('note', '')})",
    }


def _layers(activity: dict[str, Any], graph_preds: dict[str, list[str]]) -> dict[str, list[str]]:
    """Mapping units: each neuron node with the synaptic nodes that feed it directly."""
    nodes = activity["nodes"]
    layers: dict[str, list[str]] = {}
    claimed: set[str] = set()
    for name, node in nodes.items():
        if node["role"] == "neuron":
            syn = [p for p in graph_preds.get(name, []) if nodes[p]["role"] == "synapse"]
            layers[name] = syn
            claimed.update(syn)
    for name, node in nodes.items():  # synapses that feed no neuron (e.g. straight to Output)
        if node["role"] == "synapse" and name not in claimed:
            layers[name] = [name]
    return layers


def estimate_resources(activity: dict[str, Any], hw: dict[str, Any],
                       graph_preds: dict[str, list[str]],
                       weight_bits: int | dict[str, int] | None = None) -> dict[str, Any]:
    """Cores and synaptic memory per layer if each layer gets cores of its own (no sharing).

    weight_bits: one precision for every synapse, or per synapse node (a quantized graph's
    own widths); synapses not listed get the hardware's storage precision.
    """
    nodes = activity["nodes"]
    per_core_neurons = hw_get(hw, "core.neurons")
    mem_bits = hw_get(hw, "core.synaptic_memory_bits")
    axons = hw_get(hw, "core.fan_in_axons")
    per_node = weight_bits if isinstance(weight_bits, dict) else {}
    bits = int((weight_bits if isinstance(weight_bits, int) else None)
               or hw_get(hw, "precision.synapse_storage_bits")
               or hw_get(hw, "precision.weight_bits_max") or 8)
    layers: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for layer, syn in _layers(activity, graph_preds).items():
        neurons = nodes[layer]["neurons"] if nodes[layer]["role"] == "neuron" else 0
        synapses = sum(nodes[s].get("nonzero_connections", 0) for s in syn)
        fan_in = sum(nodes[s].get("fan_in", 0) for s in syn)
        memory = sum(nodes[s].get("nonzero_connections", 0) * per_node.get(s, bits) for s in syn)
        if per_core_neurons is None:
            cores = None
        else:
            cores = max(1, math.ceil(neurons / per_core_neurons))
            if mem_bits:
                cores = max(cores, math.ceil(memory / mem_bits))
            if axons and fan_in > axons:
                split = math.ceil(fan_in / axons)
                cores *= split
                notes.append(f"{layer}: fan-in {fan_in} exceeds {axons} axons per core; "
                             f"inputs split over {split} core groups (merge neurons not counted)")
        layers[layer] = {"synapse_nodes": syn, "neurons": neurons, "synapses": synapses,
                         "fan_in": fan_in, "synaptic_memory_bits": memory, "cores": cores}
    used = [v["cores"] for v in layers.values() if v["cores"] is not None]
    cores_total = sum(used) if used else None
    chip_cores = hw_get(hw, "chip.cores")
    out: dict[str, Any] = {
        "method": "estimate: each layer on cores of its own; "
                  + ("per-synapse weight bits of the quantized graph" if per_node
                     else f"{bits}-bit weights") + "; synapses = non-zero connections",
        "weight_bits": dict(per_node) if per_node else bits,
        "cores": cores_total,
        "chips": math.ceil(cores_total / chip_cores) if cores_total and chip_cores else None,
        "limits": {"core.neurons": per_core_neurons, "core.synaptic_memory_bits": mem_bits,
                   "core.fan_in_axons": axons, "chip.cores": chip_cores},
        "layers": layers,
        "notes": notes,
    }
    if cores_total and per_core_neurons:
        total_neurons = sum(v["neurons"] for v in layers.values())
        out["neuron_utilisation"] = total_neurons / (cores_total * per_core_neurons)
    if cores_total and mem_bits:
        total_mem = sum(v["synaptic_memory_bits"] for v in layers.values())
        out["memory_utilisation"] = total_mem / (cores_total * mem_bits)
    return out


def mapped_resources(mapping: dict[str, Any] | list[Any], hw: dict[str, Any]) -> dict[str, Any]:
    """Summarise a compiler's resource map: per-core neurons and memory against the core limits.

    Accepts {"cores": [ {...}, ... ]} or a bare list of per-core dicts; each core dict may hold
    neurons / n_neurons, synapses / n_synapses, synaptic_memory_bits / memory_bits, node / nodes.
    Also accepted: the Loihi 2 target's map, {"populations": {node: {"core_usage": [...]}}}.
    A dict without a per-core list may give "cores_used" (or "num_cores") alone.
    """
    cores = mapping.get("cores") if isinstance(mapping, dict) else mapping
    if isinstance(mapping, dict) and isinstance(mapping.get("populations"), dict):
        cores = [{"node": name, **core} for name, pop in mapping["populations"].items()
                 for core in (pop.get("core_usage") or []) if isinstance(core, dict)]
    if isinstance(mapping, dict) and not isinstance(cores, list):
        n = mapping.get("cores_used", mapping.get("num_cores", cores))
        if not isinstance(n, int):
            raise InputDataError("resource map: expected a 'cores' list or a 'cores_used' integer")
        return {"method": "mapping", "cores": n, "per_core": [], "violations": []}
    if not isinstance(cores, list):
        raise InputDataError("resource map: expected a list of per-core entries")

    def pick(d: dict[str, Any], *keys: str) -> int:
        for k in keys:
            if k in d:
                return int(d[k])
        return 0

    limit_n = hw_get(hw, "core.neurons")
    limit_m = hw_get(hw, "core.synaptic_memory_bits")
    per_core, violations = [], []
    for i, core in enumerate(cores):
        if not isinstance(core, dict):
            raise InputDataError(f"resource map: core entry {i} is not a mapping")
        entry = {"core": core.get("core", core.get("id", i)),
                 "nodes": core.get("nodes", core.get("node")),
                 "neurons": pick(core, "neurons", "n_neurons", "num_neurons"),
                 "synapses": pick(core, "synapses", "n_synapses", "num_synapses"),
                 "synaptic_memory_bits": pick(core, "synaptic_memory_bits", "memory_bits")}
        if limit_n and entry["neurons"] > limit_n:
            violations.append(f"core {entry['core']}: {entry['neurons']} neurons > {limit_n}")
        if limit_m and entry["synaptic_memory_bits"] > limit_m:
            violations.append(f"core {entry['core']}: {entry['synaptic_memory_bits']} bits > {limit_m}")
        per_core.append(entry)
    out = {"method": "mapping", "cores": len(per_core), "per_core": per_core,
           "violations": violations,
           "neurons": sum(c["neurons"] for c in per_core),
           "synaptic_memory_bits": sum(c["synaptic_memory_bits"] for c in per_core)}
    if per_core and limit_n:
        out["neuron_utilisation"] = out["neurons"] / (len(per_core) * limit_n)
    if per_core and limit_m:
        out["memory_utilisation"] = out["synaptic_memory_bits"] / (len(per_core) * limit_m)
    return out


def estimate_latency(activity: dict[str, Any], hw: dict[str, Any],
                     resources: dict[str, Any]) -> dict[str, Any]:
    """Latency per inference: steps x step time (fixed per step, or from per-op times)."""
    steps = activity["steps"]
    kind = hw.get("model", {}).get(LATENCY_KEY)
    if kind == "fixed":
        t = hw_get(hw, "timing.time_per_step")
        if t is None:
            return {"available": False, "model": "fixed: no timing.time_per_step"}
        return {"available": True, "model": "fixed time per step", "step_time_s": float(t),
                "latency_per_inference_s": float(t) * steps,
                "source": hw_source(hw, "timing.time_per_step")}
    if kind == "per_op":
        t_syn = hw_get(hw, "timing.synaptic_op_time", 0.0)
        t_neu = hw_get(hw, "timing.neuron_update_time", 0.0)
        t_bar = hw_get(hw, "timing.barrier_time", 0.0)
        nodes, worst, worst_layer = activity["nodes"], 0.0, None
        for layer, info in resources["layers"].items():
            cores = max(1, info["cores"] or 1)
            syn_ops = sum(nodes[s]["per_inference"]["synaptic_ops"] for s in info["synapse_nodes"])
            t = (syn_ops / max(steps, 1) * t_syn + info["neurons"] * t_neu) / cores
            if t > worst:
                worst, worst_layer = t, layer
        step = worst + t_bar
        return {"available": True,
                "model": "per-op: layers on cores of their own, in parallel; step time = "
                         "max over layers of (mean synaptic ops per step x t_synop + neurons x "
                         "t_neuron) / cores + barrier",
                "step_time_s": step, "latency_per_inference_s": step * steps,
                "critical_layer": worst_layer,
                "source": "; ".join(filter(None, (hw_source(hw, k) for k in (
                    "timing.synaptic_op_time", "timing.neuron_update_time",
                    "timing.barrier_time"))))}
    return {"available": False, "model": "the description gives no timing"}


def evaluate_hardware(activity: dict[str, Any], hw: dict[str, Any] | str,
                      graph_preds: dict[str, list[str]], mapping: Any = None,
                      weight_bits: int | dict[str, int] | None = None) -> dict[str, Any]:
    """Energy, latency and resources of one run on one hardware description."""
    if isinstance(hw, str):
        hw = load_hardware(hw)
    resources = estimate_resources(activity, hw, graph_preds, weight_bits)
    out = {"description": hw.get("description", ""), "note": hw.get("note", "")}
    out["energy"] = estimate_energy(activity, hw)
    out["latency"] = estimate_latency(activity, hw, resources)
    out["resources"] = resources
    if mapping is not None:
        out["resources_mapped"] = mapped_resources(mapping, hw)
    return out


__all__ = ["energy_terms", "estimate_energy", "estimate_latency", "estimate_resources",
           "evaluate_hardware", "mapped_resources"]
