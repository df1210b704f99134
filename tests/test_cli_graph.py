"""CLI: inspect, simulate, targets and demo, as a user runs them (exit codes, files, messages)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from conftest import REPO

from neurocompile.demo import demo_graph, demo_input
from neurocompile.ir import load_spikes, save_graph, save_spikes
from neurocompile.targets.reference import simulate


def run_cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurocompile.cli.main", *args],
                          capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL)


def test_inspect_valid_graph(tmp_path):
    path = save_graph(demo_graph(), tmp_path / "demo.nir")
    out = run_cli("inspect", str(path))
    assert out.returncode == 0, out.stderr
    assert "CubaLIF" in out.stdout and "valid" in out.stdout


def test_inspect_broken_file_is_one_line_error(tmp_path):
    path = tmp_path / "bad.nir"
    path.write_bytes(b"\x89HDF garbage")
    out = run_cli("inspect", str(path))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "bad.nir" in out.stderr
    assert "Traceback" not in out.stderr


def test_simulate_writes_outputs_equal_to_library(tmp_path):
    graph_path = save_graph(demo_graph(), tmp_path / "demo.nir")
    spikes = demo_input(batch=3, steps=20)
    save_spikes({"input": spikes}, tmp_path / "in.npz")
    out = run_cli("simulate", str(graph_path), "--input", str(tmp_path / "in.npz"),
                  "--out", str(tmp_path / "out.npz"), "--json", str(tmp_path / "out.json"))
    assert out.returncode == 0, out.stderr
    got = load_spikes(tmp_path / "out.npz")["output"]
    expect = simulate(demo_graph(), {"input": spikes}).outputs["output"]
    np.testing.assert_array_equal(got, expect)
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["batch"] == 3 and summary["steps"] == 20


def test_simulate_nir_data_file_input(tmp_path):
    graph_path = save_graph(demo_graph(), tmp_path / "demo.nir")
    spikes = demo_input(batch=2, steps=10)
    save_spikes({"input": spikes}, tmp_path / "in.h5")
    out = run_cli("simulate", str(graph_path), "--input", str(tmp_path / "in.h5"),
                  "--out", str(tmp_path / "out.h5"))
    assert out.returncode == 0, out.stderr
    got = load_spikes(tmp_path / "out.h5")["output"]
    np.testing.assert_array_equal(got, simulate(demo_graph(), {"input": spikes}).outputs["output"])


def test_simulate_wrong_input_shape_names_node(tmp_path):
    graph_path = save_graph(demo_graph(), tmp_path / "demo.nir")
    save_spikes({"input": np.zeros((1, 5, 7))}, tmp_path / "in.npz")
    out = run_cli("simulate", str(graph_path), "--input", str(tmp_path / "in.npz"))
    assert out.returncode == 2
    assert "input 'input'" in out.stderr and "(1, 5, 7)" in out.stderr


def test_targets_and_demo(tmp_path):
    out = run_cli("targets")
    assert out.returncode == 0 and "reference" in out.stdout
    out = run_cli("demo", "--out", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    for name in ("demo.nir", "input.npz", "output.npz", "summary.json"):
        assert (tmp_path / "run" / name).exists()


def test_compare_reports_agreement_and_event_change(tmp_path):
    from neurocompile.passes.prune import magnitude_prune

    graph = demo_graph()
    pruned, _ = magnitude_prune(graph, 0.5)
    save_graph(graph, tmp_path / "a.nir")
    save_graph(pruned, tmp_path / "b.nir")
    save_spikes({"input": demo_input(batch=4, steps=30)}, tmp_path / "in.npz")
    out = run_cli("compare", str(tmp_path / "a.nir"), str(tmp_path / "a.nir"),
                  "--input", str(tmp_path / "in.npz"), "--json", str(tmp_path / "same.json"))
    assert out.returncode == 0, out.stderr
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["outputs"]["output"]["identical"] is True
    assert same["totals"]["synaptic_events"]["relative_change"] == 0
    out = run_cli("compare", str(tmp_path / "a.nir"), str(tmp_path / "b.nir"),
                  "--input", str(tmp_path / "in.npz"), "--json", str(tmp_path / "pruned.json"))
    assert out.returncode == 0, out.stderr
    totals = json.loads((tmp_path / "pruned.json").read_text())["totals"]["synaptic_events"]
    assert totals["transformed"] < totals["reference"]
    assert "synaptic_events:" in out.stdout


def test_missing_dt_is_warned_about_and_unstable_dt_refused(tmp_path):
    import nir
    from conftest import lif

    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([2])), "fc": nir.Linear(weight=np.eye(2)),
               "n": lif(2, tau=5e-4), "output": nir.Output(output_type=np.array([2]))},
        edges=[("input", "fc"), ("fc", "n"), ("n", "output")], type_check=False)
    graph.metadata = {}
    save_graph(graph, tmp_path / "g.nir")
    save_spikes({"input": np.ones((1, 5, 2))}, tmp_path / "in.npz")
    out = run_cli("simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "in.npz"),
                  "--dt", "1e-4")
    assert out.returncode == 0 and "warning" not in out.stderr
    out = run_cli("simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "in.npz"))
    assert "stores no time step" in out.stderr
    # tau = 0.5 ms at the 1 ms default: dt/tau = 2, refused with the node named
    assert out.returncode == 2
    assert "node 'n': dt/tau = 2 > 1 at dt=0.001" in out.stderr
