"""Loihi 2 resource mapping: place neuron populations and their synapses onto neuro cores.

Model (docs/lava.md): synapses live in the core of their post-synaptic neuron, as on Loihi.
Each population is packed, in neuron order, onto cores of its own; a core takes neurons while

* neurons <= core.neurons (neurons per core),
* stored synapses x weight bits <= core.synaptic_memory_bits,
* distinct pre-synaptic neurons (input axons) with a stored synapse <= core.fan_in_axons.

Only non-zero weights are stored (pruned zeros cost no synaptic memory); the report also gives
what a dense encoding would need, so the effect of pruning is visible. All limits come from the
hardware description (`neurocompile.targets.hardware.load_hardware("loihi2")`), each with its
published source. Input nodes are fed from outside the neuro cores and take none.

Each population also says which neuron program it needs: Lava's LIF ("lif"), or, for the
subtractive reset, graded spikes (Loihi 2 sends graded spikes of up to 24 bits) or a constant
current into u (an Affine bias before a CubaLIF), a custom
program ("custom"), which Loihi 2's microcoded neuro cores run (Orchard et al. 2021,
"Efficient Neuromorphic Signal Processing with Loihi 2", Sec. II) where Loihi 1's fixed LIF
could not. Neither changes the memory or core counts of this model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.targets.lava.lowering import LavaPlan


class ResourceError(UnsupportedError):
    """A graph that does not fit the hardware's per-core or per-chip limits."""


def _limits(hw: dict[str, Any], chips: int, weight_bits: int | None) -> dict[str, Any]:
    from neurocompile.targets.hardware import hw_get, hw_source

    def need(key: str) -> int:
        value = hw_get(hw, key)
        if value is None:
            raise UnsupportedError(f"hardware {hw.get('name')!r} has no {key!r}")
        return int(value)

    max_bits = int(hw_get(hw, "precision.weight_bits_max", 8))
    bits = max_bits if weight_bits is None else int(weight_bits)
    min_bits = int(hw_get(hw, "precision.weight_bits_min", 1))
    if not min_bits <= bits <= max_bits:
        raise ResourceError(
            f"weight precision {bits} bits is outside {hw.get('name')}'s range "
            f"[{min_bits}, {max_bits}] bits")
    keys = ("core.neurons", "core.synaptic_memory_bits", "core.fan_in_axons", "chip.cores")
    return {
        "neurons_per_core": need("core.neurons"),
        "synaptic_memory_bits_per_core": need("core.synaptic_memory_bits"),
        "fan_in_axons_per_core": need("core.fan_in_axons"),
        "cores_per_chip": need("chip.cores"),
        "chips": int(chips),
        "cores_available": need("chip.cores") * int(chips),
        "default_weight_bits": bits,
        "sources": {k: hw_source(hw, k) for k in keys},
    }


def _pack(name: str, n: int, row_bits: np.ndarray, row_axons: np.ndarray | None,
          lim: dict[str, Any], n_pre: int) -> list[dict[str, int]]:
    """Greedy, in-order packing of one population onto cores; returns per-core usage."""
    max_n = lim["neurons_per_core"]
    max_bits = lim["synaptic_memory_bits_per_core"]
    max_axons = lim["fan_in_axons_per_core"]
    cores: list[dict[str, int]] = []
    cum = np.concatenate([[0], np.cumsum(row_bits, dtype=np.int64)])
    start = 0
    while start < n:
        # largest stop such that neurons and memory fit (axons checked below)
        stop = min(n, start + max_n)
        stop = min(stop, int(np.searchsorted(cum, cum[start] + max_bits, side="right")) - 1)
        if stop <= start:
            raise ResourceError(
                f"node {name!r}: neuron {start} alone needs {int(row_bits[start]):,} bits of "
                f"synaptic memory; a core has {max_bits:,} bits")
        axons = 0
        if row_axons is not None:
            def union(stop_: int, start_: int = start) -> int:
                return int(row_axons[start_:stop_].any(axis=0).sum())

            if union(start + 1) > max_axons:
                raise ResourceError(
                    f"node {name!r}: neuron {start} alone has {union(start + 1):,} input "
                    f"axons; a core accepts {max_axons:,}")
            if union(stop) > max_axons:  # the union only grows with stop: bisect the largest
                lo, hi = start + 1, stop  # union(lo) fits, union(hi) does not
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if union(mid) <= max_axons else (lo, mid)
                stop = lo
            axons = union(stop)
        cores.append({"neurons": stop - start, "synaptic_memory_bits": int(cum[stop] - cum[start]),
                      "fan_in_axons": axons})
        start = stop
    return cores


def neuron_program(pop) -> str:
    """'lif' for Lava's LIF as is, 'custom' where the population needs its own neuron program."""
    custom = pop.reset != "zero" or pop.current is not None or pop.spikes != "single"
    return "custom" if custom else "lif"


def map_resources(plan: LavaPlan, hardware: str | dict[str, Any] = "loihi2", *, chips: int = 1,
                  weight_bits: int | None = None, enforce: bool = True) -> dict[str, Any]:
    """Place every neuron population onto cores; raise ResourceError if enforce and it won't fit.

    weight_bits: precision of float weights (default: the hardware's maximum); a fixed-point
    plan uses each synapse's own loihi.num_weight_bits.
    """
    from neurocompile.targets.hardware import load_hardware

    hw = load_hardware(hardware) if isinstance(hardware, str) else hardware
    lim = _limits(hw, chips, weight_bits)
    by_target: dict[str, list] = {}
    for syn in plan.synapses:
        by_target.setdefault(syn.target, []).append(syn)
    pops: dict[str, Any] = {}
    core_index = 0
    totals = {"neurons": 0, "synapses_dense": 0, "synapses_nonzero": 0,
              "memory_bits_dense": 0, "memory_bits_nonzero": 0}
    cores_dense = 0
    for name, pop in plan.populations.items():
        syns = by_target.get(name, [])
        n = pop.size
        row_bits = np.zeros(n, dtype=np.int64)
        row_bits_dense = np.zeros(n, dtype=np.int64)
        dense = nonzero = bits_dense = bits_nz = 0
        offsets, n_pre = {}, 0
        for syn in syns:
            if syn.source not in offsets:
                offsets[syn.source] = n_pre
                n_pre += syn.weight.shape[1]
        row_axons = np.zeros((n, n_pre), dtype=bool) if syns else None
        for syn in syns:
            b = syn.num_weight_bits if plan.fixed_point else lim["default_weight_bits"]
            nz_rows = np.count_nonzero(syn.weight, axis=1)
            row_bits += nz_rows.astype(np.int64) * b
            row_bits_dense += syn.weight.shape[1] * b
            dense += syn.dense
            nonzero += syn.nonzero
            bits_dense += syn.dense * b
            bits_nz += syn.nonzero * b
            off = offsets[syn.source]
            row_axons[:, off:off + syn.weight.shape[1]] |= syn.weight != 0
        cores = _pack(name, n, row_bits, row_axons, lim, n_pre)
        try:
            dense_cores = len(_pack(name, n, row_bits_dense, None, lim, n_pre))
        except ResourceError:
            dense_cores = None
        for c in cores:
            c["core"] = core_index
            core_index += 1
        cores_dense = None if dense_cores is None or cores_dense is None else \
            cores_dense + dense_cores
        pops[name] = {
            "kind": pop.kind, "neurons": n, "cores": len(cores), "cores_if_dense": dense_cores,
            "synapses_dense": dense, "synapses_nonzero": nonzero,
            "memory_bits_dense": bits_dense, "memory_bits_nonzero": bits_nz,
            "core_usage": cores, "reset": pop.reset,
            "neuron_program": neuron_program(pop),
        }
        totals["neurons"] += n
        totals["synapses_dense"] += dense
        totals["synapses_nonzero"] += nonzero
        totals["memory_bits_dense"] += bits_dense
        totals["memory_bits_nonzero"] += bits_nz
    used = core_index
    fits = used <= lim["cores_available"]
    if enforce and not fits:
        running = 0
        for name, info in pops.items():
            running += info["cores"]
            if running > lim["cores_available"]:
                raise ResourceError(
                    f"node {name!r}: the graph needs {used} cores ({info['cores']} for this "
                    f"node's {info['neurons']:,} neurons, {running} up to it) but "
                    f"{hw.get('name', 'the chip')} has {lim['cores_per_chip']} cores per chip x "
                    f"{lim['chips']} chip(s) = {lim['cores_available']}")
    totals["memory_bits_saved_by_pruning"] = totals["memory_bits_dense"] - \
        totals["memory_bits_nonzero"]
    return {
        "hardware": hw.get("name", "loihi2"),
        "limits": lim,
        "cores_used": used,
        "cores_if_dense": cores_dense,
        "fits": fits,
        "populations": pops,
        "totals": totals,
    }


__all__ = ["ResourceError", "map_resources"]
