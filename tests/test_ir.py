"""NIR core: file round trip, one specific error per malformed-graph case, parameter mapping."""

from __future__ import annotations

import subprocess
import sys

import nir
import numpy as np
import pytest
from conftest import REPO, chain, lif

from neurocompile.demo import demo_graph
from neurocompile.errors import GraphValidationError, NIRFileError, UnsupportedError
from neurocompile.ir import check_graph, load_graph, save_graph, validate
from neurocompile.semantics import discretise


def ff_graph(**over) -> nir.NIRGraph:
    nodes = {"in": nir.Input(input_type=np.array([3])),
             "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
             "n": lif(2), "out": nir.Output(output_type=np.array([2]))}
    nodes.update(over)
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "n"), ("n", "out")],
                        type_check=False)


def messages(graph) -> list[str]:
    return [str(p) for p in validate(graph)]


def test_valid_graphs_have_no_problems():
    assert validate(ff_graph()) == []
    assert validate(demo_graph()) == []


def test_round_trip_preserves_every_parameter(tmp_path):
    g = demo_graph()
    path = save_graph(g, tmp_path / "g.nir")
    back = load_graph(path)
    assert set(back.nodes) == set(g.nodes)
    assert sorted(back.edges) == sorted(g.edges)
    assert float(np.asarray(back.metadata["dt"])) == g.metadata["dt"]
    for name, node in g.nodes.items():
        other = back.nodes[name]
        assert type(other) is type(node)
        for key, value in vars(node).items():
            if isinstance(value, np.ndarray) and key not in ("input_type", "output_type"):
                np.testing.assert_array_equal(getattr(other, key), value, err_msg=f"{name}.{key}")


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    def boom(f, graph):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(nir, "write", boom)
    with pytest.raises(RuntimeError):
        save_graph(ff_graph(), tmp_path / "g.nir")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_write_leaves_no_file(tmp_path):
    """SIGKILL in the middle of a write: the old file is intact and no temporary file is left
    (the new content has no name until it is complete)."""
    import signal
    import time

    target = tmp_path / "data.txt"
    target.write_text("old")
    code = ("import time; from neurocompile.ir.io import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n"
            "    open(tmp, 'w').write('x' * 10_000_000); print('written', flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO)
    assert proc.stdout.readline().strip() == b"written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.1)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]


def test_dangling_edge():
    g = ff_graph()
    g.edges.append(("n", "ghost"))
    assert any("dangling edge n -> ghost: target node does not exist" in m for m in messages(g))


def test_duplicate_edge():
    g = ff_graph()
    g.edges.append(("fc", "n"))
    assert any("duplicate edge fc -> n" in m for m in messages(g))


def test_shape_mismatch_names_both_nodes():
    g = ff_graph(n=lif(5))
    msgs = messages(g)
    assert any("node 'n': shape mismatch on edge fc -> n: fc outputs (2,)" in m and "(5,)" in m
               for m in msgs), msgs


def test_nan_and_missing_parameters():
    bad = lif(2)
    bad.tau = np.array([1e-3, np.nan])
    assert any("node 'n': parameter 'tau' has 1 NaN" in m for m in messages(ff_graph(n=bad)))
    missing = lif(2)
    missing.v_threshold = None
    assert any("parameter 'v_threshold' is missing" in m for m in messages(ff_graph(n=missing)))


def test_unsupported_node_type_and_nonzero_reset():
    assert any("unsupported node type I" in m for m in messages(ff_graph(n=nir.I(r=np.ones(2)))))
    reset = lif(2)
    reset.v_reset = np.full(2, -0.5)
    assert any("v_reset != 0" in m for m in messages(ff_graph(n=reset)))


def test_algebraic_loop_and_missing_output():
    g = chain(("in", nir.Input(input_type=np.array([2]))), ("a", nir.Linear(weight=np.eye(2))),
              ("b", nir.Linear(weight=np.eye(2))), ("out", nir.Output(output_type=np.array([2]))),
              extra_edges=[("b", "a")])
    assert any("algebraic loop" in m for m in messages(g))
    g2 = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([2])), "n": lif(2)},
                      edges=[("in", "n")], type_check=False)
    assert any("no Output node" in m for m in messages(g2))


def test_check_graph_lists_every_problem():
    g = ff_graph(n=lif(5))
    g.edges.append(("fc", "n"))
    with pytest.raises(GraphValidationError) as info:
        check_graph(g, "model.nir")
    assert str(info.value).startswith("model.nir: 1 problem(s): node") and len(info.value.problems) >= 1


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", None])
def test_bad_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "broken.nir"
    if content is None:  # a truncated real file
        save_graph(ff_graph(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(NIRFileError) as info:
        load_graph(path)
    assert "broken.nir" in str(info.value) and "\n" not in str(info.value)


def test_parameter_mapping_formulas():
    dt = 1e-3
    p = discretise("n", nir.LIF(tau=np.array([4e-3]), r=np.array([3.0]), v_leak=np.array([0.5]),
                                 v_threshold=np.array([1.0])), dt)
    assert p.du[0] == 1 and p.dv[0] == 0.25 and p.gain[0] == 0.75 and p.bias[0] == 0.125
    c = discretise("c", nir.CubaLIF(tau_syn=np.array([2e-3]), tau_mem=np.array([4e-3]),
                                     r=np.array([2.0]), v_leak=np.array([0.0]),
                                     v_threshold=np.array([1.0]), w_in=np.array([3.0])), dt)
    assert c.du[0] == 0.5 and c.dv[0] == 0.25 and c.gain[0] == (0.25 * 2.0) * (0.5 * 3.0)
    li = discretise("l", nir.LI(tau=np.array([2e-3]), r=np.array([1.0]), v_leak=np.array([0.0])), dt)
    assert li.v_threshold is None
    with pytest.raises(UnsupportedError, match="v_reset"):
        discretise("r", nir.LIF(tau=np.array([1.0]), r=np.array([1.0]), v_leak=np.array([0.0]),
                                 v_threshold=np.array([1.0]), v_reset=np.array([0.3])), dt)


CORE_IMPORT = ("import sys; sys.modules['torch'] = None; "
               "import neurocompile.ir, neurocompile.semantics, neurocompile.passes; "
               "import neurocompile.targets.reference, neurocompile.targets.lava; "
               "import neurocompile.targets.loihi2, neurocompile.targets.worker; "
               "import neurocompile.analysis, neurocompile.energy, neurocompile.config; "
               "import neurocompile.train.config; print('ok')")


def test_core_imports_without_torch():
    out = subprocess.run([sys.executable, "-c", CORE_IMPORT], capture_output=True, text=True,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.lava
def test_core_imports_in_lava_environment(lava_python_path):
    check = "import importlib.util as u; assert u.find_spec('torch') is None; " + CORE_IMPORT
    out = subprocess.run([lava_python_path, "-c", check], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr

