"""Loihi quantization of an Affine bias before a CubaLIF: the constant current loihi.current."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
from test_lava_helpers import ensure_lava_env

from neurocompile.cli.main import main
from neurocompile.errors import UnsupportedError
from neurocompile.ir.io import load_graph, save_graph
from neurocompile.passes.quantize import quantize_loihi
from neurocompile.semantics import RESET_KEY, discretise
from neurocompile.targets import get_target
from neurocompile.targets.reference import simulate

DT = 1e-3


def biased_net(seed: int = 0, bias: float = 0.4, rec: bool = False,
               reset: str = "zero") -> nir.NIRGraph:
    """Input(12) -> Affine (bias) -> CubaLIF(10, du = 0.2) [-> Linear -> CubaLIF] -> Affine
    (bias) -> LIF(3) -> Output; `reset`: the CubaLIF's reset rule."""
    rng = np.random.default_rng(seed)
    n = 10
    nodes = {"input": nir.Input(input_type={"input": np.array([12])}),
             "fc1": nir.Affine(weight=rng.normal(0, 0.5, (n, 12)),
                               bias=bias * rng.uniform(-0.5, 1.0, n)),
             "cuba": nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2),
                                 r=np.full(n, 10.0), v_leak=np.zeros(n),
                                 v_threshold=np.ones(n), w_in=np.ones(n)),
             "fc2": nir.Affine(weight=rng.normal(0.2, 0.5, (3, n)), bias=np.full(3, 0.01)),
             "lif": nir.LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0), v_leak=np.zeros(3),
                            v_threshold=np.ones(3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    nodes["cuba"].metadata = {RESET_KEY: reset}
    names = list(nodes)
    edges = list(zip(names, names[1:]))
    if rec:
        nodes["rec"] = nir.Linear(weight=rng.normal(0, 0.2, (n, n)))
        edges += [("cuba", "rec"), ("rec", "cuba")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT}, type_check=False)


def inputs(seed: int = 1, batch: int = 8, steps: int = 100) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, 12)) < 0.2).astype(np.float64)


def without_current(q: nir.NIRGraph) -> nir.NIRGraph:
    """A copy of the quantized graph with its constant current removed."""
    q = copy.deepcopy(q)
    meta = dict(q.nodes["cuba"].metadata)
    del meta["loihi.current"]
    q.nodes["cuba"].metadata = meta
    return q


def test_bias_before_cubalif_becomes_the_constant_current():
    g = biased_net()
    q, report = quantize_loihi(g)
    meta = q.nodes["cuba"].metadata
    S = meta["loihi.state_scale"]
    gain = discretise("cuba", g.nodes["cuba"], DT).gain
    c = gain * np.asarray(g.nodes["fc1"].bias)  # the float current the bias adds to u per step
    current = np.asarray(meta["loihi.current"])
    np.testing.assert_array_equal(current, np.rint(c * S / 64))
    assert np.abs(current).max() > 100  # resolved to better than 1 %
    assert np.all(np.abs(current * 64 / S - c) <= 32 / S)
    assert report.row("cuba").extra["current_max_abs_error"] <= 32 / S
    # the format keeps Affine biases 0; the current lives in the neuron's metadata only, and
    # the report says that a float run of the quantized graph does not carry it
    np.testing.assert_array_equal(np.asarray(q.nodes["fc1"].bias), 0)
    assert np.all(np.asarray(meta["loihi.bias_mant"]) == 0)
    assert any("'cuba'" in n and "only fixed point runs" in n for n in report.notes)
    # the bias before the LIF (du = 1) still folds into the LIF's neuron bias, no current
    assert "loihi.current" not in q.nodes["lif"].metadata
    assert np.all(np.asarray(q.nodes["fc2"].bias) == 0)
    assert np.all(np.asarray(q.nodes["lif"].metadata["loihi.bias_mant"]) > 0)


def _count_error(a: np.ndarray, ref: np.ndarray) -> float:
    """Sum over (sample, neuron) of |spike count - reference count|, over the reference total."""
    return float(np.abs(a.sum(1) - ref.sum(1)).sum() / ref.sum())


def test_quantized_fixed_point_tracks_the_float_graph_and_needs_the_current():
    """Bound against the float graph: >= 93 % of (sample, step, neuron) spike entries equal and
    spike-count error <= 5 % (measured 95.3 % and 3.1 %). The float graph with the quantized
    weights and the exact current agrees as well (95.3 %, 3.1 %): the current's rounding adds
    no measurable error, the weights' dominates. Without the current: 78.2 % and 55 %."""
    g = biased_net()
    q, _ = quantize_loihi(g)
    x = inputs()
    ref = simulate(g, x).outputs["output"]
    fixed = simulate(q, x, fixed_point=True).outputs["output"]
    assert ref.sum() > 100
    assert np.mean(ref == fixed) >= 0.93
    assert _count_error(fixed, ref) <= 0.05
    # the quantized weights with the exact float current: the current costs (almost) nothing
    exact = copy.deepcopy(q)
    c = discretise("cuba", g.nodes["cuba"], DT).gain * np.asarray(g.nodes["fc1"].bias)
    exact.nodes["fc1"] = nir.Affine(weight=q.nodes["fc1"].weight,
                                    bias=c / discretise("cuba", q.nodes["cuba"], DT).gain)
    weights_only = simulate(exact, x).outputs["output"]
    assert abs(np.mean(ref == fixed) - np.mean(ref == weights_only)) <= 0.01
    assert abs(_count_error(fixed, ref) - _count_error(weights_only, ref)) <= 0.01
    # dropping the current (a pass that loses the bias) gives other spikes, far from the float
    dropped = simulate(without_current(q), x, fixed_point=True).outputs["output"]
    assert not np.array_equal(dropped, fixed)
    assert np.mean(ref == dropped) < 0.85
    assert _count_error(dropped, ref) > 0.3


def test_current_out_of_range_is_refused_naming_node_limit_and_value():
    g = biased_net(bias=5.0)
    forced = {"cuba": 2.0 ** 21}  # current * 64 * 4096 / 819 would leave the 24-bit u
    with pytest.raises(UnsupportedError) as exc:
        quantize_loihi(g, state_scale=forced)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("node 'cuba': current")
    assert "[-26207, 26207]" in msg and "max 31100" in msg  # the limit and the value
    q, report = quantize_loihi(g, state_scale=forced, clip=True)
    assert np.abs(q.nodes["cuba"].metadata["loihi.current"]).max() == 26207
    assert any(n.startswith("clipped: node 'cuba': current") for n in report.notes)
    # at the chosen scale a bias ten times larger fits: S is lowered for it
    q, _ = quantize_loihi(biased_net(bias=50.0))
    assert 20000 < np.abs(q.nodes["cuba"].metadata["loihi.current"]).max() <= 26207
    # an IF has no bias to take it: still refused
    g = biased_net()
    g.nodes["lif"] = nir.IF(r=np.ones(3), v_threshold=np.ones(3))
    with pytest.raises(UnsupportedError, match=r"'fc2'.*IF has no bias"):
        quantize_loihi(g)


def test_quantize_command_writes_the_current_and_energy_reads_it(tmp_path, capsys):
    save_graph(biased_net(), tmp_path / "g.nir")
    main(["quantize", str(tmp_path / "g.nir"), "--scheme", "loihi", "-o",
          str(tmp_path / "q.nir")])
    q = load_graph(tmp_path / "q.nir")
    expected, _ = quantize_loihi(biased_net())
    np.testing.assert_array_equal(q.nodes["cuba"].metadata["loihi.current"],
                                  expected.nodes["cuba"].metadata["loihi.current"])
    np.savez(tmp_path / "x.npz", input=inputs(batch=2, steps=30))
    capsys.readouterr()
    main(["energy", str(tmp_path / "q.nir"), "--input", str(tmp_path / "x.npz"),
          "--targets", "loihi", "--json", str(tmp_path / "e.json")])
    assert (tmp_path / "e.json").exists()


lava = pytest.mark.skipif(ensure_lava_env() is None, reason="no Lava interpreter: set "
                          "NEUROCOMPILE_LAVA_PYTHON or run `make lava-venv`")


@lava
@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("rec,reset", [(False, "zero"), (True, "zero"), (True, "subtract")])
def test_lava_fixed_pt_runs_the_quantized_bias_bit_for_bit(rec, reset):
    q, _ = quantize_loihi(biased_net(rec=rec, reset=reset))
    x = {"input": inputs(batch=2, steps=60)}
    ref = simulate(q, x, fixed_point=True)
    assert ref.outputs["output"].sum() > 10
    target = get_target("lava")
    res = target.run(target.compile(q, {"fixed_point": True}), x)
    np.testing.assert_array_equal(res.outputs["output"], ref.outputs["output"])
    assert res.counters_dict() == ref.counters_dict()
    dropped = simulate(without_current(q), x, fixed_point=True)
    assert not np.array_equal(dropped.outputs["output"], ref.outputs["output"])
