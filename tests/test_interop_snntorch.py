"""Interoperability with NIR graphs exported by snnTorch (snntorch.export_nir.export_to_nir).

What these tests pin down (docs/interop.md explains each with the numbers):

* The exported file loads and validates. It carries no dt; snnTorch's exporter assumes
  dt = 1e-4 s (tau = dt / (1 - beta), r = tau / dt), so it must be simulated with dt=1e-4.
* Named difference DELAY: snnTorch applies a Linear and the next neuron in the same step;
  neurocompile delays every connection into a neuron by one step. For a feed-forward net of
  depth k without biases, neurocompile's output at step t equals snnTorch's at t - k.
  With biases the delayed layers also see their bias one step early; stepping the snnTorch
  modules with one step per connection reproduces neurocompile exactly.
* Named difference RESET: the exporter writes v_reset = 0 whatever snnTorch's
  reset_mechanism was. Leaky(reset_mechanism="zero") then matches spike for spike; the default
  "subtract", and "zero" of Synaptic and RLeaky (which zero the whole step after a spike), do
  not. A NumPy model of both frameworks, identical except for the reset rule, reproduces each
  side exactly, so the reset rule is the whole difference.
* The import profiles (--from snntorch for reset_mechanism "subtract", snntorch-zero for
  "zero") supply the dt and the reset rules ("subtract_next", "zero", "zero_next"): every case
  then equals snnTorch spike for spike after the depth shift, feed-forward, recurrent and
  convolutional, on the reference and on Lava float.
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest

from neurocompile.errors import UnsupportedError
from neurocompile.ir import load_graph, validate
from neurocompile.semantics import discretise, dt_fallback_warning
from neurocompile.targets.reference import simulate

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
export_nir = pytest.importorskip("snntorch.export_nir")

SNNTORCH_DT = 1e-4  # hard-coded in snntorch/export_nir.py (snnTorch 1.0.0) for Leaky/Synaptic/RLeaky
SIZES = (5, 8, 3)
STEPS = 60


# ----------------------------------------------------------------------------- model building

def _neuron(kind: str, n: int, reset: str, output: bool):
    """One snnTorch neuron layer with per-neuron parameters (the exporter needs vectors)."""
    kw = dict(threshold=torch.ones(n), init_hidden=True, reset_mechanism=reset, output=output)
    if kind == "leaky":
        return snn.Leaky(beta=torch.full((n,), 0.875), **kw)
    if kind == "synaptic":
        return snn.Synaptic(alpha=torch.full((n,), 0.75), beta=torch.full((n,), 0.875), **kw)
    raise ValueError(kind)


def _net(kind: str = "leaky", reset: str = "zero", bias: bool = False, seed: int = 0):
    """Linear -> neuron -> Linear -> neuron, torch's default init scaled by 3 (enough spikes)."""
    torch.manual_seed(seed)
    n_in, n_hid, n_out = SIZES
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, n_hid, bias=bias), _neuron(kind, n_hid, reset, False),
        torch.nn.Linear(n_hid, n_out, bias=bias), _neuron(kind, n_out, reset, True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    return net


def _rleaky_net(reset: str, seed: int = 0, synaptic: bool = False):
    """Linear -> RLeaky or RSynaptic (all-to-all recurrent Linear, its bias zeroed)."""
    torch.manual_seed(seed)
    n_in, n_hid, _ = SIZES
    kw = dict(beta=torch.full((n_hid,), 0.875), threshold=torch.ones(n_hid),
              linear_features=n_hid, init_hidden=True, reset_mechanism=reset)
    neuron = snn.RSynaptic(alpha=torch.full((n_hid,), 0.75), **kw) if synaptic \
        else snn.RLeaky(**kw)
    net = torch.nn.Sequential(torch.nn.Linear(n_in, n_hid, bias=False), neuron)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[1].recurrent.weight.mul_(2.0)
        net[1].recurrent.bias.zero_()
    return net


def _export(net, path) -> nir.NIRGraph:
    """snnTorch's own export, written with nir.write and read back with neurocompile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch.extract_nir_graph is deprecated upstream
        graph = export_nir.export_to_nir(net, torch.zeros(1, SIZES[0]), ignore_dims=[0])
    nir.write(path, graph)
    return load_graph(path)


def _spikes(seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((4, STEPS, SIZES[0])) < 0.3).astype(np.float32)


def _reset_state(net) -> None:
    for m in net:
        if hasattr(m, "reset_mem"):
            m.reset_mem()


def _snntorch_run(net, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """snnTorch's forward pass step by step: (output spikes, last layer's mem or None)."""
    _reset_state(net)
    spk, mem = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out = net(torch.as_tensor(x[:, t]))
            if isinstance(out, tuple):
                spk.append(out[0])
                mem.append(out[-1])
            else:
                spk.append(out)
    return torch.stack(spk, 1).numpy(), (torch.stack(mem, 1).numpy() if mem else None)


def _snntorch_delayed_run(net, x: np.ndarray) -> np.ndarray:
    """snnTorch's own modules, stepped with one step per connection (neurocompile's timing)."""
    _reset_state(net)
    fc1, lif1, fc2, lif2 = net
    prev_x = torch.zeros_like(torch.as_tensor(x[:, 0]))
    prev_s1 = torch.zeros(x.shape[0], SIZES[1])
    out = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            s1 = lif1(fc1(prev_x))
            s2 = lif2(fc2(prev_s1))[0]
            out.append(s2)
            prev_x, prev_s1 = torch.as_tensor(x[:, t]), s1
    return torch.stack(out, 1).numpy()


def _neurocompile_run(graph: nir.NIRGraph, x: np.ndarray, dt: float | None = SNNTORCH_DT,
                      probe: tuple[str, ...] = ()):
    (inp,) = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    (out,) = [k for k, v in graph.nodes.items() if isinstance(v, nir.Output)]
    res = simulate(graph, {inp: x}, dt=dt, probe=probe)
    return np.asarray(res.outputs[out]), res


# ----------------------------------------------------------------------------- NumPy model of both

def _layers(net) -> list[dict]:
    """Per-layer parameters read from the snnTorch modules (not from the NIR file)."""
    mods = list(net)
    layers = []
    for lin, neu in zip(mods[0::2], mods[1::2]):
        p = {"W": lin.weight.detach().double().numpy(),
             "b": 0.0 if lin.bias is None else lin.bias.detach().double().numpy(),
             "beta": neu.beta.detach().double().numpy(),
             "alpha": neu.alpha.detach().double().numpy() if hasattr(neu, "alpha") else 0.0,
             "thr": neu.threshold.detach().double().numpy(), "V": None}
        if isinstance(neu, (snn.RLeaky, snn.RSynaptic)):
            p["V"] = neu.recurrent.weight.detach().double().numpy()
        layers.append(p)
    return layers


def _model(layers: list[dict], x: np.ndarray, reset: str, delay: int) -> np.ndarray:
    """One discrete-time model with a switchable reset rule and per-connection delay.

    reset: 'neurocompile'  v = beta*v + u; s = v > thr; v = 0 where s       (docs/semantics.md)
           'subtract'      v = beta*v + u - thr*s[t-1]; s = v > thr          (snnTorch default)
           'zero_step'     v = (1 - s[t-1]) * (beta*v + u); s = v > thr      (snnTorch Synaptic/RLeaky
                                                                             reset_mechanism='zero')
    A recurrent weight V always sees the layer's spikes of step t-1 (both frameworks).
    """
    batch, steps, _ = x.shape
    src = x.astype(np.float64)
    for p in layers:
        n = p["W"].shape[0]
        u, v, s = np.zeros((batch, n)), np.zeros((batch, n)), np.zeros((batch, n))
        out = np.zeros((batch, steps, n))
        for t in range(steps):
            pre = src[:, t - delay] if t - delay >= 0 else np.zeros_like(src[:, 0])
            i_t = pre @ p["W"].T + p["b"]
            if p["V"] is not None:
                i_t = i_t + s @ p["V"].T
            u = p["alpha"] * u + i_t
            if reset == "neurocompile":
                v = p["beta"] * v + u
            elif reset == "subtract":
                v = p["beta"] * v + u - p["thr"] * s
            elif reset == "zero_step":
                v = (1.0 - s) * (p["beta"] * v + u)
            else:
                raise ValueError(reset)
            s = (v > p["thr"]).astype(np.float64)
            if reset == "neurocompile":
                v = np.where(s > 0, 0.0, v)
            out[:, t] = s
        src = out
    return out


# ----------------------------------------------------------------------------- (a) file and mapping

@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_export_loads_validates_and_maps_beta(tmp_path, reset):
    graph = _export(_net("leaky", reset), tmp_path / "leaky.nir")
    assert validate(graph) == []
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds == {"input": "Input", "0": "Linear", "1": "LIF", "2": "Linear", "3": "LIF",
                     "output": "Output"}
    assert "dt" not in (graph.metadata or {})  # the exporter does not record its dt
    lif = graph.nodes["1"]
    # The reset rule is not exported: v_reset = 0 for "subtract" as for "zero".
    assert np.all(np.asarray(lif.v_reset) == 0)
    beta = np.float32(0.875)
    np.testing.assert_allclose(lif.tau, SNNTORCH_DT / (1 - beta), rtol=1e-6)
    np.testing.assert_allclose(lif.r, 1 / (1 - beta), rtol=1e-6)
    assert np.all(np.asarray(lif.v_leak) == 0)
    step = discretise("1", lif, SNNTORCH_DT)  # Euler at dt=1e-4: keep = beta, gain = 1
    np.testing.assert_allclose(1 - step.dv, beta, atol=1e-7)
    np.testing.assert_allclose(step.gain, 1.0, atol=1e-7)
    np.testing.assert_array_equal(step.bias, 0.0)


def test_synaptic_export_maps_alpha(tmp_path):
    graph = _export(_net("synaptic", "zero"), tmp_path / "syn.nir")
    assert validate(graph) == []
    cuba = graph.nodes["1"]
    assert isinstance(cuba, nir.CubaLIF)
    step = discretise("1", cuba, SNNTORCH_DT)
    np.testing.assert_allclose(1 - step.du, 0.75, atol=1e-7)   # alpha
    np.testing.assert_allclose(1 - step.dv, 0.875, atol=1e-7)  # beta
    np.testing.assert_allclose(step.gain, 1.0, atol=1e-7)      # (dv*r)*(du*w_in)


def test_scalar_beta_cannot_be_exported():
    """snnTorch 1.0.0's exporter needs per-neuron beta/threshold; a scalar beta fails in NIR."""
    net = torch.nn.Sequential(torch.nn.Linear(5, 8, bias=False),
                              snn.Leaky(beta=0.9, init_hidden=True))
    with warnings.catch_warnings(), pytest.raises(ValueError, match="Type inference error"):
        warnings.simplefilter("ignore")
        export_nir.export_to_nir(net, torch.zeros(1, 5), ignore_dims=[0])


def test_default_dt_is_refused_for_snntorch_graph(tmp_path):
    """snnTorch files store no dt; at the 1 ms default dt/tau = 1.25 > 1 (a negative decay
    factor, -0.25 instead of 0.875), which is refused with the fix named."""
    graph = _export(_net("leaky", "zero"), tmp_path / "leaky.nir")
    assert dt_fallback_warning(graph, None) is not None
    with pytest.raises(UnsupportedError, match=r"node '1': dt/tau = 1.25 > 1 at dt=0.001.*--dt"):
        discretise("1", graph.nodes["1"], 1e-3)
    step = discretise("1", graph.nodes["1"], SNNTORCH_DT)
    np.testing.assert_allclose(1 - step.dv, 0.875, atol=1e-6)
    np.testing.assert_allclose(step.gain, 1.0, rtol=1e-6)
    x = _spikes()
    with pytest.raises(UnsupportedError, match="dt/tau"):
        _neurocompile_run(graph, x, dt=None)


# ----------------------------------------------------------------------------- (b) where they agree

def test_leaky_reset_zero_equal_after_depth_shift(tmp_path):
    net = _net("leaky", "zero")
    graph = _export(net, tmp_path / "leaky.nir")
    x = _spikes()
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(graph, x)
    depth = 2
    assert ref.sum() > 20  # the comparison is not vacuous
    assert not ours[:, :depth].any()
    np.testing.assert_array_equal(ours[:, depth:], ref[:, :-depth])


def test_leaky_reset_zero_membrane_differs_only_at_spikes(tmp_path):
    """snnTorch resets at the start of the next step (reset_delay=True) and returns the
    un-reset membrane; neurocompile resets at the end of the spike step (v = 0)."""
    net = _net("leaky", "zero")
    graph = _export(net, tmp_path / "leaky.nir")
    x = _spikes()
    spk, mem = _snntorch_run(net, x)
    _, res = _neurocompile_run(graph, x, probe=("3",))
    v = np.asarray(res.probes["3.v"])[:, 2:]
    spk, mem = spk[:, :-2].astype(bool), mem[:, :-2]
    assert spk.sum() > 0
    np.testing.assert_allclose(v[~spk], mem[~spk], atol=1e-5)
    assert np.all(v[spk] == 0) and np.all(mem[spk] > 1.0)


def test_bias_is_one_step_early_and_delayed_snntorch_matches(tmp_path):
    net = _net("leaky", "zero", bias=True)
    graph = _export(net, tmp_path / "affine.nir")
    assert [type(graph.nodes[k]).__name__ for k in ("0", "2")] == ["Affine", "Affine"]
    x = _spikes()
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(graph, x)
    assert not np.array_equal(ours[:, 2:], ref[:, :-2])  # a plain shift does not explain biases
    delayed = _snntorch_delayed_run(net, x)
    assert delayed.sum() > 20
    np.testing.assert_array_equal(ours, delayed)


# ----------------------------------------------------------------------------- (c) named differences

CASES = [  # (model, reset_mechanism, snnTorch's rule in _model, depth)
    ("leaky", "subtract", "subtract", 2),
    ("synaptic", "subtract", "subtract", 2),
    ("synaptic", "zero", "zero_step", 2),
    ("rleaky", "subtract", "subtract", 1),
    ("rleaky", "zero", "zero_step", 1),
    ("rsynaptic", "subtract", "subtract", 1),
    ("rsynaptic", "zero", "zero_step", 1),
]


@pytest.mark.parametrize(("kind", "reset", "rule", "depth"), CASES)
def test_reset_rule_is_the_whole_difference(tmp_path, kind, reset, rule, depth):
    net = _rleaky_net(reset, synaptic=kind == "rsynaptic") if kind.startswith("r") \
        else _net(kind, reset)
    graph = _export(net, tmp_path / f"{kind}_{reset}.nir")
    assert validate(graph) == []  # accepted: the exporter wrote v_reset = 0
    x = _spikes()
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(graph, x)
    assert not np.array_equal(ours[:, depth:], ref[:, :-depth])
    assert ours.sum() != ref[:, :-depth].sum()
    layers = _layers(net)
    # The NumPy model reproduces each framework exactly, differing only in the reset rule
    # (and the per-connection delay, which the shift accounts for).
    np.testing.assert_array_equal(_model(layers, x, rule, delay=0), ref)
    np.testing.assert_array_equal(_model(layers, x, "neurocompile", delay=1), ours)
    np.testing.assert_array_equal(_model(layers, x, rule, delay=1)[:, depth:], ref[:, :-depth])


def _tie_net():
    """One Leaky neuron (beta 0.875, threshold 1) behind a unit weight, and its NIR export: a
    single input of 1 puts the membrane exactly at threshold."""
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 1, bias=False),
        snn.Leaky(beta=torch.full((1,), 0.875), threshold=torch.ones(1), init_hidden=True,
                  reset_mechanism="zero", output=True))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = export_nir.export_to_nir(net, torch.zeros(1, 1), ignore_dims=[0])
    return net, exported


def test_threshold_tie_resolves_differently(tmp_path):
    """The exporter computes tau and r in float32 with dt = float32(1e-4) < 1e-4, so at dt=1e-4
    the gain is 1 + 2.5e-8: a membrane exactly at threshold spikes here, not in snnTorch."""
    net, exported = _tie_net()
    nir.write(tmp_path / "tie.nir", exported)
    graph = load_graph(tmp_path / "tie.nir")
    x = np.zeros((1, 4, 1), np.float32)
    x[0, 0, 0] = 1.0
    ref, mem = _snntorch_run(net, x)
    assert mem[0, 0, 0] == 1.0 and not ref.any()  # v == threshold: no spike (strict >)
    np.testing.assert_allclose(discretise("1", graph.nodes["1"], SNNTORCH_DT).gain - 1,
                               2.5e-8, rtol=0.05)
    ours, _ = _neurocompile_run(graph, x)
    assert ours[0, :, 0].tolist() == [0, 1, 0, 0]
    # dt as the exporter's float32 value makes this mapping exact (0.875 and 8 are dyadic).
    exact, _ = _neurocompile_run(graph, x, dt=float(np.float32(SNNTORCH_DT)))
    assert not exact.any()


# ----------------------------------------------------------------------------- (d) the profile

def test_profile_is_suggested_and_supplies_the_exporters_dt(tmp_path):
    from neurocompile.interop import PROFILE_KEY, import_graph

    net = _net("leaky", "zero")
    graph = _export(net, tmp_path / "leaky.nir")
    _, notes = import_graph(graph)
    assert any("pass --from snntorch" in n for n in notes)
    profiled, notes = import_graph(graph, "snntorch-zero")
    assert profiled.metadata[PROFILE_KEY] == "snntorch-zero"
    assert notes == [next(n for n in notes if "does not export reset_mechanism" in n)]
    assert profiled.metadata["dt"] == float(np.float32(SNNTORCH_DT))
    x = _spikes()
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(profiled, x, dt=None)  # no --dt: the profile's
    np.testing.assert_array_equal(ours[:, 2:], ref[:, :-2])
    with pytest.raises(UnsupportedError, match="leave --dt out with --from snntorch"):
        import_graph(graph, "snntorch", dt=1e-3)


def test_profile_dt_resolves_the_threshold_tie_as_snntorch(tmp_path):
    """The profile's dt is the exporter's float32(1e-4): the tie of
    test_threshold_tie_resolves_differently goes snnTorch's way."""
    from neurocompile.interop import import_graph

    net, exported = _tie_net()
    graph, _ = import_graph(exported, "snntorch-zero")
    x = np.zeros((1, 4, 1), np.float32)
    x[0, 0, 0] = 1.0
    ours, _ = _neurocompile_run(graph, x, dt=None)
    assert not ours.any()


@pytest.mark.parametrize(("kind", "reset", "rule", "depth"), CASES)
def test_profile_reproduces_every_reset_mechanism(tmp_path, kind, reset, rule, depth):
    """With the profile for the reset_mechanism used (snntorch: 'subtract', snntorch-zero:
    'zero'), every case above equals snnTorch spike for spike after the depth shift."""
    from neurocompile.interop import import_graph

    net = _rleaky_net(reset, synaptic=kind == "rsynaptic") if kind.startswith("r") \
        else _net(kind, reset)
    profile = "snntorch" if reset == "subtract" else "snntorch-zero"
    graph, _ = import_graph(_export(net, tmp_path / f"{kind}_{reset}.nir"), profile)
    x = _spikes()
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(graph, x, dt=None)
    assert ref.sum() > 20
    np.testing.assert_array_equal(ours[:, depth:], ref[:, :-depth])
    other = "snntorch-zero" if profile == "snntorch" else "snntorch"
    wrong, _ = import_graph(_export(net, tmp_path / "w.nir"), other)
    assert not np.array_equal(_neurocompile_run(wrong, x, dt=None)[0][:, depth:], ref[:, :-depth])


def _conv_net():
    """Conv2d -> Leaky (2, 4, 4) -> Flatten -> Linear -> Leaky, snnTorch's default reset."""
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="subtract")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, bias=False),
        snn.Leaky(beta=torch.full((2, 4, 4), 0.875), threshold=torch.ones(2, 4, 4), **kw),
        torch.nn.Flatten(), torch.nn.Linear(32, 3, bias=False),
        snn.Leaky(beta=torch.full((3,), 0.875), threshold=torch.ones(3), output=True, **kw))
    with torch.no_grad():
        net[0].weight.abs_().mul_(1.5)  # excitatory, so both layers spike
        net[3].weight.mul_(3.0)
    return net


def test_conv_network_equals_snntorch(tmp_path):
    from neurocompile.interop import import_graph

    net = _conv_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "c.nir", export_nir.export_to_nir(net, torch.zeros(1, 1, 6, 6),
                                                               ignore_dims=[0]))
    graph, _ = import_graph(load_graph(tmp_path / "c.nir"), "snntorch")
    x = (np.random.default_rng(1).random((4, 40, 1, 6, 6)) < 0.4).astype(np.float32)
    ref, _ = _snntorch_run(net, x)
    ours, _ = _neurocompile_run(graph, x, dt=None)
    assert ref.sum() > 50
    np.testing.assert_array_equal(ours[:, 2:], ref[:, :-2])


@pytest.mark.lava
@pytest.mark.slow
def test_lava_float_runs_the_snntorch_profile_like_snntorch(tmp_path):
    """RLeaky with snnTorch's default reset (subtract_next), recurrent, on Lava float."""
    from test_lava_helpers import ensure_lava_env

    from neurocompile.interop import import_graph
    from neurocompile.targets import get_target

    if ensure_lava_env() is None:
        pytest.skip("no Lava interpreter: set NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")
    net = _rleaky_net("subtract")
    graph, _ = import_graph(_export(net, tmp_path / "r.nir"), "snntorch")
    x = _spikes()
    target = get_target("lava")
    res = target.run(target.compile(graph, {}), {"input": x})
    ref, _ = _snntorch_run(net, x)
    (out,) = res.outputs.values()
    assert ref.sum() > 50
    np.testing.assert_array_equal(out[:, 1:], ref[:, :-1])
