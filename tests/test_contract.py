"""The contract is one executable thing: one NumPy step the torch step equals, one Loihi reader
both fixed-point backends obey, typed target options, one registry a new target joins."""

from __future__ import annotations

import dataclasses
import itertools
import json

import nir
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_quantize import net

from neurocompile import semantics
from neurocompile.config import ConfigError
from neurocompile.errors import UnsupportedError
from neurocompile.ir.analysis import fan_out
from neurocompile.ir.io import save_graph, save_spikes
from neurocompile.models.neurons import NeuronState, step, torch_step_params
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.semantics import loihi, stateless
from neurocompile.targets import TARGETS, get_target
from neurocompile.targets.base import Artifact, RunResult, Target, TargetOptions
from neurocompile.targets.lava import lower
from neurocompile.targets.reference import build_program, simulate

DT = 1e-3


# -- torch step == semantics.step, for every kind and parameter range --------------------------
def _node(kind: str, n: int, draw, reset: str = "zero") -> nir.NIRNode:
    tau = st.floats(DT, 1.0)  # dt/tau in (0, 1]: every stable Euler step
    vec = lambda s: np.array([draw(s) for _ in range(n)])  # noqa: E731
    p = {"tau": vec(tau), "tau_syn": vec(tau), "tau_mem": vec(tau),
         "r": vec(st.floats(-4, 4)), "v_leak": vec(st.floats(-2, 2)),
         "v_threshold": vec(st.floats(0.05, 3)), "w_in": vec(st.floats(-3, 3))}
    node = getattr(nir, kind)(**{k: p[k] for k in semantics.PARAM_NAMES[kind]})
    if reset != "zero":
        node.metadata = {semantics.RESET_KEY: reset}
    return node


@settings(max_examples=60, deadline=None)
@given(data=st.data(), kind=st.sampled_from(list(semantics.PARAM_NAMES)),
       n=st.integers(1, 5), steps=st.integers(1, 30))
def test_torch_step_equals_the_numpy_step_bit_for_bit(data, kind, n, steps):
    spiking = "v_threshold" in semantics.PARAM_NAMES[kind]
    reset = data.draw(st.sampled_from(semantics.RESET_RULES)) if spiking else "zero"
    node = _node(kind, n, data.draw, reset)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.normal(0, 2, (steps, 3, n))
    d = semantics.discretise("n", node, DT).prepare(np.float64)
    assert d.params.reset == reset
    u, v = d.state(3)
    params = {k: np.asarray(getattr(node, k)) for k in semantics.PARAM_NAMES[kind]}
    p = torch_step_params(kind, params, DT, torch.float64, reset)
    state = NeuronState(torch.zeros(3, n, dtype=torch.float64),
                        torch.zeros(3, n, dtype=torch.float64))
    for t in range(steps):
        out = semantics.step(d, u, v, x[t].copy())
        z, state = step(torch.from_numpy(x[t]), state, p)
        np.testing.assert_array_equal(z.numpy(), out.astype(np.float64))
        np.testing.assert_array_equal(state.u.numpy(), u)
        np.testing.assert_array_equal(state.v.numpy(), v)


def test_a_wrong_step_is_caught():
    """The comparison above fails for an update in another order (bias before the current)."""
    node = nir.LIF(tau=np.array([3e-3]), r=np.array([1.7]), v_leak=np.array([0.3]),
                   v_threshold=np.array([0.9]))
    d = semantics.discretise("n", node, DT).prepare()
    u, v = d.state(1)
    other = v.copy()
    x = np.array([[0.37]])
    for _ in range(5):
        semantics.step(d, u, v, x)
        other = (other + d.bias) * d.keep_v + d.gain * x  # a plausible but different order
    assert not np.array_equal(v, other)


def test_subtractive_reset_keeps_the_excess_and_a_zero_reset_would_fail():
    """Reset "subtract" leaves v - v_th after a spike (torch and NumPy alike); "zero" does not."""
    node = nir.IF(r=np.array([1.0]), v_threshold=np.array([1.0]))
    node.metadata = {semantics.RESET_KEY: "subtract"}
    d = semantics.discretise("n", node, DT).prepare()
    u, v = d.state(1)
    x = np.array([[0.75]])
    spikes = [bool(semantics.step(d, u, v, x)[0, 0]) for _ in range(5)]
    # v: 0.75, 1.5 -> 0.5, 1.25 -> 0.25, 1.0 (not > 1), 1.75 -> 0.75
    assert spikes == [False, True, True, False, True] and v[0, 0] == 0.75
    p = torch_step_params("IF", {"r": [1.0], "v_threshold": [1.0]}, DT, torch.float64,
                          "subtract")
    state = NeuronState(torch.zeros(1, 1, dtype=torch.float64),
                        torch.zeros(1, 1, dtype=torch.float64))
    z, state = step(torch.tensor([[1.5]], dtype=torch.float64), state, p)
    assert z.item() == 1 and state.v.item() == 0.5
    zero = semantics.discretise("n", nir.IF(r=np.array([1.0]), v_threshold=np.array([1.0])),
                                DT).prepare()
    u0, v0 = zero.state(1)
    assert [bool(semantics.step(zero, u0, v0, x)[0, 0]) for _ in range(5)] != spikes


@pytest.mark.parametrize(("meta", "match"), [
    ({"reset": "to_value"}, "must be one of zero, subtract"),
    ({"reset": 3}, "must be one of"),
])
def test_an_unknown_reset_rule_is_refused_naming_the_node(meta, match):
    node = nir.LIF(tau=np.array([0.01]), r=np.array([1.0]), v_leak=np.array([0.0]),
                   v_threshold=np.array([1.0]))
    node.metadata = meta
    with pytest.raises(UnsupportedError, match=f"node 'lif1'.*{match}"):
        semantics.discretise("lif1", node, DT)
    li = nir.LI(tau=np.array([0.01]), r=np.array([1.0]), v_leak=np.array([0.0]))
    li.metadata = {"reset": "subtract"}
    with pytest.raises(UnsupportedError, match="does not spike"):
        semantics.discretise("li", li, DT)


# -- one Loihi reader: Lava lowering and the reference fixed-point mode reject the same set ----
def _quantized(bits: int = 8) -> nir.NIRGraph:
    return quantize_loihi(net(rec=True, cuba=True), bits=bits)[0]


BAD_VALUES = (-1, 4096, 99999, 2**17, 0.5, float("nan"), float("inf"), "x", [], [1, 2, 3],
              -(2**20), 2**40)


def _mutations():
    """Every loihi.* key of every node set to every value of BAD_VALUES (plus deletions), and
    weights at and beyond their declared width: generated from the graph, not picked."""
    g = _quantized()
    for name, node in g.nodes.items():
        for key in sorted(k for k in (node.metadata or {}) if k.startswith("loihi.")):
            for value in BAD_VALUES + ("<deleted>",):
                yield f"{name}.{key}={value!r}", (name, key, value)
        if isinstance(node, loihi.SYNAPSE_TYPES):
            for bits, w in itertools.product((2, 4, 8), (1, 7, 8, 127, 128, 256, -129, 0.5)):
                yield f"{name} bits={bits} w={w}", (name, "weight", (bits, w))


def _mutate(case) -> nir.NIRGraph:
    name, key, value = case
    g = _quantized()
    node = g.nodes[name]
    meta = dict(node.metadata or {})
    if key == "weight":
        bits, w = value
        meta["loihi.num_weight_bits"] = bits
        weight = np.array(node.weight, dtype=np.float64)
        weight.flat[0] = w
        node.weight = weight
    elif value == "<deleted>":
        del meta[key]
    else:
        meta[key] = np.asarray(value) if isinstance(value, list) else value
    node.metadata = meta
    return g


def _error(fn, g) -> str | None:
    try:
        fn(g)
    except UnsupportedError as exc:
        return str(exc)
    return None


CASES = list(_mutations())


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_lava_and_reference_fixed_point_reject_the_same_metadata(case):
    g = _mutate(case)
    lava = _error(lambda graph: lower(graph, fixed_point=True), g)
    ref = _error(lambda graph: build_program(graph, fixed_point=True), g)
    assert lava == ref


def test_the_generated_set_has_both_kinds_and_the_known_drifts():
    """Most mutations are rejected, some (in range) accepted; the two drifts once found
    (a 256 mantissa at 4 bits, dv = 99999) are rejected by both."""
    rejected = [_error(lambda g: build_program(g, fixed_point=True), _mutate(c))
                for _, c in CASES]
    assert sum(r is not None for r in rejected) > 0.6 * len(CASES)
    assert any(r is None for r in rejected)
    syn = next(n for n, node in _quantized().nodes.items()
               if isinstance(node, loihi.SYNAPSE_TYPES))
    neuron = next(n for n, node in _quantized().nodes.items()
                  if isinstance(node, loihi.NEURON_TYPES))
    for case in [(syn, "weight", (4, 256)), (neuron, "loihi.dv", 99999)]:
        g = _mutate(case)
        assert _error(lambda graph: lower(graph, fixed_point=True), g) is not None
        assert _error(lambda graph: build_program(graph, fixed_point=True), g) is not None


# -- energy: a 4-bit graph is costed as 4-bit -------------------------------------------------
def test_four_bit_graph_is_costed_with_four_bit_synapses():
    from neurocompile.energy.report import build_report

    x = {"input": (np.random.default_rng(0).random((2, 20, 12)) < 0.3).astype(float)}
    for bits in (4, 8):
        q = _quantized(bits)
        res = simulate(q, x, fixed_point=True)
        report = build_report(q, res, hardware=("loihi",))
        resources = report["hardware"]["loihi"]["resources"]
        assert set(resources["weight_bits"].values()) == {bits}
        for layer in resources["layers"].values():
            assert layer["synapses"] > 0
            assert layer["synaptic_memory_bits"] == bits * layer["synapses"]


# -- typed target options ---------------------------------------------------------------------
@pytest.mark.parametrize("target", ["reference", "lava", "loihi2"])
def test_misspelled_target_option_raises_naming_the_known_ones(target):
    with pytest.raises(ConfigError, match=r"unknown key 'fixedpoint'; known: dt, fixed_point"):
        get_target(target).options({"fixedpoint": True})
    with pytest.raises(ConfigError, match="fixed_point: must be true or false"):
        get_target(target).options({"fixed_point": "yes"})
    assert get_target(target).options({"fixed_point": True}).fixed_point is True


# -- the train command's defaults are TrainConfig's --------------------------------------------
def test_train_cli_defaults_equal_train_config():
    """The command with no options trains exactly TrainConfig() (a click default that
    differed, or a shortcut that wrote a value, would show here)."""
    from neurocompile.cli.train_cmd import config_from_options, train_cmd
    from neurocompile.config import replace
    from neurocompile.train.config import TrainConfig

    ctx = train_cmd.make_context("train", ["-o", "run"])
    params = dict(ctx.params)
    shortcuts = {k: params.pop(k) for k in ("hidden", "sparse_backward", "b_th", "steps",
                                            "data_path", "out_dir")}
    cfg = config_from_options(params, **shortcuts)
    assert cfg == replace(TrainConfig(), "default", out_dir="run")
    ctx = train_cmd.make_context("train", ["-o", "run", "--epochs", "3", "--hidden", "7"])
    params = dict(ctx.params)
    shortcuts = {k: params.pop(k) for k in shortcuts}
    cfg = config_from_options(params, **shortcuts)
    assert cfg.epochs == 3 and cfg.model_kwargs == {"n_hidden": 7}
    assert cfg.lam == TrainConfig().lam


# -- adding a target: a package (here a class in tests), one registry line, its tests ----------
@dataclasses.dataclass(frozen=True)
class EchoOptions(TargetOptions):
    """Options of the test target."""


class EchoTarget(Target):
    """A target made of nothing but the interface: runs the reference simulator."""

    name = "echo"
    description = "test target: the reference simulator behind the Target interface"
    Options = EchoOptions

    def compile(self, graph, options=None) -> Artifact:
        return Artifact(self.name, graph, self.options(options), {"target": self.name})

    def run(self, artifact, inputs, steps=None) -> RunResult:
        res = simulate(artifact.graph, inputs, steps, dt=artifact.options.dt,
                       fixed_point=artifact.options.fixed_point)
        res.target = self.name
        return res


@pytest.fixture
def echo_registered(monkeypatch):
    monkeypatch.setitem(TARGETS, "echo", f"{__name__}:EchoTarget")


def test_a_registered_target_works_through_the_cli_and_crosscheck(echo_registered, tmp_path,
                                                                 capsys, monkeypatch):
    from neurocompile.analysis import crosscheck
    from neurocompile.cli.main import main

    monkeypatch.setenv("COLUMNS", "200")
    g = net(rec=True)
    x = (np.random.default_rng(1).random((3, 25, 12)) < 0.3).astype(float)
    check = crosscheck(g, "echo", {"input": x})
    assert check["outputs"]["output"]["all_identical"] and check["counter_totals_equal"]
    save_graph(g, tmp_path / "g.nir")
    save_spikes({"input": x}, tmp_path / "x.npz")
    main(["targets"])
    assert "echo" in capsys.readouterr().out
    main(["simulate", str(tmp_path / "g.nir"), "--target", "echo", "--input",
          str(tmp_path / "x.npz"), "--json", str(tmp_path / "s.json")])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["target"] == "echo"
    assert summary["totals"]["spikes"] == simulate(g, {"input": x}).total("spikes")


# -- fan-out: analytic == counting every weight application ------------------------------------
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_analytic_conv_fan_out_equals_brute_force(data):
    nd = data.draw(st.sampled_from([1, 2]))
    groups = data.draw(st.sampled_from([1, 2]))
    cin, cout = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    size = tuple(data.draw(st.integers(k[i], 7)) for i in range(nd))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(nd))
    dil = tuple(data.draw(st.integers(1, 2)) for _ in range(nd))
    pad = tuple(data.draw(st.integers(0, 2)) for _ in range(nd))
    if any((size[i] + 2 * pad[i] - dil[i] * (k[i] - 1) - 1) < 0 for i in range(nd)):
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    w = rng.normal(size=(cout, cin // groups) + k) * (rng.random((cout, cin // groups) + k) < .6)
    cls = nir.Conv1d if nd == 1 else nir.Conv2d
    args = dict(weight=w, stride=stride, padding=pad, dilation=dil, groups=groups,
                bias=np.zeros(cout))
    if nd == 2:
        args["input_shape"] = size
    else:
        args["input_shape"] = size[0]
    node = cls(**args)
    in_shape = (cin,) + size
    brute = np.zeros(in_shape, np.int64)
    indicator = (w != 0).astype(np.float64)
    for idx in np.ndindex(*in_shape):
        one = np.zeros((1,) + in_shape)
        one[(0,) + idx] = 1
        brute[idx] = round(stateless.conv(node, one, weight=indicator, bias=False).sum())
    np.testing.assert_array_equal(fan_out(node, in_shape), brute)
