"""Reference simulator: hand-computed traces, counters, and agreement with a naive stepper."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from conftest import chain, lif
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocompile.errors import InputDataError
from neurocompile.targets.reference import simulate


def spikes_at(result, name="out"):
    return np.nonzero(result.outputs[name][0, :, 0])[0].tolist()


def test_lif_trace_matches_hand_computation():
    # dv = 0.5, gain 1, input weight 0.75 every step: v = 0, .75, 1.125 -> spike, 0.75, ...
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[0.75]]))),
              ("lif", lif(1)), ("out", nir.Output(output_type=np.array([1]))))
    r = simulate(g, {"in": np.ones((1, 8, 1))}, probe=("lif",))
    np.testing.assert_array_equal(r.probes["lif.v"][0, :, 0], [0, 0.75, 0, 0.75, 0, 0.75, 0, 0.75])
    assert spikes_at(r) == [2, 4, 6]


def test_cuba_lif_trace_and_strict_threshold():
    # du = dv = 0.5, gain = (dv*r)*(du*w_in) = 1; a single input spike at t = 0.
    neuron = nir.CubaLIF(tau_syn=np.array([2e-3]), tau_mem=np.array([2e-3]), r=np.array([2.0]),
                         v_leak=np.array([0.0]), v_threshold=np.array([1.0]), w_in=np.array([2.0]))
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[1.0]]))),
              ("n", neuron), ("out", nir.Output(output_type=np.array([1]))))
    x = np.zeros((1, 5, 1))
    x[0, 0, 0] = 1
    r = simulate(g, {"in": x}, probe=("n",))
    np.testing.assert_array_equal(r.probes["n.u"][0, :, 0], [0, 1, 0.5, 0.25, 0.125])
    np.testing.assert_array_equal(r.probes["n.v"][0, :, 0], [0, 1, 1, 0.75, 0.5])
    assert spikes_at(r) == []  # v == v_th does not spike


def test_if_integrates_without_leak():
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[1.0]]))),
              ("n", nir.IF(r=np.array([1.0]), v_threshold=np.array([2.5]))),
              ("out", nir.Output(output_type=np.array([1]))))
    r = simulate(g, {"in": np.ones((1, 9, 1))})
    assert spikes_at(r) == [3, 6]


def test_li_bias_from_v_leak():
    # dv = 0.5, bias = dv * v_leak = 1 from the first step: v = 1, 1.5, 1.75, ...
    neuron = nir.LI(tau=np.array([2e-3]), r=np.array([2.0]), v_leak=np.array([2.0]))
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[0.0]]))),
              ("n", neuron), ("out", nir.Output(output_type=np.array([1]))))
    r = simulate(g, {"in": np.zeros((1, 4, 1))})
    np.testing.assert_array_equal(r.outputs["out"][0, :, 0], [1, 1.5, 1.75, 1.875])


def test_affine_bias_reaches_neuron_from_first_step():
    g = chain(("in", nir.Input(input_type=np.array([1]))),
              ("w", nir.Affine(weight=np.array([[0.0]]), bias=np.array([0.75]))),
              ("n", lif(1)), ("out", nir.Output(output_type=np.array([1]))))
    r = simulate(g, {"in": np.zeros((1, 4, 1))}, probe=("n",))
    np.testing.assert_array_equal(r.probes["n.v"][0, :, 0], [0.75, 0, 0.75, 0])


def test_recurrent_self_inhibition_trace():
    # input weight 1.5 every step, self connection -1: spikes at 1, 3, 5, 7
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[1.5]]))),
              ("n", lif(1)), ("out", nir.Output(output_type=np.array([1]))),
              extra_edges=[("n", "rec"), ("rec", "n")])
    g.nodes["rec"] = nir.Linear(weight=np.array([[-1.0]]))
    r = simulate(g, {"in": np.ones((1, 9, 1))})
    assert spikes_at(r) == [1, 3, 5, 7]


def test_conv2d_then_if_matches_hand_computation():
    x = np.zeros((1, 3, 1, 3, 3))
    x[0, 0, 0] = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    conv = nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 1, 2, 2)), stride=1, padding=0,
                      dilation=1, groups=1, bias=np.zeros(1))
    g = chain(("in", nir.Input(input_type=np.array([1, 3, 3]))), ("conv", conv),
              ("n", nir.IF(r=np.ones((1, 2, 2)), v_threshold=np.full((1, 2, 2), 2.5))),
              ("out", nir.Output(output_type=np.array([1, 2, 2]))))
    r = simulate(g, {"in": x}, probe=("n",))
    # window sums of the frame at t=0 are [[2, 2], [3, 2]]; they arrive at t=1
    np.testing.assert_array_equal(r.probes["n.v"][0, 1, 0], [[2, 2], [0, 2]])
    np.testing.assert_array_equal(r.outputs["out"][0, 1, 0], [[0, 0], [1, 0]])
    # fan-out of each input pixel under a 2x2 all-ones kernel: corners 1, edges 2, centre 4
    assert r.counters["conv"].synaptic_events == 1 + 1 + 4 + 1 + 2


def test_conv_matches_direct_loop():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 2, 3, 3))
    conv = nir.Conv2d(input_shape=(6, 7), weight=w, stride=(2, 1), padding=(1, 0), dilation=1,
                      groups=2, bias=rng.normal(size=4))
    from neurocompile.semantics.stateless import conv as conv_op

    x = rng.normal(size=(2, 4, 6, 7))
    y = conv_op(conv, x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    expect = np.zeros((2, 4, 3, 5))
    for o in range(4):
        g = o // 2
        for i in range(3):
            for j in range(5):
                patch = xp[:, 2 * g:2 * g + 2, 2 * i:2 * i + 3, j:j + 3]
                expect[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + conv.bias[o]
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)


def test_sumpool_and_flatten_into_affine():
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    g = chain(("in", nir.Input(input_type=np.array([1, 4, 4]))), ("pool", pool),
              ("flat", nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0)),
              ("fc", nir.Linear(weight=np.eye(4))),
              ("n", nir.IF(r=np.ones(4), v_threshold=np.full(4, 0.5))),
              ("out", nir.Output(output_type=np.array([4]))))
    x = np.zeros((1, 2, 1, 4, 4))
    x[0, 0, 0, 0, 0] = 1
    x[0, 0, 0, 3, 3] = 1
    r = simulate(g, {"in": x})
    np.testing.assert_array_equal(r.outputs["out"][0, 1], [1, 0, 0, 1])


def test_delay_node_shifts_by_steps():
    g = chain(("in", nir.Input(input_type=np.array([2]))),
              ("d", nir.Delay(delay=np.array([2e-3, 3e-3]))),
              ("out", nir.Output(output_type=np.array([2]))))
    x = np.zeros((1, 6, 2))
    x[0, 0] = 1
    r = simulate(g, {"in": x})
    assert np.nonzero(r.outputs["out"][0, :, 0])[0].tolist() == [2]
    assert np.nonzero(r.outputs["out"][0, :, 1])[0].tolist() == [3]


def test_counters_equal_hand_counts():
    w = np.array([[1.0, 0.0], [2.0, 3.0]])  # fan-out: input 0 -> 2, input 1 -> 1
    g = chain(("in", nir.Input(input_type=np.array([2]))), ("w", nir.Linear(weight=w)),
              ("n", lif(2, vth=100.0)), ("out", nir.Output(output_type=np.array([2]))))
    x = np.zeros((2, 4, 2))
    x[0, 0, 0] = x[0, 1, 0] = x[0, 2, 1] = 1
    x[1, 3, 1] = 1
    r = simulate(g, {"in": x})
    assert r.counters["in"].spikes == 4
    assert r.counters["w"].synaptic_events == 2 * 2 + 1 + 1
    assert r.counters["n"].neuron_updates == 2 * 4 * 2
    assert r.counters["n"].spikes == 0


def test_steps_pad_with_zeros_and_bad_input_raises():
    g = chain(("in", nir.Input(input_type=np.array([1]))), ("w", nir.Linear(weight=np.array([[0.75]]))),
              ("lif", lif(1)), ("out", nir.Output(output_type=np.array([1]))))
    r = simulate(g, {"in": np.ones((1, 2, 1))}, steps=6)
    assert r.outputs["out"].shape == (1, 6, 1)
    assert spikes_at(r) == [2]
    with pytest.raises(InputDataError, match="expected"):
        simulate(g, {"in": np.ones((1, 2, 3))})
    with pytest.raises(InputDataError, match="no data"):
        simulate(g, {"x": np.ones((1, 2, 1))})


# --- agreement with a deliberately naive per-step, per-node implementation ---------------

def naive_run(w_in, w_rec, w_out, keep_v, vth, x):
    """Scalar-loop LIF network (gain 1): x (steps, n_in) -> output spikes (steps, n_out)."""
    steps = x.shape[0]
    n_h, n_o = w_in.shape[0], w_out.shape[0]
    vh, vo = np.zeros(n_h), np.zeros(n_o)
    so_out = np.zeros((steps, n_o))
    ih, io = np.zeros(n_h), np.zeros(n_o)  # inputs latched from the previous step
    for t in range(steps):
        vh = vh * keep_v + ih
        sh = (vh > vth).astype(float)
        vh[sh > 0] = 0
        vo = vo * keep_v + io
        so = (vo > vth).astype(float)
        vo[so > 0] = 0
        so_out[t] = so
        ih = w_in @ x[t] + w_rec @ sh
        io = w_out @ sh
    return so_out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_h=st.integers(1, 12), recurrent=st.booleans())
def test_vectorised_equals_naive(seed, n_h, recurrent):
    rng = np.random.default_rng(seed)
    n_i, n_o, steps = 5, 3, 30
    grid = lambda *s: np.round(rng.normal(0, 0.8, s) * 64) / 64  # noqa: E731  exact in float
    w_in, w_out = grid(n_h, n_i), grid(n_o, n_h)
    w_rec = grid(n_h, n_h) if recurrent else np.zeros((n_h, n_h))
    nodes = {"in": nir.Input(input_type=np.array([n_i])), "fc1": nir.Linear(weight=w_in),
             "h": lif(n_h), "fc2": nir.Linear(weight=w_out), "o": lif(n_o),
             "out": nir.Output(output_type=np.array([n_o]))}
    edges = [("in", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "out")]
    if recurrent:
        nodes["rec"] = nir.Linear(weight=w_rec)
        edges += [("h", "rec"), ("rec", "h")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}, type_check=False)
    x = (rng.random((2, steps, n_i)) < 0.4).astype(float)
    r = simulate(g, {"in": x})
    for b in range(2):
        expect = naive_run(w_in, w_rec, w_out, 0.5, 1.0, x[b])
        np.testing.assert_array_equal(r.outputs["out"][b], expect)


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_current_free_fast_loop_equals_the_step_loop(bias):
    """semantics.float.run's shortcut for du = 1 gives step's spikes and leaves step's state."""
    from neurocompile.semantics import float as fsem

    n = 30
    node = nir.LIF(tau=np.linspace(2e-3, 9e-3, n), r=np.full(n, 1.7), v_leak=np.full(n, bias),
                   v_threshold=np.full(n, 0.8))
    d = fsem.discretise("lif", node, 1e-3).prepare(np.float64)
    x = np.random.default_rng(0).normal(0.4, 1.0, (200, 3, n))
    fast_state = d.state(3)
    fast = fsem.run(d, x, state=fast_state)
    u, v = d.state(3)
    slow = np.stack([fsem.step(d, u, v, x[t]) for t in range(len(x))])
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast_state[0], u)
    np.testing.assert_array_equal(fast_state[1], v)
    assert 0 < slow.mean() < 0.9
