"""The subtractive reset rule (node metadata "reset": "subtract") on every backend that runs it.

The torch models, the reference (float and fixed point) and Lava (float and bit-accurate fixed
point, through the runtime's own LIF models) give the same spikes as the one NumPy step; each
comparison also checks that the zero-reset run differs, so a backend that ignored the rule fails.
An Affine bias before a CubaLIF runs on Lava float as a constant current into u.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from test_lava_helpers import cuba_lif, dyadic, ensure_lava_env, graph, recurrent, spikes

from neurocompile.errors import UnsupportedError
from neurocompile.models.neurons import LIF as TorchLIF
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.semantics import RESET_KEY, SPIKES_KEY
from neurocompile.targets import get_target
from neurocompile.targets.lava import lower
from neurocompile.targets.reference import simulate


def with_reset(g: nir.NIRGraph, rule: str) -> nir.NIRGraph:
    """The same graph with every spiking neuron's reset rule set to `rule`."""
    for node in g.nodes.values():
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            node.metadata = {**(node.metadata or {}), RESET_KEY: rule}
    return g


def cuba_bias_net(rng) -> nir.NIRGraph:
    """Input -> Affine (bias) -> CubaLIF (du = 0.25) with a recurrent Linear -> Output."""
    return graph(
        {"input": nir.Input(np.array([6])),
         "fc1": nir.Affine(dyadic(rng, (8, 6)), dyadic(rng, (8,), lo=-4, hi=8)),
         "cuba": cuba_lif(8, vth=0.5),
         "rec": nir.Linear(dyadic(rng, (8, 8), lo=-16, hi=16)),
         "output": nir.Output(np.array([8]))},
        [("input", "fc1"), ("fc1", "cuba"), ("cuba", "rec"), ("rec", "cuba"),
         ("cuba", "output")])


@pytest.mark.parametrize("rule", ["subtract", "subtract_next", "zero_next"])
def test_torch_layer_equals_reference_with_the_reset_rule(rule):
    rng = np.random.default_rng(0)
    w = dyadic(rng, (5, 4))
    g = with_reset(graph(
        {"input": nir.Input(np.array([4])), "fc": nir.Linear(w),
         "lif": nir.LIF(tau=np.full(5, 4e-3), r=np.full(5, 4.0), v_leak=np.zeros(5),
                        v_threshold=np.full(5, 0.5)),
         "output": nir.Output(np.array([5]))},
        [("input", "fc"), ("fc", "lif"), ("lif", "output")]), rule)
    x = spikes(rng, 3, 40, (4,), rate=0.5)
    ref = simulate(g, {"input": x}).outputs["output"]
    layer = TorchLIF(5, dt=1e-3, tau=4e-3, r=4.0, v_threshold=0.5, reset=rule)
    cur = np.concatenate([np.zeros((3, 1, 4)), x[:, :-1]], 1) @ w.T  # one step per connection
    out, _ = layer(torch.from_numpy(cur))
    assert ref.sum() > 20
    np.testing.assert_array_equal(out.numpy(), ref)
    zero, _ = TorchLIF(5, dt=1e-3, tau=4e-3, r=4.0, v_threshold=0.5)(torch.from_numpy(cur))
    assert not np.array_equal(zero.numpy(), ref)


def multi_net(rng, reset: str = "subtract") -> nir.NIRGraph:
    """Input -> Linear -> IF (graded spikes) -> Linear -> LIF (graded) -> Output."""
    g = graph(
        {"input": nir.Input(np.array([6])),
         "fc1": nir.Linear(dyadic(rng, (8, 6), lo=0, hi=160)),
         "if1": nir.IF(r=np.ones(8), v_threshold=np.full(8, 0.75)),
         "fc2": nir.Linear(dyadic(rng, (4, 8), lo=-16, hi=48)),
         "lif2": nir.LIF(tau=np.full(4, 2e-3), r=np.full(4, 2.0), v_leak=np.zeros(4),
                         v_threshold=np.full(4, 0.5)),
         "output": nir.Output(np.array([4]))},
        [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    for name in ("if1", "lif2"):
        g.nodes[name].metadata = {RESET_KEY: reset, SPIKES_KEY: "multi"}
    return g


def test_next_step_rules_reset_after_the_following_update():
    """snnTorch's timing: "subtract_next" takes v_th off the step after a spike, undecayed;
    "zero_next" zeroes that step, input included."""
    def run(rule: str) -> list[float]:
        node = nir.LIF(tau=np.full(1, 2e-3), r=np.full(1, 2.0), v_leak=np.zeros(1),
                       v_threshold=np.ones(1))  # keep 0.5, gain 1
        node.metadata = {RESET_KEY: rule}
        g = graph({"input": nir.Input(np.array([1])), "fc": nir.Linear(np.ones((1, 1))),
                   "n": node, "output": nir.Output(np.array([1]))},
                  [("input", "fc"), ("fc", "n"), ("n", "output")])
        x = np.array([1.5, 0.5, 0.0, 0.0])[None, :, None]
        res = simulate(g, {"input": x}, probe=("n",))
        return res.probes["n.v"][0, :, 0].tolist()
    # inputs arrive one step late: v = 0, 1.5 (spike), then 0.75 + 0.5 - 1 / 0, then decay
    assert run("subtract_next") == [0.0, 1.5, 0.25, 0.125]
    assert run("zero_next") == [0.0, 1.5, 0.0, 0.0]
    assert run("subtract") == [0.0, 0.5, 0.75, 0.375]  # decayed remainder: not the same


def test_next_step_rules_refuse_graded_spikes():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    node.metadata = {RESET_KEY: "subtract_next", SPIKES_KEY: "multi"}
    with pytest.raises(UnsupportedError, match="node 'n': reset 'subtract_next' takes one spike"):
        simulate(graph({"input": nir.Input(np.array([1])), "fc": nir.Linear(np.ones((1, 1))),
                        "n": node, "output": nir.Output(np.array([1]))},
                       [("input", "fc"), ("fc", "n"), ("n", "output")]),
                 {"input": np.ones((1, 3, 1))})


def test_graded_spikes_count_threshold_multiples_and_subtract_them():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    node.metadata = {RESET_KEY: "subtract", SPIKES_KEY: "multi"}
    g = graph({"input": nir.Input(np.array([1])), "fc": nir.Linear(np.ones((1, 1))), "n": node,
               "output": nir.Output(np.array([1]))},
              [("input", "fc"), ("fc", "n"), ("n", "output")])
    x = np.array([2.5, 0.0, 1.0, 0.25, 3.0])[None, :, None]
    out = simulate(g, {"input": x}).outputs["output"][0, :, 0]
    # one step late: v = 2.5 -> 2 spikes, 0.5; 0.5; 1.5 -> 1, 0.5; 0.75; 3.75 -> 3, 0.75
    assert out.tolist() == [0.0, 2.0, 0.0, 1.0, 0.0]
    zero = dict(node.metadata, **{RESET_KEY: "zero"})
    g.nodes["n"] = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    g.nodes["n"].metadata = zero
    assert simulate(g, {"input": x}).outputs["output"][0, :, 0].tolist() == \
        [0.0, 2.0, 0.0, 1.0, 0.0]  # v = 2.5 -> 0; 0; 1.0 -> 1 (v > 0, floor 1)
    single = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    single.metadata = {RESET_KEY: "subtract"}
    g.nodes["n"] = single
    assert simulate(g, {"input": x}).outputs["output"][0, :, 0].tolist() != out.tolist()


def test_graded_spikes_are_refused_in_fixed_point_naming_the_sinabs_option():
    from neurocompile.semantics import loihi

    node = nir.IF(r=np.ones(2), v_threshold=np.ones(2))
    node.metadata = {SPIKES_KEY: "multi"}
    with pytest.raises(UnsupportedError, match="node 'n'.*spike_fn=SingleSpike"):
        loihi.read_neuron("n", node)


def test_lowering_records_the_rule_and_the_current_bias():
    rng = np.random.default_rng(1)
    plan = lower(with_reset(cuba_bias_net(rng), "subtract"))
    pop = plan.summary()["populations"]["cuba"]
    assert pop["reset"] == "subtract" and pop["current_bias"] is True
    assert plan.populations["cuba"].bias.tolist() == [0.0] * 8  # not folded into v


# -- Lava (needs the Lava environment) --------------------------------------------------------
lava = pytest.mark.skipif(ensure_lava_env() is None, reason="no Lava interpreter: set "
                          "NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")


def _no_if_bias(g: nir.NIRGraph) -> nir.NIRGraph:
    """The Loihi scheme has no bias for IF: the Affine before it becomes a Linear."""
    g.nodes["fc2"] = nir.Linear(g.nodes["fc2"].weight)
    return g


def _lava(g, x, **options):
    target = get_target("lava")
    return target.run(target.compile(g, options), x)


@lava
@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("rule", ["subtract", "subtract_next", "zero_next"])
def test_lava_float_and_fixed_point_follow_the_reset_rule(rule):
    rng = np.random.default_rng(2)
    g = with_reset(recurrent(rng), rule)
    x = {"input": spikes(rng, 2, 40, (10,), rate=0.4)}
    ref = simulate(g, x)
    zero = simulate(with_reset(recurrent(np.random.default_rng(2)), "zero"), x)
    assert ref.outputs["output"].sum() > 10
    assert not np.array_equal(ref.outputs["output"], zero.outputs["output"])
    res = _lava(g, x)
    np.testing.assert_array_equal(res.outputs["output"], ref.outputs["output"])
    assert res.counters_dict() == ref.counters_dict()

    q, _ = quantize_loihi(_no_if_bias(g))
    assert q.nodes["lif1"].metadata[RESET_KEY] == rule  # quantization keeps the rule
    ref_q = simulate(q, x, fixed_point=True)
    qz, _ = quantize_loihi(_no_if_bias(with_reset(recurrent(np.random.default_rng(2)), "zero")))
    zero_q = simulate(qz, x, fixed_point=True)
    assert ref_q.counters["lif1"].spikes > 20
    assert not np.array_equal(ref_q.outputs["output"], zero_q.outputs["output"])
    res_q = _lava(q, x, fixed_point=True)
    np.testing.assert_array_equal(res_q.outputs["output"], ref_q.outputs["output"])
    assert res_q.counters_dict() == ref_q.counters_dict()


@lava
@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lava_float_sends_graded_spikes_like_the_reference(reset):
    rng = np.random.default_rng(5)
    g = multi_net(rng, reset)
    x = {"input": spikes(rng, 2, 30, (6,), rate=0.5)}
    ref = simulate(g, x)
    lif2 = ref.outputs["output"]
    assert lif2.sum() > 10 and lif2.max() >= 2  # graded: more than one spike in a step
    res = _lava(g, x)
    np.testing.assert_array_equal(res.outputs["output"], lif2)
    assert res.counters_dict() == ref.counters_dict()


@lava
@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("rule", ["zero", "subtract"])
def test_lava_float_runs_a_bias_before_a_cubalif_exactly(rule):
    rng = np.random.default_rng(3)
    g = with_reset(cuba_bias_net(rng), rule)
    x = {"input": spikes(rng, 2, 40, (6,), rate=0.3)}
    ref = simulate(g, x)
    nobias = cuba_bias_net(np.random.default_rng(3))
    nobias.nodes["fc1"] = nir.Linear(nobias.nodes["fc1"].weight)
    assert not np.array_equal(simulate(with_reset(nobias, rule), x).outputs["output"],
                              ref.outputs["output"])  # the bias matters
    res = _lava(g, x)
    assert ref.outputs["output"].sum() > 10
    np.testing.assert_array_equal(res.outputs["output"], ref.outputs["output"])


def test_loihi2_mapping_names_the_custom_neuron_program():
    from neurocompile.targets.loihi2.mapping import map_resources

    rng = np.random.default_rng(4)
    plain = map_resources(lower(recurrent(rng)))["populations"]
    sub = map_resources(lower(with_reset(recurrent(np.random.default_rng(4)), "subtract")))
    bias = map_resources(lower(cuba_bias_net(rng)))["populations"]
    assert plain["lif1"]["neuron_program"] == "lif" and plain["lif1"]["reset"] == "zero"
    assert sub["populations"]["lif1"]["neuron_program"] == "custom"
    assert sub["populations"]["lif1"]["reset"] == "subtract"
    assert bias["cuba"]["neuron_program"] == "custom"
    assert sub["populations"]["lif1"]["cores"] == plain["lif1"]["cores"]


def cuba_fixed_net(rng, current: bool = True) -> nir.NIRGraph:
    """A hand-quantized Input -> Linear -> CubaLIF (du < 4095) graph with a constant synaptic
    input per neuron (loihi.current), as a bias before a CubaLIF is in fixed point."""
    n_in, n = 6, 5
    meta = {"loihi.du": 1024, "loihi.dv": 512, "loihi.vth": 200,
            "loihi.bias_mant": np.zeros(n, int), "loihi.bias_exp": np.zeros(n, int)}
    if current:
        meta["loihi.current"] = np.array([3, -2, 0, 5, 1])
    cuba = cuba_lif(n)
    cuba.metadata = meta
    return graph(
        {"input": nir.Input(np.array([n_in])),
         "fc": nir.Linear(rng.integers(-60, 100, (n, n_in)).astype(np.float64),
                          metadata={"loihi.weight_exp": 0, "loihi.num_weight_bits": 8}),
         "cuba": cuba, "output": nir.Output(np.array([n]))},
        [("input", "fc"), ("fc", "cuba"), ("cuba", "output")], quantization="loihi")


def test_fixed_point_current_is_added_to_the_synaptic_input():
    from neurocompile.semantics import loihi

    p = loihi.read_neuron("cuba", cuba_fixed_net(np.random.default_rng(0)).nodes["cuba"])
    u, v = np.zeros((1, 5), np.int64), np.zeros((1, 5), np.int64)
    u, v, _ = loihi.step(p, u, v, np.zeros((1, 5), np.int64))
    assert u[0].tolist() == [3 << 6, -2 << 6, 0, 5 << 6, 1 << 6]
    bad = cuba_fixed_net(np.random.default_rng(0)).nodes["cuba"]
    bad.metadata["loihi.current"] = np.full(5, 2**17)
    with pytest.raises(UnsupportedError, match="'loihi.current' must be integers"):
        loihi.read_neuron("cuba", bad)


@lava
@pytest.mark.lava
@pytest.mark.slow
def test_lava_fixed_point_runs_a_constant_current_bit_for_bit():
    rng = np.random.default_rng(6)
    g = cuba_fixed_net(rng)
    x = {"input": spikes(rng, 2, 40, (6,), rate=0.3)}
    ref = simulate(g, x, fixed_point=True)
    without = simulate(cuba_fixed_net(np.random.default_rng(6), current=False), x,
                       fixed_point=True)
    assert ref.outputs["output"].sum() > 10
    assert not np.array_equal(ref.outputs["output"], without.outputs["output"])
    res = _lava(g, x, fixed_point=True)
    np.testing.assert_array_equal(res.outputs["output"], ref.outputs["output"])


@pytest.mark.parametrize("target", ["torch", "onnx", "norse"])
@pytest.mark.parametrize("meta", [{RESET_KEY: "subtract"}, {SPIKES_KEY: "multi"},
                                  {RESET_KEY: "zero_next"}])
def test_backends_without_the_rules_refuse_them(target, meta):
    """The torch, ONNX and Norse targets reset to zero with one spike per step: a graph asking
    for another rule is refused, naming the node, never run with the wrong rule."""
    from conftest import chain, lif

    pytest.importorskip({"torch": "torch", "onnx": "onnxruntime", "norse": "norse"}[target])
    node = lif(4)
    node.metadata = dict(meta)
    g = chain(("input", nir.Input(np.array([3]))),
              ("fc", nir.Linear(weight=np.ones((4, 3)))), ("lif", node),
              ("output", nir.Output(np.array([4]))))
    with pytest.raises(UnsupportedError, match="'lif'.*reset"):
        get_target(target).compile(g)
    plain = lif(4)
    g.nodes["lif"] = plain
    get_target(target).compile(g)  # the default rules compile
