"""ONNX target and `neurocompile export --format onnx`: the contract as an ONNX model that
onnxruntime runs, equal to the reference on the generated matrix of graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from backend_graphs import random_graph, spikes  # noqa: E402

from neurocompile.cli.main import main  # noqa: E402
from neurocompile.errors import UnsupportedError  # noqa: E402
from neurocompile.ir.io import save_graph  # noqa: E402
from neurocompile.targets import get_target  # noqa: E402
from neurocompile.targets.onnx import export  # noqa: E402

SEEDS = range(18)


def run(target: str, graph, x, **options):
    t = get_target(target)
    return t.run(t.compile(graph, options), {"input": x})


@pytest.mark.parametrize("weights", ["dyadic", "normal"])
@pytest.mark.parametrize("form", ["sequence", "step"])
@pytest.mark.parametrize("seed", SEEDS)
def test_float32_equals_reference(seed, form, weights):
    graph, shape = random_graph(seed, weights)
    x = spikes(seed, 3, 30, shape)
    ref = run("reference", graph, x, dtype="float32")
    got = run("onnx", graph, x, dtype="float32", form=form)
    assert ref.total("spikes") > x.sum()
    assert got.counters_dict() == ref.counters_dict()
    for name, y in ref.outputs.items():
        if weights == "dyadic":
            np.testing.assert_array_equal(got.outputs[name], y, err_msg=name)
        else:  # onnxruntime may sum a product in another order
            assert np.mean(got.outputs[name] == y) >= 0.99, name


@pytest.mark.parametrize("seed", [s for s in SEEDS if s % 3 == 0])  # dense graphs: no Conv
def test_float64_equals_reference(seed):
    graph, shape = random_graph(seed, "normal")
    x = spikes(seed, 3, 30, shape)
    ref, got = run("reference", graph, x), run("onnx", graph, x, dtype="float64")
    assert got.counters_dict() == ref.counters_dict()
    for name, y in ref.outputs.items():
        np.testing.assert_array_equal(got.outputs[name], y)


def test_float64_conv_is_refused_naming_the_node():
    graph, shape = random_graph(1)
    with pytest.raises(UnsupportedError, match="node 'conv'.*float64 Conv"):
        get_target("onnx").compile(graph, {"dtype": "float64"})


def test_a_model_without_the_reset_is_caught(monkeypatch):
    """The comparison above fails for a model whose neurons never reset (Where -> Identity)."""
    make_node = export.helper.make_node

    def no_reset(op_type, inputs, outputs, **kw):
        if op_type == "Where":
            return make_node("Identity", [inputs[2]], outputs, name=kw.get("name"))
        return make_node(op_type, inputs, outputs, **kw)

    monkeypatch.setattr(export.helper, "make_node", no_reset)
    differs = 0
    for seed in range(6):
        graph, shape = random_graph(seed)
        x = spikes(seed, 2, 30, shape)
        ref, got = run("reference", graph, x, dtype="float32"), run("onnx", graph, x)
        differs += not all(np.array_equal(got.outputs[k], v) for k, v in ref.outputs.items())
    assert differs >= 5


def test_export_cli_writes_a_checked_model_that_onnxruntime_runs(tmp_path, capsys):
    graph, shape = random_graph(4, "normal")  # Conv1d trunk
    save_graph(graph, tmp_path / "g.nir")
    out = tmp_path / "model.onnx"
    main(["export", str(tmp_path / "g.nir"), "--format", "onnx", "-o", str(out)])
    assert "wrote" in capsys.readouterr().out
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["dt"]) == pytest.approx(1e-3) and props["form"] == "sequence"
    x = spikes(4, 2, 25, shape)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (y,) = sess.run(["y.out"], {"x.input": np.swapaxes(x, 0, 1).astype(np.float32)})
    ref = run("reference", graph, x, dtype="float32")
    np.testing.assert_array_equal(np.swapaxes(y, 0, 1), ref.outputs["out"])


def test_step_model_runs_from_its_stored_initial_state(tmp_path):
    graph, shape = random_graph(0)  # dense trunk with an Affine bias: non-zero initial state
    save_graph(graph, tmp_path / "g.nir")
    out = tmp_path / "step.onnx"
    main(["export", str(tmp_path / "g.nir"), "-o", str(out), "--form", "step",
          "--dtype", "float64"])
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    init = export.initial_state(model)
    assert any(np.any(v != 0) for k, v in init.items() if k.startswith("pending."))
    x = spikes(0, 2, 20, shape)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    state = {k: np.repeat(v, 2, axis=0) for k, v in init.items()}
    ys = []
    for t in range(x.shape[1]):
        got = dict(zip([o.name for o in sess.get_outputs()],
                       sess.run(None, dict(state, **{"x.input": x[:, t]}))))
        state = {k: got[f"{k}.next"] for k in state}
        ys.append(got["y.out"])
    np.testing.assert_array_equal(np.stack(ys, 1), run("reference", graph, x).outputs["out"])


def test_export_of_a_bad_graph_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.nir").write_text("not hdf5")
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path / "bad.nir"), "-o", str(tmp_path / "m.onnx")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
