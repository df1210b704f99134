"""torch target: the reference semantics batched in torch, equal to the reference simulator on a
generated matrix of graphs (every supported node type, recurrent edges, delays, convolutions)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from backend_graphs import node_types, random_graph, spikes  # noqa: E402
from conftest import REPO  # noqa: E402

from neurocompile.errors import ConfigError, InputDataError, UnsupportedError  # noqa: E402
from neurocompile.ir.graph import SUPPORTED_TYPES  # noqa: E402
from neurocompile.targets import available_targets, get_target  # noqa: E402

SEEDS = range(18)  # six graphs of each trunk: dense, Conv2d, Conv1d


def run(target: str, graph, x, **options):
    t = get_target(target)
    return t.run(t.compile(graph, options), {"input": x})


def test_generated_graphs_cover_every_supported_node_type():
    from neurocompile.ir.graph import has_cycle

    graphs = [random_graph(s)[0] for s in SEEDS]
    assert set().union(*map(node_types, graphs)) == {cls.__name__ for cls in SUPPORTED_TYPES}
    assert sum(has_cycle(g) for g in graphs) >= 3
    assert any("rec_delay" in g.nodes for g in graphs)  # a Delay inside a cycle


@pytest.mark.parametrize("weights", ["dyadic", "normal"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", SEEDS)
def test_equals_reference(seed, dtype, weights):
    graph, shape = random_graph(seed, weights)
    x = spikes(seed, 3, 30, shape)
    ref = run("reference", graph, x, dtype=dtype)
    got = run("torch", graph, x, dtype=dtype)
    assert ref.total("spikes") > x.sum()  # the network spikes: not a vacuous comparison
    assert got.counters_dict() == ref.counters_dict()
    for name, y in ref.outputs.items():
        if dtype == "float64" or weights == "dyadic":
            np.testing.assert_array_equal(got.outputs[name], y, err_msg=name)
        else:  # float32 with Gaussian weights: products may be summed in another order
            assert np.mean(got.outputs[name] == y) >= 0.99, name


def test_a_target_without_the_reset_is_caught(monkeypatch):
    """The comparison above fails for a population that never resets."""
    from neurocompile.targets.torch import executor

    def no_reset(self, i_t):
        cur = i_t if self.d.unit_gain else self.gain * i_t
        self.u = cur if self.d.no_current else self.u * self.keep_u + cur
        self.v = self.v * self.keep_v + self.u + (0 if self.d.no_bias else self.bias)
        return self.v if self.vth is None else self.v > self.vth

    monkeypatch.setattr(executor.TorchPopulation, "step", no_reset)
    differs = 0
    for seed in range(6):
        graph, shape = random_graph(seed)
        x = spikes(seed, 2, 30, shape)
        ref, got = run("reference", graph, x), run("torch", graph, x)
        differs += not all(np.array_equal(got.outputs[k], v) for k, v in ref.outputs.items())
    assert differs >= 5


def test_batch_rows_are_independent():
    graph, shape = random_graph(0, "normal")
    x = spikes(0, 5, 25, shape)
    whole = run("torch", graph, x)
    for i in (0, 3):
        one = run("torch", graph, x[i:i + 1])
        for name, y in whole.outputs.items():
            np.testing.assert_array_equal(one.outputs[name][0], y[i])


def test_counters_can_be_skipped_and_outputs_stay():
    graph, shape = random_graph(1)
    x = spikes(1, 2, 20, shape)
    full, bare = run("torch", graph, x), run("torch", graph, x, counters=False)
    assert bare.counters == {}
    for name, y in full.outputs.items():
        np.testing.assert_array_equal(bare.outputs[name], y)


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_tensor_inputs_stay_on_the_device_and_equal_the_reference(seed):
    """Inputs given as torch tensors: outputs come back as tensors (nothing copied to the host),
    spikes and counters (reduced on the device) equal the reference's."""
    import torch

    graph, shape = random_graph(seed, "normal")
    x = spikes(seed, 3, 25, shape)
    ref = run("reference", graph, x)
    got = run("torch", graph, torch.as_tensor(x))
    assert got.counters_dict() == ref.counters_dict()
    for name, y in ref.outputs.items():
        assert isinstance(got.outputs[name], torch.Tensor)
        np.testing.assert_array_equal(got.outputs[name].numpy(), y)
    with pytest.raises(InputDataError, match="NaN"):
        run("torch", graph, torch.full((1, 3) + shape, float("nan")))


def test_options_and_refusals():
    graph, _ = random_graph(0)
    t = get_target("torch")
    with pytest.raises(ConfigError, match="dtyp"):
        t.compile(graph, {"dtyp": "float64"})
    with pytest.raises(UnsupportedError, match="fixed point"):
        t.compile(graph, {"fixed_point": True})
    with pytest.raises(UnsupportedError, match="torch device 'nonsense'"):
        run("torch", graph, spikes(0, 1, 3, (int(graph.nodes["input"].output_type["output"][0]),)),
            device="nonsense")


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
def test_cuda_equals_reference_in_float64():
    for seed in range(6):
        graph, shape = random_graph(seed, "normal")
        x = spikes(seed, 4, 30, shape)
        ref, got = run("reference", graph, x), run("torch", graph, x, device="cuda")
        assert got.counters_dict() == ref.counters_dict()
        for name, y in ref.outputs.items():
            np.testing.assert_array_equal(got.outputs[name], y)


def test_cuda_refused_where_absent():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    graph, shape = random_graph(0)
    with pytest.raises(UnsupportedError, match="CUDA is not available"):
        run("torch", graph, spikes(0, 1, 3, shape), device="cuda")


def test_targets_list_readiness_and_core_imports_without_torch():
    info = available_targets()
    for name in ("torch", "norse", "onnx"):
        assert name in info and info[name]["missing"] == [], (name, info[name])
    code = ("import sys; import neurocompile.targets as t; t.available_targets(); "
            "t.get_target('torch'); t.get_target('norse'); t.get_target('onnx'); "
            "print(sorted(m for m in ('torch', 'norse', 'onnx', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_requirement_is_named(monkeypatch):
    from neurocompile.targets.torch import TorchTarget

    monkeypatch.setattr(TorchTarget, "requires", ("torch", "no_such_module_xyz"))
    assert TorchTarget.missing_requirements() == ["no_such_module_xyz"]
    graph, _ = random_graph(0)
    with pytest.raises(UnsupportedError, match=r"needs no_such_module_xyz.*neurocompile\[torch\]"):
        TorchTarget().compile(graph)


def test_inputs_are_checked_padded_and_cast_as_the_reference_does():
    from neurocompile.errors import InputDataError

    graph, shape = random_graph(3)  # dense trunk
    x = spikes(3, 2, 12, shape)
    for given, steps in ((x.astype(bool), None), (x.astype(np.int8), 20), (x, 7),
                         (x.reshape(2, 12, -1), None)):
        ref = get_target("reference")
        want = ref.run(ref.compile(graph), {"input": given}, steps)
        t = get_target("torch")
        got = t.run(t.compile(graph), {"input": given}, steps)
        assert got.steps == want.steps and got.counters_dict() == want.counters_dict()
        for name, y in want.outputs.items():
            np.testing.assert_array_equal(got.outputs[name], y)
    bad = x.copy()
    bad[1, 5, 0] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        run("torch", graph, bad)
    with pytest.raises(InputDataError, match="expected an array"):
        run("torch", graph, x[..., :-1])


def test_pipeline_evaluates_on_the_torch_target_where_cuda_is_present(monkeypatch):
    """With a GPU (faked here: CUDA reported present, the device mapped to the CPU) the
    pipeline's dataset evaluation runs on the torch target and gives the reference's result."""
    import torch

    from neurocompile import pipeline
    from neurocompile.targets.torch import target as torch_target

    graph, shape = random_graph(0, "normal")
    graph.nodes["output"] = graph.nodes.pop("out")
    graph.edges[:] = [(a, "output" if b == "out" else b) for a, b in graph.edges]
    x = spikes(0, 300, 20, shape)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a real GPU too
    want, want_result = pipeline._predict(graph, x)
    assert want_result.target == "reference"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch_target, "resolve_device", lambda name: torch.device("cpu"))
    got, got_result = pipeline._predict(graph, x)
    assert got_result.target == "torch" and got_result.batch == 300
    np.testing.assert_array_equal(got, want)
    assert got_result.counters_dict() == want_result.counters_dict()


def test_simulate_cli_runs_the_torch_target_on_a_device(tmp_path, capsys):
    from neurocompile.cli.main import main
    from neurocompile.ir.io import save_graph

    graph, shape = random_graph(1)
    save_graph(graph, tmp_path / "g.nir")
    np.savez(tmp_path / "x.npz", input=spikes(1, 2, 15, shape))
    summaries = {}
    for target, extra in (("torch", ["--device", "cpu"]), ("reference", [])):
        out = tmp_path / f"{target}.npz"
        main(["simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "x.npz"),
              "--target", target, "--out", str(out), "--json",
              str(out.with_suffix(".json"))] + extra)
        summaries[target] = json.loads(out.with_suffix(".json").read_text())
    capsys.readouterr()
    assert summaries["torch"]["target"] == "torch"
    assert summaries["torch"]["nodes"] == summaries["reference"]["nodes"]
