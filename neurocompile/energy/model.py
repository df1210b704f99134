"""Energy, latency and resource estimates from activity counts and a hardware description.

energy = sum over a profile's model terms of (count per inference) x (energy per op), per node;
every per-op energy is read from the description together with its source and provenance. A
description may have several profiles (sources that disagree); the nominal one is the estimate
and all of them together give the range [min, max] reported beside it.
"""

from __future__ import annotations

import math
from typing import Any

from neurocompile.errors import InputDataError
from neurocompile.targets.hardware import (
    hw_get,
    hw_provenance,
    hw_source,
    load_hardware,
    profiles,
    term_keys,
)

LATENCY_KEY = "latency"
# Counts that depend on where layers sit on the chip (computed by `route_messages`).
ROUTING_KEYS = ("messages", "messages_within_tile", "hops_east_west", "hops_north_south")
ACTIVITY_KEYS = ("spikes", "neuron_spikes", "synaptic_ops", "neuron_updates",
                 "active_neuron_updates", "inactive_neuron_updates", "dense_macs",
                 "spike_messages", "ann_macs", "dense_macs_per_step")


def energy_terms(hw: dict[str, Any]) -> dict[str, str | list[str]]:
    """The nominal profile's energy model: count name -> energy key (or keys that add)."""
    profs = profiles(hw)
    return dict(next(iter(profs.values()))["model"]) if profs else {}


def route_messages(activity: dict[str, Any], hw: dict[str, Any], resources: dict[str, Any],
                   graph_preds: dict[str, list[str]]) -> dict[str, Any]:
    """Spike messages per source node and inference, and how far they travel on the mesh.

    Layers (as in `estimate_resources`) take consecutive cores in data-flow order; Input nodes
    inject at core 0. A spike of a node is one message to every core of each layer it feeds;
    its source core is each core of its own layer in turn (spikes spread evenly over them).
    Where the description gives a tile mesh (chip.cores_per_tile, tiles_x, tiles_y; tiles
    numbered row by row), a message between cores of one tile is a within-tile message, else
    it travels |dx| east-west and |dy| north-south tile hops (dimension-order routing).
    """
    nodes = activity["nodes"]
    layers = resources.get("layers", {})
    if not layers or any(info["cores"] is None for info in layers.values()):
        return {"available": False, "nodes": {}, "notes": []}
    first, owner, at = {}, {}, 0
    for layer, info in layers.items():
        first[layer] = at
        at += info["cores"]
        owner[layer] = layer
        for syn in info["synapse_nodes"]:
            owner[syn] = layer
    cpt, tx, ty = (hw_get(hw, k) for k in ("chip.cores_per_tile", "chip.tiles_x", "chip.tiles_y"))
    mesh = bool(cpt and tx and ty)
    notes = []
    chip_cores = hw_get(hw, "chip.cores")
    if mesh and chip_cores and at > chip_cores:
        notes.append(f"{at} cores exceed one chip's {chip_cores}: cores beyond the first chip "
                     "reuse its mesh positions; chip-to-chip links are not charged")

    def tile(core: int) -> tuple[int, int]:
        t = (core // int(cpt)) % (int(tx) * int(ty))
        return t % int(tx), t // int(tx)

    def sources(name: str, seen: set[str]) -> set[str]:
        """Spiking sources (Input or neuron nodes) upstream of a node, through stateless ones."""
        found: set[str] = set()
        for p in graph_preds.get(name, []):
            if p in seen:
                continue
            seen.add(p)
            if nodes[p]["role"] in ("input", "neuron"):
                found.add(p)
            elif nodes[p]["role"] == "other":
                found |= sources(p, seen)
        return found

    out: dict[str, dict[str, float]] = {}
    for layer, info in layers.items():
        dest = range(first[layer], first[layer] + info["cores"])
        srcs: set[str] = set()
        for syn in info["synapse_nodes"]:
            srcs |= sources(syn, set())
        for src in sorted(srcs):
            spikes = float(nodes[src]["per_inference"]["spikes"])
            if not spikes:
                continue
            if nodes[src]["role"] == "input" or src not in layers:
                src_cores = [0]
            else:
                src_cores = list(range(first[src], first[src] + layers[src]["cores"]))
            entry = out.setdefault(src, dict.fromkeys(ROUTING_KEYS, 0.0))
            entry["messages"] += spikes * len(dest)
            if not mesh:
                continue
            share = spikes / len(src_cores)
            for sc in src_cores:
                sx, sy = tile(sc)
                for dc in dest:
                    dx, dy = tile(dc)
                    if (dx, dy) == (sx, sy):
                        entry["messages_within_tile"] += share
                    else:
                        entry["hops_east_west"] += share * abs(dx - sx)
                        entry["hops_north_south"] += share * abs(dy - sy)
    totals = {k: sum(v[k] for v in out.values()) for k in ROUTING_KEYS}
    where = (f"; tiles of {int(cpt)} cores on a {int(tx)} x {int(ty)} mesh, dimension-order hops"
             if mesh else "; no tile mesh given")
    return {"available": True, "mesh": mesh,
            "method": "layers on consecutive cores in data-flow order, inputs at core 0; one "
                      "message per spike per destination core" + where,
            "nodes": out, "totals": totals, "notes": notes}


def _term(hw: dict[str, Any], count_key: str, ref: str | list[str]) -> dict[str, Any]:
    keys = term_keys(ref)
    values = []
    for key in keys:
        e = hw_get(hw, key)
        if e is None:
            raise InputDataError(f"hardware {hw.get('name')!r}: model term {count_key!r} names "
                                 f"{key!r}, which the description does not define")
        values.append(float(e))
    provs = list(dict.fromkeys(hw_provenance(hw, k) for k in keys))
    return {"energy_key": " + ".join(keys), "energy_keys": keys,
            "energy_per_op_j": sum(values),
            "source": "; ".join(hw_source(hw, k) or "" for k in keys),
            "provenance": " + ".join(p for p in provs if p), "count": 0.0, "energy_j": 0.0}


def _profile_energy(activity: dict[str, Any], hw: dict[str, Any], model: dict[str, Any],
                    routing: dict[str, Any]) -> dict[str, Any]:
    ops = {count_key: _term(hw, count_key, ref) for count_key, ref in model.items()}
    for count_key in ops:
        if count_key in ROUTING_KEYS:
            if not routing.get("available") or (count_key != "messages"
                                                and not routing.get("mesh")):
                raise InputDataError(
                    f"hardware {hw.get('name')!r}: model term {count_key!r} needs a core "
                    "placement on a tile mesh (core.neurons, chip.cores_per_tile, chip.tiles_x, "
                    "chip.tiles_y)")
        elif count_key not in ACTIVITY_KEYS:
            raise InputDataError(f"hardware {hw.get('name')!r}: model term {count_key!r} is not "
                                 f"a count; counts: {', '.join(ACTIVITY_KEYS + ROUTING_KEYS)}")
    nodes: dict[str, dict[str, Any]] = {}
    total = 0.0
    for name, node in activity["nodes"].items():
        counts = {**node["per_inference"], **routing.get("nodes", {}).get(name, {})}
        node_terms = {}
        for count_key, op in ops.items():
            count = float(counts.get(count_key, 0.0))
            if count:
                e = count * op["energy_per_op_j"]
                node_terms[count_key] = e
                op["count"] += count
                op["energy_j"] += e
        if node_terms:
            node_total = sum(node_terms.values())
            nodes[name] = {"energy_j": node_total, "terms": node_terms}
            total += node_total
    return {"energy_per_inference_j": total, "by_op": ops, "nodes": nodes}


def estimate_energy(activity: dict[str, Any], hw: dict[str, Any],
                    routing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Energy per inference, per node and per operation kind, under each of the profiles of one
    hardware description: the nominal profile's figures, and the range over all profiles."""
    profs = profiles(hw)
    routing = routing or {"available": False, "nodes": {}}
    if not profs:
        return {"available": False, "energy_per_inference_j": None, "energy_range_j": None,
                "nominal_profile": None, "by_op": {}, "nodes": {}, "profiles": {},
                "notes": [], "unavailable_reason":
                f"{hw.get('name')}: the description gives no per-operation energy "
                f"({hw.get('note', '')})"}
    per = {name: {"description": p.get("description", ""),
                  **_profile_energy(activity, hw, p["model"], routing)}
           for name, p in profs.items()}
    nominal = next(iter(per))
    totals = [p["energy_per_inference_j"] for p in per.values()]
    notes = list(routing.get("notes", []))
    uses_split = any(k in p["by_op"] for p in per.values()
                     for k in ("active_neuron_updates", "inactive_neuron_updates"))
    if uses_split and not activity["totals"].get("active_counted", True):
        notes.append("this run did not record neuron state for "
                     f"{', '.join(activity['totals'].get('active_not_counted', []))}: every "
                     "update there is charged as active (an upper bound)")
    return {
        "available": True,
        "energy_per_inference_j": per[nominal]["energy_per_inference_j"],
        "energy_range_j": [min(totals), max(totals)],
        "nominal_profile": nominal,
        "by_op": per[nominal]["by_op"],
        "nodes": per[nominal]["nodes"],
        "profiles": {k: {"description": v["description"],
                         "energy_per_inference_j": v["energy_per_inference_j"],
                         "by_op": v["by_op"], "nodes": v["nodes"]} for k, v in per.items()},
        "notes": notes,
        "unavailable_reason": None,
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
    out = {"description": hw.get("description", ""), "note": hw.get("note", ""),
           "label": _label(hw)}
    if hw.get("figures_from"):
        out["figures_from"] = hw["figures_from"]
    routing = route_messages(activity, hw, resources, graph_preds)
    out["energy"] = estimate_energy(activity, hw, routing)
    if routing["available"]:
        out["energy"]["routing"] = {k: routing[k] for k in ("method", "totals")}
    out["latency"] = estimate_latency(activity, hw, resources)
    out["resources"] = resources
    if mapping is not None:
        out["resources_mapped"] = mapped_resources(mapping, hw)
    return out


def _label(hw: dict[str, Any]) -> str:
    """The name to show: a description that borrows another's figures says whose."""
    name = str(hw.get("name", ""))
    src = hw.get("figures_from")
    return f"{name} ({src} figures)" if src else name


__all__ = ["ROUTING_KEYS", "energy_terms", "estimate_energy", "estimate_latency",
           "estimate_resources", "evaluate_hardware", "mapped_resources", "route_messages"]
