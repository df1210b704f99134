"""Quantization passes: int8 and Loihi fixed point; errors; the quantize command."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest

from neurocompile.cli.main import main
from neurocompile.errors import UnsupportedError
from neurocompile.ir.io import load_graph, save_graph
from neurocompile.passes import get_pass
from neurocompile.passes.quantize import (
    loihi_effective_weights,
    quantize_int8,
    quantize_loihi,
)
from neurocompile.semantics import discretise
from neurocompile.targets.reference import simulate


def net(seed: int = 0, cuba: bool = False, rec: bool = False, bias: float = 0.0) -> nir.NIRGraph:
    """input(12) -> fc1 -> lif1(10) [-> rec -> lif1] -> fc2 -> lif2(3) -> output."""
    rng = np.random.default_rng(seed)
    if cuba:
        lif1 = nir.CubaLIF(tau_syn=np.full(10, 5e-3), tau_mem=np.full(10, 1e-2),
                           r=np.full(10, 10.0), v_leak=np.zeros(10), v_threshold=np.ones(10),
                           w_in=np.ones(10))
    else:
        lif1 = nir.LIF(tau=np.full(10, 1e-2), r=np.full(10, 10.0), v_leak=np.zeros(10),
                       v_threshold=np.ones(10))
    nodes = {"input": nir.Input(input_type={"input": np.array([12])}),
             "fc1": nir.Affine(weight=rng.normal(0, 0.5, (10, 12)), bias=np.full(10, bias)),
             "lif1": lif1,
             "fc2": nir.Linear(weight=rng.normal(0, 0.5, (3, 10))),
             "lif2": nir.LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0), v_leak=np.zeros(3),
                             v_threshold=np.ones(3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    if rec:
        nodes["rec"] = nir.Linear(weight=rng.normal(0, 0.2, (10, 10)))
        edges += [("lif1", "rec"), ("rec", "lif1")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)


def spikes(seed: int = 1, batch: int = 6, steps: int = 60, n: int = 12) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, n)) < 0.25).astype(np.float64)


def test_int8_error_within_half_step_and_input_untouched():
    g = net()
    before = copy.deepcopy(g.nodes["fc1"].weight)
    q, report = quantize_int8(g)
    np.testing.assert_array_equal(g.nodes["fc1"].weight, before)
    for name in ("fc1", "fc2"):
        w, wq = np.asarray(g.nodes[name].weight), np.asarray(q.nodes[name].weight)
        scale = q.nodes[name].metadata["int8.scale"]
        assert scale == pytest.approx(np.abs(w).max() / 127)
        assert np.all(np.abs(w - wq) <= scale / 2 + 1e-12)
        levels = np.rint(wq / scale)
        np.testing.assert_allclose(wq, levels * scale)
        assert np.abs(levels).max() == 127
    assert q.metadata["quantization"] == "int8"
    assert report.row("fc1").extra["max_abs_error"] <= report.row("fc1").extra["scale"] / 2


@pytest.mark.parametrize("cuba,rec", [(False, False), (True, True)])
def test_loihi_weights_within_half_step_and_integers_in_range(cuba, rec):
    g = net(cuba=cuba, rec=rec)
    q, report = quantize_loihi(g)
    assert q.metadata["quantization"] == "loihi"
    dt = 1e-3
    for syn, post in [("fc1", "lif1"), ("fc2", "lif2")] + ([("rec", "lif1")] if rec else []):
        m = np.asarray(q.nodes[syn].weight)
        assert np.array_equal(m, np.rint(m)) and m.min() >= -128 and m.max() <= 127
        e = q.nodes[syn].metadata["loihi.weight_exp"]
        S = q.nodes[post].metadata["loihi.state_scale"]
        gain = discretise(post, g.nodes[post], dt).gain
        effective = gain[:, None] * np.asarray(g.nodes[syn].weight)
        step = 2.0 ** (6 + e) / S
        assert np.all(np.abs(loihi_effective_weights(q, syn) - effective) <= step / 2 + 1e-12)
        # the float fields hold the dequantized model: gain' * m is the effective weight
        gain_q = discretise(post, q.nodes[post], dt).gain
        np.testing.assert_allclose(gain_q[:, None] * m, loihi_effective_weights(q, syn))
    # lif2: tau 20 ms -> dv = rint(4096 * 0.05) = 205, du = 4095 (LIF has no synaptic filter)
    meta = q.nodes["lif2"].metadata
    assert (meta["loihi.du"], meta["loihi.dv"]) == (4095, 205)
    assert meta["loihi.vth"] == round(1.0 * meta["loihi.state_scale"] / 64)
    if cuba:  # tau_syn 5 ms -> du = rint(4096 * 0.2) - 1 = 818
        assert q.nodes["lif1"].metadata["loihi.du"] == 818
    # the largest weight of a population maps to the full mantissa range
    assert report.row("fc1").extra["max_mantissa"] in (127, 128)


def test_loihi_graph_round_trips_through_a_file(tmp_path):
    q, _ = quantize_loihi(net(rec=True))
    save_graph(q, tmp_path / "q.nir")
    back = load_graph(tmp_path / "q.nir")
    x = spikes()
    a = simulate(q, x, fixed_point=True).outputs["output"]
    b = simulate(back, x, fixed_point=True).outputs["output"]
    np.testing.assert_array_equal(a, b)
    assert a.sum() > 0


def test_loihi_fixed_point_tracks_float_model():
    g = net(cuba=True)
    q, _ = quantize_loihi(g)
    x = spikes(batch=8, steps=80)
    ref = simulate(g, x).outputs["output"]
    fixed = simulate(q, x, fixed_point=True).outputs["output"]
    assert ref.sum() > 0
    assert np.mean(ref == fixed) > 0.95


def test_affine_bias_folds_into_lif_and_becomes_the_current_of_cuba():
    g = net(bias=0.05)
    q, _ = quantize_loihi(g)
    assert np.all(np.asarray(q.nodes["fc1"].bias) == 0)
    meta = q.nodes["lif1"].metadata
    eff = np.asarray(meta["loihi.bias_mant"]) * 2.0 ** np.asarray(meta["loihi.bias_exp"])
    gain = discretise("lif1", g.nodes["lif1"], 1e-3).gain
    np.testing.assert_allclose(eff, gain * 0.05 * meta["loihi.state_scale"], atol=0.5 * eff.max()
                               / 4095 + 0.5)
    assert "loihi.current" not in meta  # du = 1: the neuron bias takes it exactly
    # du < 1: a constant current into u (tests/test_quantize_cubalif_bias.py), never folded
    # into the neuron bias, with or without clip
    for clip in (False, True):
        q, _ = quantize_loihi(net(cuba=True, bias=0.05), clip=clip)
        meta = q.nodes["lif1"].metadata
        assert np.all(np.asarray(meta["loihi.bias_mant"]) == 0)
        gain = discretise("lif1", net(cuba=True).nodes["lif1"], 1e-3).gain
        np.testing.assert_array_equal(meta["loihi.current"],
                                      np.rint(gain * 0.05 * meta["loihi.state_scale"] / 64))


def test_unrepresentable_values_raise_naming_node_parameter_and_range():
    g = net(cuba=True)
    g.nodes["lif1"] = nir.CubaLIF(tau_syn=np.full(10, 5e-4), tau_mem=np.full(10, 1e-2),
                                  r=np.full(10, 10.0), v_leak=np.zeros(10),
                                  v_threshold=np.ones(10), w_in=np.ones(10))
    # tau_syn < dt gives du = 2 (decay factor -1): refused by the semantics before any
    # quantization, even with clip=True, naming the node, the ratio and the fix
    for clip in (False, True):
        with pytest.raises(UnsupportedError, match=r"'lif1': dt/tau_syn = 2 > 1 at dt=0.001"):
            quantize_loihi(g, clip=clip)
    high = net()
    high.nodes["lif2"] = nir.LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0), v_leak=np.zeros(3),
                                 v_threshold=np.full(3, 1000.0))
    with pytest.raises(UnsupportedError, match=r"'lif2'.*vth.*\[0, 131071\].*max 256000"):
        quantize_loihi(high, state_scale={"lif2": 2.0 ** 14})
    with pytest.raises(UnsupportedError, match=r"'lif2'.*weight_exp.*\[-8, 7\]"):
        quantize_loihi(net(), state_scale={"lif2": 2.0 ** 24})
    biased = net()
    biased.nodes["lif2"] = nir.LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0),
                                   v_leak=np.full(3, 1000.0), v_threshold=np.ones(3))
    with pytest.raises(UnsupportedError, match=r"'lif2'.*bias_mant.*\[-4096, 4095\]"):
        quantize_loihi(biased, state_scale={"lif2": 2.0 ** 14})
    uneven = net()
    uneven.nodes["lif2"] = nir.LIF(tau=np.array([1e-2, 2e-2, 2e-2]), r=np.full(3, 20.0),
                                   v_leak=np.zeros(3), v_threshold=np.ones(3))
    with pytest.raises(UnsupportedError, match=r"'lif2'.*dv must be one value"):
        quantize_loihi(uneven)
    scaled = net()
    scaled.nodes["pre"] = nir.Scale(scale=np.ones(12))
    scaled.edges = [("input", "pre"), ("pre", "fc1")] + [e for e in scaled.edges if e[0] != "input"]
    with pytest.raises(UnsupportedError, match=r"'pre': Scale is not supported by the Loihi"):
        quantize_loihi(scaled)


def test_bad_options_raise():
    with pytest.raises(UnsupportedError, match="unknown quantize method 'fp4'"):
        get_pass("fp4", "quantize")
    with pytest.raises(UnsupportedError, match=r"bits .*\[2, 8\]"):
        quantize_loihi(net(), bits=9)
    with pytest.raises(UnsupportedError, match=r"bits .*\[2, 8\]"):
        quantize_int8(net(), bits=1)


def test_fewer_weight_bits_narrow_the_mantissas():
    q, _ = quantize_loihi(net(), bits=4)
    m = np.asarray(q.nodes["fc1"].weight)
    assert m.min() >= -8 and m.max() <= 7 and np.abs(m).max() == 7
    assert q.nodes["fc1"].metadata["loihi.num_weight_bits"] == 4
    assert simulate(q, spikes(), fixed_point=True).outputs["output"].shape == (6, 60, 3)


def test_quantize_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    save_graph(net(), tmp_path / "g.nir")
    main(["quantize", str(tmp_path / "g.nir"), "--scheme", "loihi", "-o", str(tmp_path / "q.nir"),
          "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "fc1" in out and "weight_exp" in out
    assert load_graph(tmp_path / "q.nir").metadata["quantization"] == "loihi"
    assert (tmp_path / "r.json").exists()
    with pytest.raises(SystemExit) as exc:
        main(["quantize", str(tmp_path / "g.nir"), "--scheme", "fp4", "-o", str(tmp_path / "x.nir")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown quantize method 'fp4'; known: int8, loihi") and "\n" not in err
    assert not (tmp_path / "x.nir").exists()
