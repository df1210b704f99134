"""Energy counts, model and reports, checked against hand counts on tiny graphs."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from conftest import chain

from neurocompile.energy import build_report, count_activity, mapped_resources, to_json
from neurocompile.energy.counts import dense_connections
from neurocompile.energy.model import route_messages
from neurocompile.energy.report import fmt_energy, render_markdown
from neurocompile.targets.hardware import load_hardware
from neurocompile.targets.reference import simulate as _simulate

# Input pattern (1 sample, 6 steps, 3 inputs).
X = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 0]], float)[None]
W1 = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])  # fan-out of inputs: [1, 0, 2]
W2 = np.array([[1.0, 1.0]])


def simulate(*args, **kwargs):
    """The reference run the energy command makes: with active neuron updates counted."""
    return _simulate(*args, count_active=True, **kwargs)


def _if(n):
    # IF with r = 1, vth = 0.5: u = I (du = 1), v integrates; any weight >= 1 fires it next step.
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, 0.5))


def tiny(w1=W1, w2=W2):
    return chain(("input", nir.Input(input_type={"input": np.array([3])})),
                 ("fc1", nir.Linear(weight=w1)), ("n1", _if(2)),
                 ("fc2", nir.Linear(weight=w2)), ("n2", _if(1)),
                 ("output", nir.Output(output_type={"output": np.array([1])})))


def hand_counts(w1=W1, w2=W2):
    """The same counts by hand, following the one-step delay rule."""
    x = X[0]
    steps = x.shape[0]
    fan1 = np.count_nonzero(w1, axis=0)
    syn1 = int(sum(x[t] @ fan1 for t in range(steps)))
    # n1 at step t sees fc1(x[t-1]) (zero at t=0); positive drive >= 1 > 0.5 fires at once.
    drive = np.vstack([np.zeros(2), x[:-1] @ w1.T])
    s1 = (drive > 0.5).astype(float)  # v resets to 0 on every spike, so no carry-over here
    syn2 = int(sum(s1[t] @ np.count_nonzero(w2, axis=0) for t in range(steps)))
    drive2 = np.vstack([np.zeros(1), s1[:-1] @ w2.T])
    s2 = (drive2 > 0.5).astype(float)
    return {"input": int(x.sum()), "n1": int(s1.sum()), "n2": int(s2.sum()),
            "fc1": syn1, "fc2": syn2, "s1": s1}


def test_counters_equal_hand_counts():
    res = simulate(tiny(), {"input": X})
    h = hand_counts()
    assert res.counters["input"].spikes == h["input"] == 10
    assert res.counters["n1"].spikes == h["n1"]
    assert res.counters["n2"].spikes == h["n2"]
    assert res.counters["fc1"].synaptic_events == h["fc1"] == 4 * 1 + 4 * 0 + 2 * 2
    assert res.counters["fc2"].synaptic_events == h["fc2"]
    act = count_activity(tiny(), res)
    tot = act["totals"]["per_inference"]
    assert tot["synaptic_ops"] == h["fc1"] + h["fc2"]
    assert tot["spikes"] == h["n1"] + h["n2"]
    assert tot["input_spikes"] == 10
    assert tot["neuron_updates"] == (2 + 1) * 6
    assert tot["dense_macs_per_step"] == tot["ann_macs"] == 6 + 2
    assert tot["dense_macs"] == (6 + 2) * 6
    slots = (2 + 1) * 6
    assert act["totals"]["activation_sparsity"] == pytest.approx(1 - (h["n1"] + h["n2"]) / slots)
    assert act["totals"]["connection_sparsity"] == pytest.approx(3 / 8)  # W1 has 3 zeros
    assert act["nodes"]["fc1"]["connection_sparsity"] == pytest.approx(0.5)


def test_batch_counts_are_per_inference():
    xb = np.concatenate([X, X, X])
    act1 = count_activity(tiny(), simulate(tiny(), {"input": X}))
    act3 = count_activity(tiny(), simulate(tiny(), {"input": xb}))
    assert act3["totals"]["run"]["synaptic_ops"] == 3 * act1["totals"]["run"]["synaptic_ops"]
    assert act3["totals"]["per_inference"] == act1["totals"]["per_inference"]


def test_pruning_a_weight_removes_exactly_its_spikes():
    base = count_activity(tiny(), simulate(tiny(), {"input": X}))
    # First layer: zero W1[1, 2]; input 2 spikes twice, so fc1 loses exactly 2 operations.
    w1 = W1.copy()
    w1[1, 2] = 0.0
    g = tiny(w1=w1)
    pruned = count_activity(g, simulate(g, {"input": X}))
    n_spikes_in2 = int(X[0, :, 2].sum())
    fc1_drop = base["nodes"]["fc1"]["run"]["synaptic_ops"] - pruned["nodes"]["fc1"]["run"]["synaptic_ops"]
    assert fc1_drop == n_spikes_in2 == 2
    # Second layer: zero W2[0, 0]; n1's spikes are unchanged, fc2 loses neuron 0's spike count.
    w2 = W2.copy()
    w2[0, 0] = 0.0
    g2 = tiny(w2=w2)
    res2 = simulate(g2, {"input": X})
    assert res2.counters["n1"].spikes == base["nodes"]["n1"]["run"]["spikes"]
    s1 = hand_counts()["s1"]
    drop = base["nodes"]["fc2"]["run"]["synaptic_ops"] - res2.counters["fc2"].synaptic_events
    assert drop == int(s1[:, 0].sum()) > 0


def test_active_and_inactive_updates_equal_hand_counts():
    """IF neurons here fire at once on any drive (>= 1) and reset to 0, so v is 0 after every
    step: an update is active exactly when the neuron's input (its synapse's output of the step
    before) is non-zero."""
    g = tiny()
    res = simulate(g, {"input": X})
    x = X[0]
    drive1 = np.vstack([np.zeros(2), x[:-1] @ W1.T])
    s1 = hand_counts()["s1"]
    drive2 = np.vstack([np.zeros(1), s1[:-1] @ W2.T])
    assert res.counters["n1"].active_neuron_updates == np.count_nonzero(drive1) == 6
    assert res.counters["n2"].active_neuron_updates == np.count_nonzero(drive2)
    act = count_activity(g, res)
    n1 = act["nodes"]["n1"]["run"]
    assert n1["active_neuron_updates"] + n1["inactive_neuron_updates"] == n1["neuron_updates"] == 12
    assert n1["inactive_neuron_updates"] == 12 - 6 > 0  # charging all as active would be wrong
    assert act["totals"]["active_counted"] is True
    assert act["totals"]["per_inference"]["neuron_spikes"] == h_spikes() == \
        act["totals"]["per_inference"]["spikes"]


def h_spikes():
    h = hand_counts()
    return h["n1"] + h["n2"]


def test_a_leaky_neuron_stays_active_while_its_state_decays():
    """One input spike at step 0; float LIF below threshold: v decays but never reaches 0, so
    the neuron is active from the step its input arrives (step 1) to the end; a neuron that no
    input reaches is inactive on every step."""
    steps = 8
    g = chain(("input", nir.Input(input_type={"input": np.array([2])})),
              ("fc", nir.Linear(weight=np.array([[0.5, 0.0], [0.0, 0.0]]))),
              ("lif", nir.LIF(tau=np.full(2, 4e-3), r=np.full(2, 4.0), v_leak=np.zeros(2),
                              v_threshold=np.full(2, 10.0))),
              ("output", nir.Output(output_type={"output": np.array([2])})))
    x = np.zeros((1, steps, 2))
    x[0, 0, 0] = 1.0
    res = simulate(g, {"input": x})
    assert res.counters["lif"].spikes == 0
    assert res.counters["lif"].neuron_updates == 2 * steps
    assert res.counters["lif"].active_neuron_updates == steps - 1


def test_missing_state_counts_every_update_active():
    g = tiny()
    res = simulate(g, {"input": X})
    for c in res.counters.values():
        c.active_neuron_updates = None  # as a target that records no neuron state
    rep = build_report(g, res, ["loihi"])
    p = rep["totals"]["per_inference"]
    assert p["active_neuron_updates"] == p["neuron_updates"] == 18
    assert p["inactive_neuron_updates"] == 0
    assert rep["totals"]["active_counted"] is False
    assert any("charged as active" in n for n in rep["hardware"]["loihi"]["energy"]["notes"])


def _expected(rep, terms):
    """Sum of count x energy over (count key, energy per op) pairs, counts from the report."""
    p = rep["totals"]["per_inference"]
    return sum(p[k] * e for k, e in terms)


@pytest.mark.parametrize("name", ["loihi", "loihi2"])
def test_loihi_energy_per_profile_equals_counts_times_published_figures(name):
    g = tiny()
    rep = build_report(g, simulate(g, {"input": X}), [name])
    p = rep["totals"]["per_inference"]
    h = hand_counts()
    # Two layers of one core each, both in tile 0: every message stays within the tile; one
    # message per spike of each node that feeds a layer (input -> fc1, n1 -> fc2).
    messages = p["input_spikes"] + h["n1"]
    davies = _expected(rep, [("synaptic_ops", 23.6e-12), ("active_neuron_updates", 81e-12),
                             ("inactive_neuron_updates", 52e-12)]) + messages * 1.7e-12
    sanafe = _expected(rep, [("synaptic_ops", 35.5e-12), ("active_neuron_updates", 72.8e-12),
                             ("inactive_neuron_updates", 51.2e-12),
                             ("neuron_spikes", 69.3e-12)]) + messages * 111e-12
    e = rep["hardware"][name]["energy"]
    assert e["nominal_profile"] == "davies2018"
    assert e["energy_per_inference_j"] == pytest.approx(davies, rel=1e-12)
    assert e["profiles"]["sanafe"]["energy_per_inference_j"] == pytest.approx(sanafe, rel=1e-12)
    assert e["energy_range_j"] == pytest.approx([min(davies, sanafe), max(davies, sanafe)])
    assert e["by_op"]["messages_within_tile"]["count"] == messages
    assert e["by_op"]["hops_east_west"]["count"] == 0
    assert sum(v["energy_j"] for v in e["nodes"].values()) == pytest.approx(davies, rel=1e-12)
    # each constant multiplies its own count, per node
    assert e["nodes"]["fc1"]["energy_j"] == pytest.approx(h["fc1"] * 23.6e-12)
    n1 = rep["nodes"]["n1"]["run"]
    assert e["nodes"]["n1"]["terms"]["active_neuron_updates"] == pytest.approx(
        n1["active_neuron_updates"] * 81e-12)
    assert e["nodes"]["n1"]["terms"]["inactive_neuron_updates"] == pytest.approx(
        n1["inactive_neuron_updates"] * 52e-12)
    prov = {k: v["provenance"] for k, v in e["by_op"].items()}
    assert set(prov.values()) == ({"pre-silicon"} if name == "loihi" else {"assumed"})


def test_other_hardware_energy_equals_counts_times_figures():
    g = tiny()
    rep = build_report(g, simulate(g, {"input": X}))
    p = rep["totals"]["per_inference"]
    hw = rep["hardware"]
    assert hw["truenorth"]["energy"]["energy_per_inference_j"] == pytest.approx(
        p["synaptic_ops"] * 26e-12)
    assert hw["spinnaker2"]["energy"]["energy_per_inference_j"] == pytest.approx(
        p["synaptic_ops"] * 450e-12 + p["neuron_updates"] * 2.19e-9)
    snn = hw["snn-cmos45"]["energy"]
    assert snn["energy_per_inference_j"] == pytest.approx(
        p["synaptic_ops"] * 0.9e-12 + p["neuron_updates"] * 4.6e-12)
    assert snn["profiles"]["sram"]["energy_per_inference_j"] == pytest.approx(
        p["synaptic_ops"] * 10.9e-12 + p["neuron_updates"] * 4.6e-12)
    ann = hw["cmos45"]["energy"]
    assert ann["energy_per_inference_j"] == pytest.approx(8 * 4.6e-12)
    assert ann["energy_range_j"] == pytest.approx([8 * 4.6e-12, 8 * 14.6e-12])


def test_ranges_are_ordered_for_every_hardware():
    g = tiny()
    rep = build_report(g, simulate(g, {"input": X}))
    for name, hw in rep["hardware"].items():
        e = hw["energy"]
        lo, hi = e["energy_range_j"]
        assert lo <= e["energy_per_inference_j"] <= hi, name
        assert [lo, hi] == [min(p["energy_per_inference_j"] for p in e["profiles"].values()),
                            max(p["energy_per_inference_j"] for p in e["profiles"].values())]
        for prof in e["profiles"].values():
            for op in prof["by_op"].values():
                assert op["source"] and op["provenance"], name
    assert rep["hardware"]["loihi"]["energy"]["energy_range_j"][0] < \
        rep["hardware"]["loihi"]["energy"]["energy_range_j"][1]  # the sources disagree


def test_messages_within_tile_and_hops_equal_hand_counts():
    """Input -> l1 (33 cores: 0..32) -> l2 (1 core: 33), tiles of 4 cores on an 8 x 4 mesh:
    core c is in tile c // 4 at (tile % 8, tile // 8)."""
    nodes = {"inp": {"role": "input", "per_inference": {"spikes": 3.0}},
             "s1": {"role": "synapse", "per_inference": {}},
             "l1": {"role": "neuron", "per_inference": {"spikes": 66.0}},
             "s2": {"role": "synapse", "per_inference": {}},
             "l2": {"role": "neuron", "per_inference": {"spikes": 5.0}}}
    resources = {"layers": {"l1": {"synapse_nodes": ["s1"], "cores": 33},
                            "l2": {"synapse_nodes": ["s2"], "cores": 1}}}
    preds = {"s1": ["inp"], "l1": ["s1"], "s2": ["l1"], "l2": ["s2"]}
    r = route_messages({"nodes": nodes}, load_hardware("loihi"), resources, preds)
    inp, l1 = r["nodes"]["inp"], r["nodes"]["l1"]
    # From core 0 to l1's 33 cores: 4 in tile 0; tiles 1..7 (x = 1..7) of 4 cores each; core 32
    # in tile 8 at (0, 1): one north-south hop.
    assert inp["messages"] == 3 * 33
    assert inp["messages_within_tile"] == 3 * 4
    assert inp["hops_east_west"] == 3 * 4 * sum(range(1, 8))
    assert inp["hops_north_south"] == 3 * 1
    # From l1's cores (spikes spread evenly) to core 33 in tile 8 at (0, 1).
    assert l1["messages"] == 66
    assert l1["messages_within_tile"] == pytest.approx(66 / 33)
    assert l1["hops_east_west"] == pytest.approx(66 / 33 * 4 * sum(range(8)))
    assert l1["hops_north_south"] == pytest.approx(66 / 33 * 32)
    assert "l2" not in r["nodes"]  # feeds no layer


def test_latency_and_unavailable_energy(tmp_path):
    g = tiny()
    bare = tmp_path / "bare.toml"  # a description with no per-op energy
    bare.write_text('name = "bare"\n[core]\nneurons = { value = 64, unit = "neurons", '
                    'source = "a datasheet, Table 1", provenance = "spec" }\n')
    rep = build_report(g, simulate(g, {"input": X}), ["truenorth", str(bare), "loihi"])
    assert rep["hardware"]["truenorth"]["latency"]["latency_per_inference_s"] == pytest.approx(6e-3)
    assert rep["hardware"]["bare"]["energy"]["energy_per_inference_j"] is None
    assert rep["hardware"]["bare"]["energy"]["available"] is False
    assert "n/a" in render_markdown(rep)
    lat = rep["hardware"]["loihi"]["latency"]
    # one core per layer: step = max(fc1 ops/step * 3.5 ns + 2 * 9.7 ns, ...) + 299 ns barrier
    ops1 = rep["nodes"]["fc1"]["per_inference"]["synaptic_ops"] / 6
    ops2 = rep["nodes"]["fc2"]["per_inference"]["synaptic_ops"] / 6
    step = max(ops1 * 3.5e-9 + 2 * 9.7e-9, ops2 * 3.5e-9 + 1 * 9.7e-9) + 299e-9
    assert lat["latency_per_inference_s"] == pytest.approx(6 * step)


def test_resource_estimate_splits_large_layers():
    n = 3000
    g = chain(("input", nir.Input(input_type={"input": np.array([300])})),
              ("fc", nir.Linear(weight=np.ones((n, 300)))),
              ("lif", nir.IF(r=np.ones(n), v_threshold=np.full(n, 1e9))),
              ("output", nir.Output(output_type={"output": np.array([n])})))
    res = simulate(g, {"input": np.zeros((1, 2, 300))})
    rep = build_report(g, res, ["loihi", "truenorth"])
    lo = rep["hardware"]["loihi"]["resources"]["layers"]["lif"]
    # 3000 neurons / 1024 -> 3 cores; 900k 8-bit synapses / 1 Mbit -> 7 cores: memory bound.
    assert lo["synapses"] == 900_000
    assert lo["cores"] == max(3, -(-900_000 * 8 // (128 * 1024 * 8)))
    tn = rep["hardware"]["truenorth"]["resources"]
    # 3000 / 256 -> 12 cores by neurons, 900k bits / 65536 -> 14 by crossbar; fan-in 300 > 256: x2
    assert tn["layers"]["lif"]["cores"] == 2 * max(12, -(-900_000 // 65536))
    assert tn["notes"] and "fan-in 300" in tn["notes"][0]


def test_mapped_resources_flag_violations():
    hw = load_hardware("loihi2")
    m = mapped_resources({"cores": [{"core": 0, "neurons": 100, "synaptic_memory_bits": 800},
                                    {"core": 1, "n_neurons": 9000}]}, hw)
    assert m["cores"] == 2 and m["neurons"] == 9100
    assert m["violations"] == ["core 1: 9000 neurons > 8192"]
    # The Loihi 2 target's map: per-core usage under each population.
    m2 = mapped_resources({"hardware": "loihi2", "cores_used": 3, "populations": {
        "lif1": {"core_usage": [{"core": 0, "neurons": 8192, "synaptic_memory_bits": 10},
                                {"core": 1, "neurons": 100, "synaptic_memory_bits": 20}]},
        "lif2": {"core_usage": [{"core": 2, "neurons": 10, "synaptic_memory_bits": 5}]}}}, hw)
    assert m2["cores"] == 3 and m2["neurons"] == 8302 and m2["synaptic_memory_bits"] == 35
    assert [c["nodes"] for c in m2["per_core"]] == ["lif1", "lif1", "lif2"]
    assert m2["violations"] == []
    g = tiny()
    rep = build_report(g, simulate(g, {"input": X}), ["loihi", "loihi2"],
                       mapping={"cores_used": 3, "hardware": "loihi2"})
    assert rep["hardware"]["loihi2"]["resources_mapped"]["cores"] == 3
    assert "resources_mapped" not in rep["hardware"]["loihi"]


def test_dense_connections_of_padded_conv():
    w = np.arange(1, 2 * 1 * 3 * 3 + 1, dtype=float).reshape(2, 1, 3, 3)
    w[0, 0, 1, 1] = 0.0
    conv = nir.Conv2d(input_shape=(4, 4), weight=w, stride=1, padding=1, dilation=1, groups=1,
                      bias=np.zeros(2))
    # Brute force: each output pixel connects to the in-bounds kernel taps, for each channel.
    total = 0
    for i in range(4):
        for j in range(4):
            taps = sum(1 for a in (-1, 0, 1) for b in (-1, 0, 1)
                       if 0 <= i + a < 4 and 0 <= j + b < 4)
            total += 2 * taps
    assert dense_connections(conv, (1, 4, 4)) == total == 2 * 100


def test_json_report_is_stable_and_rendered():
    g = tiny()
    rep = build_report(g, simulate(g, {"input": X}), source="tiny")
    data = json.loads(to_json(rep))
    assert list(data)[:4] == ["schema", "source", "run", "definitions"]
    assert data["schema"] == "neurocompile.energy/2"
    assert list(data["nodes"]) == ["input", "fc1", "n1", "fc2", "n2", "output"]
    assert set(data["hardware"]) == {"loihi", "loihi2", "truenorth", "spinnaker2", "snn-cmos45",
                                     "cmos45"}
    assert data["hardware"]["loihi2"]["label"] == "loihi2 (Loihi 1 figures)"
    md = render_markdown(rep)
    assert "| loihi |" in md and "Davies et al. 2018" in md and "Horowitz" in md
    assert "| loihi2 (Loihi 1 figures) |" in md and "[assumed]" in md and "[pre-silicon]" in md
    lo, hi = data["hardware"]["loihi"]["energy"]["energy_range_j"]
    assert f"{fmt_energy(lo)} - {fmt_energy(hi)}" in md
