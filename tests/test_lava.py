"""Lava target against the reference simulator, spike for spike (needs the Lava environment).

Weights are multiples of 1/64 and every neuron's input gain is exactly 1, so all float sums are
exact and the float comparison is strict equality. Each test batches its samples into one
worker call (Lava costs ~1-2 s to start).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
from test_lava_helpers import (
    convnet,
    cuba_lif,
    dyadic,
    ensure_lava_env,
    feedforward,
    graph,
    recurrent,
    spikes,
)

from neurocompile.targets import get_target
from neurocompile.targets.lava import lava_importable
from neurocompile.targets.reference import simulate

pytestmark = [pytest.mark.lava, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _lava_env():
    if ensure_lava_env() is None:
        pytest.skip("no Lava interpreter: set NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")


def _compare(g: nir.NIRGraph, x: dict[str, np.ndarray], **options):
    ref = simulate(g, x)
    target = get_target("lava")
    res = target.run(target.compile(g, options), x)
    assert set(res.outputs) == set(ref.outputs)
    for name in ref.outputs:
        assert res.outputs[name].shape == ref.outputs[name].shape
        np.testing.assert_array_equal(res.outputs[name], ref.outputs[name], err_msg=name)
    assert res.counters_dict() == ref.counters_dict()
    return ref, res


def test_feedforward_float_matches_reference_every_step():
    rng = np.random.default_rng(1)
    g = feedforward(rng)
    x = {"input": spikes(rng, 3, 40, (12,))}
    ref, res = _compare(g, x)
    assert ref.outputs["output"].sum() > 5  # the comparison is not between two silent nets
    assert np.abs(ref.outputs["output_v"]).sum() > 0


def test_recurrent_float_matches_reference_every_step():
    rng = np.random.default_rng(2)
    g = recurrent(rng)
    x = {"input": spikes(rng, 3, 40, (10,))}
    ref, _ = _compare(g, x)
    assert ref.counters["lif1"].spikes > 20 and ref.outputs["output"].sum() > 5


def test_conv_and_pruned_sparse_float_match_reference():
    rng = np.random.default_rng(3)
    g = convnet(rng)
    x = {"input": spikes(rng, 2, 30, (1, 6, 6), rate=0.4)}
    ref, _ = _compare(g, x, sparse="sparse")  # unrolled conv as Lava Sparse processes
    assert ref.outputs["output"].sum() > 3


# -- fixed point ------------------------------------------------------------------------------


def _loihi_quantized(rng, n_in=8, n_h=6, n_out=3):
    """A hand-quantized graph (Loihi scheme metadata): integer mantissas, odd values included."""
    w1 = rng.integers(-128, 128, (n_h, n_in)).astype(np.float64)
    w1[0, :] = np.arange(n_in) * 2 + 1  # odd mantissas: Lava must not truncate them
    w2 = rng.integers(-128, 128, (n_out, n_h)).astype(np.float64)
    lif = nir.LIF(tau=np.full(n_h, 2e-3), r=np.full(n_h, 2.0), v_leak=np.zeros(n_h),
                  v_threshold=np.full(n_h, 1.0),
                  metadata={"loihi.du": 4095, "loihi.dv": 1024, "loihi.vth": 300,
                            "loihi.bias_mant": rng.integers(-50, 200, n_h),
                            "loihi.bias_exp": np.array([0, 1, 2, 0, 3, 1][:n_h])})
    li = nir.CubaLI(tau_syn=np.full(n_out, 2e-3), tau_mem=np.full(n_out, 4e-3),
                    r=np.full(n_out, 4.0), v_leak=np.zeros(n_out), w_in=np.full(n_out, 2.0),
                    metadata={"loihi.du": 2048, "loihi.dv": 512, "loihi.bias_mant": 0,
                              "loihi.bias_exp": 0})
    return graph(
        {"input": nir.Input(np.array([n_in])),
         "fc1": nir.Linear(w1, metadata={"loihi.weight_exp": 1, "loihi.num_weight_bits": 8}),
         "lif1": lif,
         "fc2": nir.Affine(w2, np.zeros(n_out), metadata={"loihi.weight_exp": -2}),
         "readout": li,
         "out_s": nir.Output(np.array([n_h])),
         "out_v": nir.Output(np.array([n_out]))},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "readout"),
         ("lif1", "out_s"), ("readout", "out_v")], quantization="loihi")


def _shift(a, e):
    return np.left_shift(a, e) if e > 0 else np.right_shift(a, -e)


def _loihi_step(u, v, a_in, du, dv, bias, vth):
    """One step of Loihi's LIF, written from the hardware description (24-bit state)."""
    m = 2**23
    du_ = np.int64(u) * (4096 - (du + 1))
    u = (np.sign(du_) * (np.abs(du_) >> 12)) + (a_in.astype(np.int64) << 6)
    u = np.where(u > m, u - 2 * m, u)
    u = np.where(u <= -m, u + 2 * m, u)
    dv_ = np.int64(v) * (4096 - dv)
    v = np.clip(np.sign(dv_) * (np.abs(dv_) >> 12) + u + bias, -m + 1, m - 1)
    s = v > (vth << 6) if vth is not None else np.zeros(v.shape, bool)
    return u, np.where(s, 0, v), s


def _hand_fixed(g, x):
    """Hand computation of the quantized graph: Dense delivers one step late, shifted sums."""
    w1, w2 = g.nodes["fc1"].weight.astype(np.int64), g.nodes["fc2"].weight.astype(np.int64)
    m1 = g.nodes["lif1"].metadata
    bias1 = np.asarray(m1["loihi.bias_mant"], np.int64) << np.asarray(m1["loihi.bias_exp"])
    batch, steps, _ = x.shape
    out_s = np.zeros((batch, steps, w1.shape[0]))
    out_v = np.zeros((batch, steps, w2.shape[0]))
    for b in range(batch):
        u1 = v1 = np.zeros(w1.shape[0], np.int64)
        u2 = v2 = np.zeros(w2.shape[0], np.int64)
        a1 = np.zeros(w1.shape[0], np.int64)
        a2 = np.zeros(w2.shape[0], np.int64)
        for t in range(steps):
            u1, v1, s1 = _loihi_step(u1, v1, a1, 4095, 1024, bias1, 300)
            u2, v2, _ = _loihi_step(u2, v2, a2, 2048, 512, 0, None)
            out_s[b, t], out_v[b, t] = s1, v2
            a1 = _shift(w1 @ x[b, t].astype(np.int64), 1)
            a2 = _shift(w2 @ s1.astype(np.int64), -2)
    return out_s, out_v


def test_fixed_point_matches_hand_computation_bit_for_bit():
    rng = np.random.default_rng(4)
    g = _loihi_quantized(rng)
    x = spikes(rng, 2, 30, (8,), rate=0.4)
    target = get_target("lava")
    res = target.run(target.compile(g, {"fixed_point": True}), {"input": x})
    exp_s, exp_v = _hand_fixed(g, x)
    assert exp_s.sum() > 5 and np.abs(exp_v).sum() > 0
    np.testing.assert_array_equal(res.outputs["out_s"], exp_s)
    np.testing.assert_array_equal(res.outputs["out_v"], exp_v)


def test_fixed_point_hand_graph_matches_reference_fixed_mode():
    rng = np.random.default_rng(5)
    g = _loihi_quantized(rng)
    x = {"input": spikes(rng, 2, 30, (8,), rate=0.4)}
    ref = simulate(g, x, fixed_point=True)
    target = get_target("lava")
    res = target.run(target.compile(g, {"fixed_point": True}), x)
    for name in ref.outputs:
        np.testing.assert_array_equal(res.outputs[name], ref.outputs[name], err_msg=name)
    assert res.counters_dict() == ref.counters_dict()


def test_quantized_recurrent_graph_bit_identical_to_reference_fixed_mode():
    from neurocompile.passes.quantize import quantize_loihi

    rng = np.random.default_rng(7)
    g = graph(
        {"input": nir.Input(np.array([10])),
         "fc1": nir.Affine(dyadic(rng, (12, 10)), np.full(12, 1 / 64)),
         "lif1": nir.LIF(tau=np.full(12, 4e-3), r=np.full(12, 4.0), v_leak=np.zeros(12),
                         v_threshold=np.full(12, 0.5)),
         "rec1": nir.Linear(dyadic(rng, (12, 12), lo=-32, hi=32)),
         "fc2": nir.Linear(dyadic(rng, (4, 12))),
         "lif2": cuba_lif(4, vth=0.25),
         "output": nir.Output(np.array([4]))},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec1"), ("rec1", "lif1"), ("lif1", "fc2"),
         ("fc2", "lif2"), ("lif2", "output")])
    q, _ = quantize_loihi(g)
    x = {"input": spikes(rng, 3, 40, (10,), rate=0.4)}
    ref = simulate(q, x, fixed_point=True)
    target = get_target("lava")
    res = target.run(target.compile(q, {"fixed_point": True}), x)
    assert ref.counters["lif1"].spikes > 20 and ref.outputs["output"].sum() > 3
    np.testing.assert_array_equal(res.outputs["output"], ref.outputs["output"])
    assert res.counters_dict() == ref.counters_dict()


# -- in process (only inside the Lava environment itself) -------------------------------------


@pytest.mark.skipif(not lava_importable(), reason="lava-nc not importable in this interpreter")
def test_in_process_run_equals_reference():
    rng = np.random.default_rng(6)
    g = recurrent(rng)
    x = {"input": spikes(rng, 2, 25, (10,))}
    _compare(g, x, in_process=True)
