"""Loihi 2 resource mapping: cores, per-core limits, chip overflow, and what pruning saves."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from test_lava_helpers import graph, lif

from neurocompile.cli.main import main
from neurocompile.ir.io import save_graph
from neurocompile.targets import get_target
from neurocompile.targets.hardware import hw_get, load_hardware
from neurocompile.targets.lava import lower
from neurocompile.targets.loihi2 import ResourceError, map_resources

HW = load_hardware("loihi2")
N_CORE = int(hw_get(HW, "core.neurons"))
MEM_CORE = int(hw_get(HW, "core.synaptic_memory_bits"))
AXONS = int(hw_get(HW, "core.fan_in_axons"))
CORES = int(hw_get(HW, "chip.cores"))


def one_layer(n_in: int, n: int, weight: np.ndarray | None = None) -> nir.NIRGraph:
    w = np.full((n, n_in), 1 / 64) if weight is None else weight
    return graph({"input": nir.Input(np.array([n_in])), "fc": nir.Linear(w), "lif": lif(n),
                  "output": nir.Output(np.array([n]))},
                 [("input", "fc"), ("fc", "lif"), ("lif", "output")])


def test_population_over_neurons_per_core_spreads_over_cores():
    n = 2 * N_CORE + 5
    res = map_resources(lower(one_layer(1, n)))
    pop = res["populations"]["lif"]
    assert pop["cores"] == 3 and res["cores_used"] == 3
    assert [c["neurons"] for c in pop["core_usage"]] == [N_CORE, N_CORE, 5]
    assert all(c["neurons"] <= N_CORE for c in pop["core_usage"])


def test_graph_over_the_chip_raises_naming_node_limit_and_numbers():
    n = CORES * N_CORE + 1  # one neuron more than a chip holds
    plan = lower(one_layer(1, n))
    with pytest.raises(ResourceError, match=rf"node 'lif': the graph needs {CORES + 1} cores.*"
                                            rf"{CORES} cores per chip x 1 chip\(s\) = {CORES}"):
        map_resources(plan)
    assert map_resources(plan, chips=2)["cores_used"] == CORES + 1
    unchecked = map_resources(plan, enforce=False)
    assert unchecked["fits"] is False


def test_synaptic_memory_limit_spreads_and_pruning_saves_the_expected_bits():
    rng = np.random.default_rng(0)
    n_in, n = 4000, 200
    dense_w = rng.integers(1, 64, (n, n_in)) / 64
    dense = map_resources(lower(one_layer(n_in, n, dense_w)))
    per_core = MEM_CORE // (n_in * 8)  # neurons whose 8-bit fan-in fits one core's memory
    assert dense["populations"]["lif"]["cores"] == -(-n // per_core)
    assert max(c["synaptic_memory_bits"] for c in dense["populations"]["lif"]["core_usage"]) \
        <= MEM_CORE

    pruned_w = dense_w * (rng.random((n, n_in)) < 0.2)
    nnz = int(np.count_nonzero(pruned_w))
    pruned = map_resources(lower(one_layer(n_in, n, pruned_w)))
    t = pruned["totals"]
    assert t["synapses_dense"] == n * n_in and t["synapses_nonzero"] == nnz
    assert t["memory_bits_dense"] == n * n_in * 8
    assert t["memory_bits_nonzero"] == nnz * 8
    assert t["memory_bits_saved_by_pruning"] == (n * n_in - nnz) * 8
    assert pruned["cores_used"] < dense["cores_used"]
    assert pruned["cores_if_dense"] == dense["cores_used"]
    # 4-bit weights halve the memory again
    four = map_resources(lower(one_layer(n_in, n, pruned_w)), weight_bits=4)
    assert four["totals"]["memory_bits_nonzero"] == nnz * 4


def test_fan_in_over_the_axon_limit_is_named():
    plan = lower(one_layer(AXONS + 10, 3))
    with pytest.raises(ResourceError, match=rf"node 'lif': neuron 0 alone has {AXONS + 10:,} "
                                            rf"input axons; a core accepts {AXONS:,}"):
        map_resources(plan)


def test_weight_bits_outside_the_hardware_range_is_refused():
    with pytest.raises(ResourceError, match="weight precision 12 bits"):
        map_resources(lower(one_layer(3, 3)), weight_bits=12)


def test_loihi2_compile_enforces_limits_and_lava_only_reports():
    g = one_layer(1, CORES * N_CORE + 1)
    with pytest.raises(ResourceError):
        get_target("loihi2").compile(g)
    art = get_target("lava").compile(g)
    assert art.manifest["resources"]["fits"] is False


def test_cli_compile_overflow_is_one_line_error(tmp_path, capsys):
    path = save_graph(one_layer(AXONS + 1, 2), tmp_path / "wide.nir")
    with pytest.raises(SystemExit) as info:
        main(["compile", str(path), "--target", "loihi2", "-o", str(tmp_path / "art")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "node 'lif'" in err[0] and f"{AXONS:,}" in err[0]
    assert not (tmp_path / "art").exists()
