"""Lowering to Lava processes and the artifact directory (no Lava needed)."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from test_lava_helpers import convnet, cuba_lif, dyadic, feedforward, graph, lif

from neurocompile import semantics
from neurocompile.cli.main import main
from neurocompile.errors import NIRFileError, UnsupportedError
from neurocompile.ir.io import save_graph
from neurocompile.semantics import stateless
from neurocompile.targets import available_targets, get_target
from neurocompile.targets.artifact import read_artifact, write_artifact
from neurocompile.targets.lava import lower, replay
from neurocompile.targets.reference import simulate


def test_targets_registered():
    assert {"lava", "loihi2"} <= set(available_targets())


def test_feedforward_folds_scale_gain_and_affine_bias():
    rng = np.random.default_rng(0)
    g = feedforward(rng)
    plan = lower(g)
    syn = {(s.source, s.target): s for s in plan.synapses}
    assert set(syn) == {("input", "lif1"), ("lif1", "lif2"), ("lif1", "readout")}
    np.testing.assert_array_equal(syn["input", "lif1"].weight, g.nodes["fc1"].weight)
    # Scale 0.5 folded into fc2
    np.testing.assert_array_equal(syn["lif1", "lif2"].weight, 0.5 * g.nodes["fc2"].weight)
    assert syn["lif1", "lif2"].nodes == ("fc2", "scale")
    # LIF (du = 1): bias = dv * v_leak + gain * affine bias
    np.testing.assert_array_equal(plan.populations["lif1"].bias,
                                  0.5 * (1 / 32) + g.nodes["fc1"].bias)
    p = plan.populations["lif2"]
    assert (p.du, p.dv, p.vth) == (0.25, 0.5, 0.25)
    assert plan.populations["readout"].vth is None


def test_gain_other_than_one_is_folded_into_weights():
    w = np.array([[0.5, -0.25]])
    node = nir.LIF(tau=np.array([4e-3]), r=np.array([3.0]), v_leak=np.zeros(1),
                   v_threshold=np.ones(1))  # dv = 0.25, gain = 0.75
    g = graph({"i": nir.Input(np.array([2])), "w": nir.Linear(w), "n": node,
               "o": nir.Output(np.array([1]))}, [("i", "w"), ("w", "n"), ("n", "o")])
    np.testing.assert_array_equal(lower(g).synapses[0].weight, 0.75 * w)


def test_affine_bias_into_cuba_lif_becomes_a_constant_current():
    """With du < 1 the bias persists in u: it is sent into u every step, not added to v."""
    g = graph({"i": nir.Input(np.array([2])), "fc": nir.Affine(np.ones((3, 2)),
                                                               np.array([1.0, 2.0, 0.5])),
               "n": cuba_lif(3), "o": nir.Output(np.array([3]))},
              [("i", "fc"), ("fc", "n"), ("n", "o")])
    pop = lower(g).populations["n"]
    gain = semantics.discretise("n", g.nodes["n"], 1e-3).gain
    np.testing.assert_array_equal(pop.current, gain * np.array([1.0, 2.0, 0.5]))
    np.testing.assert_array_equal(pop.bias, 0.0)


def test_non_uniform_threshold_and_delay_are_refused():
    node = lif(3)
    node.v_threshold = np.array([1.0, 1.0, 2.0])
    g = graph({"i": nir.Input(np.array([2])), "w": nir.Linear(np.ones((3, 2))), "n": node,
               "o": nir.Output(np.array([3]))}, [("i", "w"), ("w", "n"), ("n", "o")])
    with pytest.raises(UnsupportedError, match=r"node 'n'.*one v_threshold.*\[1.0, 2.0\]"):
        lower(g)
    g = graph({"i": nir.Input(np.array([2])), "d": nir.Delay(np.full(2, 2e-3)),
               "w": nir.Linear(np.ones((3, 2))), "n": lif(3), "o": nir.Output(np.array([3]))},
              [("i", "d"), ("d", "w"), ("w", "n"), ("n", "o")])
    with pytest.raises(UnsupportedError, match="node 'd': Delay"):
        lower(g)


def test_li_feeding_a_neuron_is_refused():
    li = nir.LI(tau=np.full(2, 2e-3), r=np.full(2, 2.0), v_leak=np.zeros(2))
    g = graph({"i": nir.Input(np.array([2])), "w": nir.Linear(np.eye(2)), "li": li,
               "w2": nir.Linear(np.eye(2)), "n": lif(2), "o": nir.Output(np.array([2]))},
              [("i", "w"), ("w", "li"), ("li", "w2"), ("w2", "n"), ("n", "o")])
    with pytest.raises(UnsupportedError, match="node 'n'.*LI 'li'.*spikes only"):
        lower(g)


def test_unconnected_networks_are_refused():
    g = graph({"a": nir.Input(np.array([2])), "b": nir.Input(np.array([2])),
               "wa": nir.Linear(np.eye(2)), "wb": nir.Linear(np.eye(2)), "na": lif(2),
               "nb": lif(2), "oa": nir.Output(np.array([2])), "ob": nir.Output(np.array([2]))},
              [("a", "wa"), ("wa", "na"), ("na", "oa"), ("b", "wb"), ("wb", "nb"), ("nb", "ob")])
    with pytest.raises(UnsupportedError, match=r"2 unconnected networks \(\[\['na'\], \['nb'\]\]"):
        lower(g)


def test_pruned_matrix_becomes_sparse_and_keeps_its_zeros():
    rng = np.random.default_rng(1)
    w = dyadic(rng, (20, 30), lo=1, density=0.2)
    g = graph({"i": nir.Input(np.array([30])), "w": nir.Linear(w), "n": lif(20),
               "o": nir.Output(np.array([20]))}, [("i", "w"), ("w", "n"), ("n", "o")])
    syn = lower(g).synapses[0]
    assert syn.process == "Sparse"
    np.testing.assert_array_equal(syn.weight == 0, w == 0)
    g.nodes["w"] = nir.Linear(dyadic(rng, (20, 30), lo=1))
    assert lower(g).synapses[0].process == "Dense"


def test_conv_is_unrolled_exactly():
    rng = np.random.default_rng(2)
    g = convnet(rng)
    plan = lower(g)
    syn = next(s for s in plan.synapses if s.target == "lif1")
    x = (rng.random((5, 1, 6, 6)) < 0.5).astype(float)
    conv = g.nodes["conv"]
    expected = stateless.conv(conv, x, bias=False).reshape(5, -1)
    np.testing.assert_array_equal(x.reshape(5, -1) @ syn.weight.T, expected)
    np.testing.assert_array_equal(plan.populations["lif1"].bias,
                                  np.repeat(conv.bias, 16))
    pooled = next(s for s in plan.synapses if s.target == "lif2")
    assert pooled.nodes == ("fc", "flat", "pool")


def test_replay_counts_like_the_reference():
    rng = np.random.default_rng(3)
    g = feedforward(rng, density=0.5)
    x = (rng.random((2, 15, 12)) < 0.4).astype(float)
    ref = simulate(g, {"input": x}, probe=("readout",))
    plan = lower(g)
    src = {"input": np.swapaxes(x, 0, 1)}
    for name in ("lif1", "lif2"):  # recorded spikes of the neurons (as Lava's sinks give them)
        src[name] = np.swapaxes(simulate(graph(
            dict(g.nodes, probe_out=nir.Output(np.array([plan.populations[name].size]))),
            list(g.edges) + [(name, "probe_out")]), {"input": x}).outputs["probe_out"], 0, 1)
    src["readout"] = np.swapaxes(ref.probes["readout.v"], 0, 1)
    values, counters = replay(plan, src, 15, 2)
    for name in ref.outputs:
        np.testing.assert_array_equal(np.swapaxes(values[name], 0, 1), ref.outputs[name])
    assert {n: c for n, c in counters.items()} == ref.counters


def test_fixed_point_needs_a_loihi_quantized_graph():
    with pytest.raises(UnsupportedError, match="quantized with the Loihi scheme"):
        lower(feedforward(np.random.default_rng(4)), fixed_point=True)


# -- artifacts --------------------------------------------------------------------------------


def test_artifact_round_trip_hashes_and_atomic_replace(tmp_path):
    rng = np.random.default_rng(5)
    art = get_target("loihi2").compile(feedforward(rng, density=0.3), {"chips": 1})
    out = write_artifact(art, tmp_path / "a")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "loihi2" and manifest["resources"]["cores_used"] == 3
    assert len(manifest["files"]["graph.nir"]["sha256"]) == 64
    back = read_artifact(out)
    assert back.target == "loihi2" and set(back.graph.nodes) == set(art.graph.nodes)
    np.testing.assert_array_equal(back.graph.nodes["fc1"].weight, art.graph.nodes["fc1"].weight)
    # replacing an existing artifact leaves exactly the new one, no temporaries beside it
    write_artifact(get_target("lava").compile(feedforward(rng)), out)
    assert read_artifact(out).target == "lava"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    # a changed graph file is detected
    data = bytearray((out / "graph.nir").read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    (out / "graph.nir").write_bytes(bytes(data))
    with pytest.raises(NIRFileError, match="sha256 .* does not match"):
        read_artifact(out)
    with open(out / "graph.nir", "ab") as f:  # a size change is caught before hashing
        f.write(b"\0")
    with pytest.raises(NIRFileError, match=r"[0-9,]+ bytes, the manifest says [0-9,]+"):
        read_artifact(out)


def test_artifact_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep")
    art = get_target("lava").compile(feedforward(np.random.default_rng(6)))
    with pytest.raises(NIRFileError, match="refusing to replace"):
        write_artifact(art, tmp_path / "d")
    assert (tmp_path / "d" / "precious.txt").read_text() == "keep"


def test_cli_compile_writes_artifact(tmp_path, capsys):
    path = save_graph(feedforward(np.random.default_rng(7), density=0.3), tmp_path / "ff.nir")
    main(["compile", str(path), "--target", "loihi2", "-o", str(tmp_path / "art"), "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["target"] == "loihi2"
    assert manifest["resources"]["totals"]["memory_bits_saved_by_pruning"] > 0
    assert read_artifact(tmp_path / "art").manifest["options"]["chips"] == 1
