"""Fixed-point (Loihi) mode of the reference simulator against hand-computed integer traces."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.semantics import loihi
from neurocompile.targets.reference import simulate


def _lif(n: int, *, du: int, dv: int, vth: int, bias_mant=0, bias_exp=0) -> nir.LIF:
    """A LIF node carrying Loihi metadata (its float fields are placeholders)."""
    meta = {"loihi.du": du, "loihi.dv": dv, "loihi.vth": vth,
            "loihi.bias_mant": np.full(n, bias_mant, np.int64),
            "loihi.bias_exp": np.full(n, bias_exp, np.int64), "loihi.state_scale": 1.0}
    return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), metadata=meta)


def _syn(weight, exp: int) -> nir.Linear:
    return nir.Linear(weight=np.asarray(weight, np.float64),
                      metadata={"loihi.weight_exp": exp, "loihi.num_weight_bits": 8})


def _graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges,
                        metadata={"dt": 1e-3, "quantization": "loihi"}, type_check=False)


def _single(weight: int, exp: int, **lif) -> nir.NIRGraph:
    return _graph({"input": nir.Input(input_type={"input": np.array([1])}),
                   "fc": _syn([[weight]], exp), "lif": _lif(1, **lif),
                   "output": nir.Output(output_type={"output": np.array([1])})},
                  [("input", "fc"), ("fc", "lif"), ("lif", "output")])


def _run(graph, spikes, probe=("lif",)):
    x = np.asarray(spikes, np.float64)[None, :, None]
    res = simulate(graph, x, fixed_point=True, probe=probe)
    return res, {k: v[0, :, 0] for k, v in res.probes.items()}


def test_single_neuron_leak_bias_threshold_and_reset():
    # m=100, e=1 -> a = 200, act = 200 << 6 = 12800; u keeps 3072/4096, v keeps 2048/4096;
    # bias 10 << 2 = 40; threshold 500 << 6 = 32000. Input spikes at t = 0, 1, 2 reach the
    # neuron one step later (t = 1, 2, 3).
    g = _single(100, 1, du=1023, dv=2048, vth=500, bias_mant=10, bias_exp=2)
    res, tr = _run(g, [1, 1, 1, 0, 0, 0, 0, 0])
    u = [0, 12800, 9600 + 12800, 16800 + 12800, 22200, 16650, 12487, 9365]
    # v is recorded after the reset (as in float mode and Lava): at t=3 v = 14435 + 29600 + 40
    # = 44075 > 32000 spikes, so the probe reads 0 and t=4 starts from 0.
    v = [40, 20 + 12800 + 40, 6430 + 22400 + 40, 0,
         0 + 22200 + 40, 11120 + 16650 + 40, 13905 + 12487 + 40, 13216 + 9365 + 40]
    assert tr["lif.u"].tolist() == u
    assert tr["lif.v"].tolist() == v  # v after reset
    assert res.outputs["output"][0, :, 0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]


def test_negative_decay_truncates_toward_zero():
    # du=0 and dv=1 keep 4095/4096; a negative current decays toward zero (not floor).
    g = _single(-101, 0, du=0, dv=1, vth=100000)
    _, tr = _run(g, [1, 0, 0, 0])
    # t=1: u = -101 << 6 = -6464; t=2: -(6464*4095 >> 12) = -6462 (floor would give -6463)
    assert tr["lif.u"].tolist() == [0, -6464, -6462, -6460]
    # v: -6464; -(6464*4095 >> 12) - 6462 = -12924; -(12924*4095 >> 12) - 6460 = -19380
    assert tr["lif.v"].tolist() == [0, -6464, -12924, -19380]


def test_dense_negative_weight_exp_is_arithmetic_shift_of_the_sum():
    out = loihi.accumulate(np.array([[3, 3], [-3, 0]]), -1, np.array([[1, 1], [1, 0]]))
    # row 0: (3+3)>>1 = 3 and 3>>1 = 1; row 1: -3>>1 = -2 (floor), twice
    assert out.tolist() == [[3.0, -2.0], [1.0, -2.0]]


def test_u_wraps_once_at_24_bits_and_v_clips():
    top = 2 ** 23
    assert loihi.wrap_u(np.array([top, top + 1, -top, -top + 1, top + 5])).tolist() == \
        [top, -top + 1, top, -top + 1, -top + 5]
    # 8 inputs at the largest weight: u = 8 * (127 << 7) << 6 = 8323072 < 2^23 (no wrap),
    # v integrates it twice and clips at 2^23 - 1. A non-spiking LI shows the clipped v
    # (its output and probe); a LIF with the largest threshold (131071 << 6 = 8388544 <
    # 2^23 - 1) spikes on it at t=2 and its probe reads v after the reset, 0.
    li_meta = {"loihi.du": 4095, "loihi.dv": 0, "loihi.bias_mant": np.zeros(1, np.int64),
               "loihi.bias_exp": np.zeros(1, np.int64), "loihi.state_scale": 1.0}
    for kind in ("li", "lif"):
        neuron = _lif(1, du=4095, dv=0, vth=131071) if kind == "lif" else \
            nir.LI(tau=np.full(1, 2e-3), r=np.full(1, 2.0), v_leak=np.zeros(1), metadata=li_meta)
        g = _graph({"input": nir.Input(input_type={"input": np.array([8])}),
                    "fc": _syn(np.full((1, 8), 127), 7), "lif": neuron,
                    "output": nir.Output(output_type={"output": np.array([1])})},
                   [("input", "fc"), ("fc", "lif"), ("lif", "output")])
        res = simulate(g, np.ones((1, 3, 8)), fixed_point=True, probe=("lif",))
        assert res.probes["lif.u"][0, :, 0].tolist() == [0, 8323072, 8323072]
        out = res.outputs["output"][0, :, 0].tolist()
        if kind == "li":
            assert res.probes["lif.v"][0, :, 0].tolist() == [0, 8323072, top - 1]
            assert out == [0, 8323072, top - 1]
        else:
            assert res.probes["lif.v"][0, :, 0].tolist() == [0, 8323072, 0]
            assert out == [0, 0, 1]
    # 16 inputs: the current passes 2^23 and wraps negative once.
    big = _graph({"input": nir.Input(input_type={"input": np.array([16])}),
                  "fc": _syn(np.full((1, 16), 127), 7), "lif": _lif(1, du=4095, dv=0, vth=131071),
                  "output": nir.Output(output_type={"output": np.array([1])})},
                 [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    x = np.ones((1, 3, 16))
    res = simulate(big, x, fixed_point=True, probe=("lif",))
    raw = 16 * (127 << 7) << 6  # 16646144 > 2^23: wraps to raw - 2^24
    assert res.probes["lif.u"][0, 1, 0] == raw - 2 ** 24
    assert res.probes["lif.v"][0, 1, 0] == raw - 2 ** 24
    assert res.probes["lif.v"][0, 2, 0] == max(-top + 1, 2 * (raw - 2 ** 24))


def test_two_layer_network_hand_trace():
    # lif1: u = input only (du=4095), no leak (dv=0), threshold 1 << 6 = 64.
    # lif2: u = input only, v keeps one half, threshold 7 << 6 = 448.
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "fc1": _syn([[1, 0], [0, 2]], 0), "lif1": _lif(2, du=4095, dv=0, vth=1),
             "fc2": _syn([[5, 3]], 1), "lif2": _lif(1, du=4095, dv=2048, vth=7),
             "output": nir.Output(output_type={"output": np.array([1])})}
    g = _graph(nodes, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
                       ("lif2", "output")])
    x = np.zeros((1, 6, 2))
    x[0, 0, 0] = 1          # input 0 spikes at t=0
    x[0, 0:2, 1] = 1        # input 1 spikes at t=0, 1
    res = simulate(g, x, fixed_point=True, probe=("lif1", "lif2"))
    # lif1 neuron 0: t=1 u=64, v=64 (not > 64), then u=0, v stays 64: never spikes.
    # lif1 neuron 1: t=1 and t=2 u=128, v=128 > 64: spikes at t=1, 2 (v reads 0 after reset).
    assert res.probes["lif1.u"][0, :, 0].tolist() == [0, 64, 0, 0, 0, 0]
    assert res.probes["lif1.v"][0, :, 0].tolist() == [0, 64, 64, 64, 64, 64]
    assert res.probes["lif1.u"][0, :, 1].tolist() == [0, 128, 128, 0, 0, 0]
    assert res.probes["lif1.v"][0, :, 1].tolist() == [0, 0, 0, 0, 0, 0]
    # lif2 gets (3 << 1) << 6 = 384 at t=2 and t=3: v = 384, then 192 + 384 = 576 > 448:
    # spike at t=3, and the probe reads v after the reset (0).
    assert res.probes["lif2.u"][0, :, 0].tolist() == [0, 0, 384, 384, 0, 0]
    assert res.probes["lif2.v"][0, :, 0].tolist() == [0, 0, 384, 0, 0, 0]
    assert res.outputs["output"][0, :, 0].tolist() == [0, 0, 0, 1, 0, 0]
    # Synaptic events count as in float mode: fc1 3 input spikes to 1 synapse each, fc2 2.
    assert res.counters["fc1"].synaptic_events == 3
    assert res.counters["fc2"].synaptic_events == 2


def test_batch_is_independent_and_recurrent_graph_runs():
    rng = np.random.default_rng(3)
    nodes = {"input": nir.Input(input_type={"input": np.array([6])}),
             "fc1": nir.Affine(weight=rng.normal(0, 1, (5, 6)), bias=np.zeros(5)),
             "lif1": nir.CubaLIF(tau_syn=np.full(5, 4e-3), tau_mem=np.full(5, 8e-3),
                                 r=np.full(5, 4.0), v_leak=np.zeros(5), v_threshold=np.ones(5),
                                 w_in=np.ones(5)),
             "rec": nir.Linear(weight=rng.normal(0, 0.5, (5, 5))),
             "output": nir.Output(output_type={"output": np.array([5])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "rec"),
                                         ("rec", "lif1"), ("lif1", "output")],
                     metadata={"dt": 1e-3}, type_check=False)
    q, _ = quantize_loihi(g)
    x = (rng.random((4, 30, 6)) < 0.3).astype(float)
    both = simulate(q, x, fixed_point=True).outputs["output"]
    for i in range(4):
        one = simulate(q, x[i:i + 1], fixed_point=True).outputs["output"]
        np.testing.assert_array_equal(one[0], both[i])
    assert both.sum() > 0


def test_fixed_point_refuses_graphs_not_quantized_for_loihi():
    g = _single(1, 0, du=0, dv=0, vth=1)
    g.metadata = {"dt": 1e-3}
    with pytest.raises(UnsupportedError, match="quantize --scheme loihi"):
        simulate(g, np.ones((1, 2, 1)), fixed_point=True)
    g = _single(1, 0, du=5000, dv=0, vth=1)
    with pytest.raises(UnsupportedError, match=r"'lif'.*loihi.du.*\[0, 4095\]"):
        simulate(g, np.ones((1, 2, 1)), fixed_point=True)
    g = _single(1, 0, du=0, dv=0, vth=1)
    g.nodes["fc"] = _syn([[0.5]], 0)
    with pytest.raises(UnsupportedError, match="integer mantissas"):
        simulate(g, np.ones((1, 2, 1)), fixed_point=True)


_LAVA_SCRIPT = r'''
import numpy as np, nir
from lava.proc.lif.process import LIF
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer as Src
from lava.proc.io.sink import RingBuffer as Sink
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.utils.weightutils import SignMode
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.targets.reference import simulate

rng = np.random.default_rng(1)
bits = 6
nodes = {"input": nir.Input(input_type={"input": np.array([12])}),
         "fc1": nir.Affine(weight=rng.normal(0.1, 0.5, (10, 12)), bias=np.zeros(10)),
         "lif1": nir.CubaLIF(tau_syn=np.full(10, 5e-3), tau_mem=np.full(10, 1e-2),
                             r=np.full(10, 10.0), v_leak=np.full(10, 0.02),
                             v_threshold=np.ones(10), w_in=np.ones(10)),
         "fc2": nir.Linear(weight=rng.normal(0.1, 0.5, (3, 10))),
         "lif2": nir.LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0), v_leak=np.zeros(3),
                         v_threshold=np.ones(3)),
         "output": nir.Output(output_type={"output": np.array([3])})}
names = list(nodes)
g = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-3},
                 type_check=False)
q, _ = quantize_loihi(g, bits=bits)
x = (rng.random((60, 12)) < 0.3).astype(float)
ref = simulate(q, x[None], fixed_point=True).outputs["output"][0]
src = Src(data=x.T.astype(np.int32))
prev = src.s_out
for syn, neu in (("fc1", "lif1"), ("fc2", "lif2")):
    m = np.asarray(q.nodes[syn].weight).astype(np.int32)
    e, k = int(q.nodes[syn].metadata["loihi.weight_exp"]), 9 - bits
    d = Dense(weights=m << k, weight_exp=e - k, num_weight_bits=bits, sign_mode=SignMode.MIXED)
    md = q.nodes[neu].metadata
    lif = LIF(shape=(m.shape[0],), du=int(md["loihi.du"]), dv=int(md["loihi.dv"]),
              vth=int(md["loihi.vth"]), bias_mant=np.asarray(md["loihi.bias_mant"], np.int32),
              bias_exp=np.asarray(md["loihi.bias_exp"], np.int32))
    prev.connect(d.s_in)
    d.a_out.connect(lif.a_in)
    prev = lif.s_out
sink = Sink(shape=(3,), buffer=60)
prev.connect(sink.a_in)
sink.run(condition=RunSteps(num_steps=60), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
out = sink.data.get().T.copy()
sink.stop()
assert ref.sum() > 0, "no output spikes"
assert np.array_equal(ref, out), (ref.sum(), out.sum())
print("BIT-EXACT", int(ref.sum()))
'''


@pytest.mark.lava
@pytest.mark.slow
def test_fixed_point_equals_lava_fixed_pt(lava_python_path):
    """Quantized 12-10-3 CubaLIF/LIF net: reference fixed-point spikes == Lava's fixed_pt."""
    import subprocess

    out = subprocess.run([lava_python_path, "-c", _LAVA_SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "BIT-EXACT" in out.stdout, out.stderr[-2000:]
